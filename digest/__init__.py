"""digest: per-specialty digests of clinical-research evidence summaries, delivered by email."""

__version__ = "0.1.0"
