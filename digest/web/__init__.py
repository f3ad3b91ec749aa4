"""The web app (FastAPI): subscriber pages, editor dashboard, JSON API and operations routes."""
