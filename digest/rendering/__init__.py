"""Rendering: Jinja2 templates to inlined, responsive HTML and plain text, once per variant."""
