"""The web app (``digest serve``): public subscriber pages and provider webhooks."""
