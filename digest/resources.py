"""What the program reads at run time, loaded from the installed package through ``importlib.resources``.

The email and page templates, the Alembic migrations and the sample data all ship inside the
``digest`` package, so an installed wheel works from any working directory. In the source tree
``digest/templates`` is a link to the top-level ``templates/`` folder, which stays the one source.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

from jinja2 import BaseLoader, PackageLoader

PACKAGE = "digest"
# Alembic resolves "package:folder" through importlib.resources itself.
MIGRATIONS_LOCATION = f"{PACKAGE}:migrations"


def template_loader() -> BaseLoader:
    """A Jinja2 loader over the packaged templates (``email/...`` and ``web/...``)."""
    return PackageLoader(PACKAGE, "templates")


def sample_data(name: str) -> Traversable:
    """One file of the shipped sample data (``summaries.json``, ``subscribers.csv``)."""
    return files(PACKAGE) / "sample_data" / name


@contextmanager
def sample_data_path(name: str) -> Iterator[Path]:
    """A real file path to a sample-data file, for readers that need one (even from a zipped install)."""
    with as_file(sample_data(name)) as path:
        yield path
