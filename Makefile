# digest: the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test bench chaos install clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "digest needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/digest demo

# The whole suite, including the smaller chaos and load runs (1,000 subscribers, 400 unsubscribes).
test: $(TEST_STAMP)
	$(BIN)/python -m pytest

# make bench BENCH_ARGS="--scaling --redis-url redis://127.0.0.1:6379/15"; see docs/benchmark.md
bench: $(TEST_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The full fault-injection run (5,000 subscribers) and the 2,000-unsubscribe load test; prints their figures.
chaos: $(TEST_STAMP)
	$(BIN)/python -m pytest tests/chaos -m chaos

clean:
	rm -rf var .pytest_cache
