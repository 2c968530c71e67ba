# Developer entry points: `make run` starts everything locally, `make test` is what CI runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip runs again only when a requirements file is newer than this stamp.
STAMP := $(VENV)/.requirements-installed

.DEFAULT_GOAL := help
.PHONY: help venv jsdeps browser nginx perf run run-scaled demo test lint fmt bench bench-quick lock messages

help:
	@echo "make venv  - create $(VENV) and install requirements-dev.txt (PYTHON=$(PYTHON))"
	@echo "make run   - run web, worker, beat and flower locally (scripts/run_local.py)"
	@echo "make run-scaled - the same with WEB_PROCESSES (2) web processes behind nginx (deploy/nginx)"
	@echo "make demo  - demo accounts and a channel for the inbox page (flask --app wsgi demo)"
	@echo "make test  - ruff, every test, then the web tier's integration tests again on gevent"
	@echo "make bench - benchmarks against the Node.js socket.io peer (~27 min; docs/BENCHMARKS.md)"
	@echo "make bench-quick - the same harness at small sizes, one rep (< 1 min)"
	@echo "make perf  - Debian's linux-perf, for python -m bench.profile --perf (CPU by binary)"
	@echo "make lint  - ruff check and format check"
	@echo "make lock  - re-resolve requirements*.in into the hashed lock files requirements*.txt"
	@echo "make fmt   - autofix lint, then ruff format"
	@echo "make messages - extract texts into core/locales/*.pot and update every catalogue"

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The lock files pin every package, transitive ones included, with hashes: pip checks each
# download against them. requirements.txt is the production set (what the Procfile runs);
# requirements-dev.txt adds the tests, the local runner and the embedded Redis.
$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Edit requirements.in or requirements-dev.in, then `make lock`: both lock files are resolved
# again (the development set keeps the production versions) and the venv reinstalled from them.
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

lock: venv
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(MAKE) venv

# npm packages: the official socket.io-client for the contract tests (tests/js), and the inbox
# page's socket.io-client and /api/docs' swagger-ui-dist (frontend). Without npm the tests that
# need them are skipped and the page polls the REST API. --ignore-scripts: nothing here needs an
# install script, and one of swagger-ui-dist's dependencies would phone home.
JS_STAMPS := tests/js/node_modules/.package-lock.json frontend/node_modules/.package-lock.json

jsdeps: $(JS_STAMPS)

%/node_modules/.package-lock.json: %/package.json %/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $* --no-audit --no-fund --ignore-scripts; \
	else echo "npm not found: $* is not installed (its tests are skipped; the API still works)"; fi

# Install Debian packages $(2) when $(1) is missing, for $(3): only where apt-get exists and we
# are root (or sudo needs no password); otherwise say so and go on (what needs them skips).
define apt_install
	@if [ -x "$(1)" ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "$(1) not found and no apt-get: $(3) will be skipped"; \
	else \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
		else echo "$(1) not found and apt-get needs root: $(3) will be skipped"; exit 0; fi; \
		echo "installing Debian's $(2) for $(3)"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(2) >/dev/null || \
		echo "could not install $(2): $(3) will be skipped"; \
	fi
endef

# Debian's Chromium for the browser test, which Playwright drives through its executable path
# (`playwright install` downloads browsers, which cannot work here).
CHROMIUM ?= /usr/bin/chromium

browser:
	$(call apt_install,$(CHROMIUM),chromium fonts-dejavu-core,the browser test)

# Debian's nginx for `make run-scaled` and the load-balancer test (skipped, saying why, without it).
# Package `nginx` has every module deploy/nginx needs (Debian 12's nginx-light is only a
# transitional package that adds the echo module to it).
# Where services start on install (not in containers with policy-rc.d), Debian starts the system
# nginx on port 80 too; `make run-scaled` and the tests run their own, as this user, under var/.
NGINX ?= $(firstword $(shell command -v nginx) /usr/sbin/nginx)

nginx:
	$(call apt_install,$(NGINX),nginx,run-scaled and the load-balancer test)

# Debian's linux-perf for `python -m bench.profile --perf` (CPU by binary and kernel function).
PERF ?= $(firstword $(shell command -v perf) /usr/bin/perf)

perf:
	$(call apt_install,$(PERF),linux-perf,bench.profile --perf)

# The catalogues: texts marked N_/Np_ in core/ and web/ (notification types, the unsubscribe
# page) in the `messages` domain, the email templates in `emails`. After editing either, run
# this and translate the new entries of every core/locales/<locale>/LC_MESSAGES/*.po;
# tests/core/test_i18n.py fails on a missing translation.
LOCALES_DIR := core/locales
BABEL_EXTRACT := $(BIN)/pybabel -q extract -F $(LOCALES_DIR)/babel.cfg --no-wrap --sort-by-file \
	--project=admarket --copyright-holder="" --msgid-bugs-address=""

messages: venv
	$(BABEL_EXTRACT) -k N_ -k Np_:1,2 -o $(LOCALES_DIR)/messages.pot core web
	$(BABEL_EXTRACT) -o $(LOCALES_DIR)/emails.pot email_templates
	for domain in messages emails; do \
		$(BIN)/pybabel -q update --init-missing --no-wrap --ignore-obsolete \
			-i $(LOCALES_DIR)/$$domain.pot -d $(LOCALES_DIR) -D $$domain -l ru; \
		$(BIN)/pybabel -q update --init-missing --no-wrap --ignore-obsolete \
			-i $(LOCALES_DIR)/$$domain.pot -d $(LOCALES_DIR) -D $$domain -l en; \
	done

run: venv jsdeps
	$(BIN)/python scripts/run_local.py

# N single-worker web processes (ports PORT+1…PORT+N) behind nginx on PORT (5000), rendered from
# deploy/nginx into var/nginx; the rest as `make run`.
WEB_PROCESSES ?= 2

run-scaled: venv jsdeps nginx
	$(BIN)/python scripts/run_local.py --web-processes $(WEB_PROCESSES)

demo: venv
	$(BIN)/flask --app wsgi demo

# Each line fails the target on a non-zero exit, so pytest's 5 ("no tests collected") fails too.
# The async mode changes only the web process: tests of the workers' own work (jobs, email
# sending, Telegram and VK, preferences), the REST fuzzing, the REST error shapes (Flask's handlers, whatever serves them), the
# OpenAPI document, the metrics and the harness's own checks (no web process at all) say nothing
# new on gevent, and would add minutes to CI.
GEVENT_SKIP := --ignore=tests/integration/test_scheduled_jobs.py \
	--ignore=tests/integration/test_email.py --ignore=tests/integration/test_api_fuzz.py \
	--ignore=tests/integration/test_observability.py \
	--ignore=tests/integration/test_api_errors.py --ignore=tests/integration/test_openapi.py \
	--ignore=tests/integration/test_harness.py \
	--ignore=tests/integration/test_messenger_delivery.py --ignore=tests/integration/test_preferences.py \
	--ignore=tests/integration/test_load_balancer.py

test: venv jsdeps browser nginx
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	@echo "== the web tier's integration tests again, on gevent"
	TEST_ASYNC_MODE=gevent $(BIN)/pytest tests/integration $(GEVENT_SKIP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Fix first: import sorting and other autofixes can leave code the formatter then tidies.
fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks (docs/BENCHMARKS.md): the platform side by side with the Node.js socket.io peer,
# whose npm packages (bench/package.json) the pattern rule above installs. `bench` waits up to
# 20 min for a quiet machine, then rewrites the generated table and docs/benchmarks.json;
# `bench-quick` runs the same harness at small sizes into var/bench/last.{json,md}.
bench: venv bench/node_modules/.package-lock.json
	$(BIN)/python -m bench --docs --wait-quiet 20

bench-quick: venv bench/node_modules/.package-lock.json
	$(BIN)/python -m bench --quick
