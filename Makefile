# Developer entry points: `make run` starts everything locally, `make test` is what CI runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip runs again only when a requirements file is newer than this stamp.
STAMP := $(VENV)/.requirements-installed

.DEFAULT_GOAL := help
.PHONY: help venv jsdeps run test lint fmt

help:
	@echo "make venv  - create $(VENV) and install requirements-dev.txt (PYTHON=$(PYTHON))"
	@echo "make run   - run web, worker, beat and flower locally (scripts/run_local.py)"
	@echo "make test  - ruff, every test, then the integration tests again on gevent"
	@echo "make lint  - ruff check and format check"
	@echo "make fmt   - autofix lint, then ruff format"

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The official socket.io-client for the contract tests; skipped (and those tests too) without npm.
JS_STAMP := tests/js/node_modules/.package-lock.json

jsdeps: $(JS_STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/js --no-audit --no-fund; \
	else echo "npm not found: the socket.io-client contract tests will be skipped"; fi

run: venv
	$(BIN)/python scripts/run_local.py

# Each line fails the target on a non-zero exit, so pytest's 5 ("no tests collected") fails too.
test: venv jsdeps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	@echo "== the integration tests again, with the web tier on gevent"
	TEST_ASYNC_MODE=gevent $(BIN)/pytest tests/integration

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Fix first: import sorting and other autofixes can leave code the formatter then tidies.
fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
