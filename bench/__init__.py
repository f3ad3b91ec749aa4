"""The send-path benchmark: ``python -m bench --help`` and docs/benchmark.md."""
