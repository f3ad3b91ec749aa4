# digest: the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo lint test smoke lock bench chaos install clean screenshots messages

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

# Lint, format and types (settings in pyproject.toml: [tool.ruff], [tool.mypy]); make test runs it first.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy digest workers

# The whole suite, including the smaller chaos and load runs (1,000 subscribers, 400 unsubscribes).
test: lint
	$(BIN)/python -m pytest

# What operators install: the wheel, in a fresh venv with the locked runtime dependencies only, run
# as separate processes (serve, worker, beat) on PostgreSQL, Redis and a real SMTP server, from a
# scratch folder. See tests/smoke/run.py for the scenario and its settings.
SMOKE_VENV ?= build/smoke-venv
smoke:
	rm -rf dist build/lib build/bdist.* $(SMOKE_VENV)  # setuptools reuses build/lib: a removed module would ship again
	$(PYTHON) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SMOKE_VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(SMOKE_VENV)/bin/pip wheel --quiet --no-deps --wheel-dir dist .
	$(SMOKE_VENV)/bin/pip install --quiet --no-deps dist/digest-*.whl
	$(SMOKE_VENV)/bin/pip check
	$(SMOKE_VENV)/bin/python tests/smoke/run.py

# Refresh requirements.lock (exact versions with hashes, for the Dockerfile and make smoke) after a
# change of pyproject.toml's dependencies (pins kept), or LOCK_ARGS=--upgrade for new releases; then make smoke.
lock: $(BIN)/python
	$(BIN)/pip install --quiet 'uv>=0.9'
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --universal --generate-hashes $(LOCK_ARGS) -o requirements.lock

# Extract the translatable strings (babel.cfg: Python and templates) and update the catalogues in
# digest/locales; then translate what is new or changed (tests/unit/test_catalogues.py fails until then).
messages: $(TEST_STAMP)
	@mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg -k N_ -c TRANSLATORS: --no-location --sort-output --project digest -o build/messages.pot .
	$(BIN)/pybabel update -i build/messages.pot -d digest/locales -D messages --ignore-obsolete --no-fuzzy-matching --ignore-pot-creation-date

# make bench BENCH_ARGS="--scaling --redis-url redis://127.0.0.1:6379/15"; see docs/benchmark.md
# make bench BENCH_ARGS="--matrix": list size x ledger age, unattended, one JSON and one plot; see docs/scaling.md
bench: $(TEST_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The full fault-injection run (5,000 subscribers) and the 2,000-unsubscribe load test; prints their figures.
chaos: $(TEST_STAMP)
	$(BIN)/python -m pytest tests/chaos -m chaos

# Every email and page at 375 and 1280 px, light and dark, into docs/screenshots/ (Debian's Chromium).
screenshots: $(TEST_STAMP)
	$(BIN)/python -m tests.browser.screenshots

clean:
	rm -rf var .pytest_cache
