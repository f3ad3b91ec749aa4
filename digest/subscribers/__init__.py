"""Subscribers: who they are, what they chose, and the signed tokens in their links."""
