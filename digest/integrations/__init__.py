"""Integrations with the operator's other systems: API keys with scopes, and signed outgoing webhooks."""
