"""Summaries in: validation, sources (files and feeds) and the upsert into the database."""
