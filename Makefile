# Developer entry points: `make run` starts everything locally, `make test` is what CI runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip runs again only when a requirements file is newer than this stamp.
STAMP := $(VENV)/.requirements-installed

.DEFAULT_GOAL := help
.PHONY: help venv run test lint fmt

help:
	@echo "make venv  - create $(VENV) and install requirements-dev.txt (PYTHON=$(PYTHON))"
	@echo "make run   - run web, worker, beat and flower locally (scripts/run_local.py)"
	@echo "make test  - ruff check, ruff format --check, then pytest"
	@echo "make lint  - ruff check and format check"
	@echo "make fmt   - autofix lint, then ruff format"

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: venv
	$(BIN)/python scripts/run_local.py

# Each line fails the target on a non-zero exit, so pytest's 5 ("no tests collected") fails too.
test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Fix first: import sorting and other autofixes can leave code the formatter then tidies.
fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
