# Two commands on a fresh machine: `make run` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test lint migrate bench bench-fanout bench-content bench-schedule bench-feeds bench-overview clean

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## Run everything (API, worker, scheduler) embedded: SQLite + SQLite broker under ./var, 127.0.0.1:$${CMS_PORT:-8000}
	$(BIN)/cms up

test: $(STAMP) ## Run every test (SQLite, PostgreSQL, Redis, worker processes; CI=true makes a missing server a failure)
	@command -v chromium >/dev/null 2>&1 || apt-get install -y -q chromium >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
		|| echo "note: could not install Debian's chromium; the browser tests will fail"
	@# The compose test starts its own dockerd and builds base images with debootstrap (root only).
	@if [ "$$(id -u)" = 0 ] && ! { command -v dockerd && command -v debootstrap; } >/dev/null 2>&1; then \
		apt-get install -y -q docker.io debootstrap >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q docker.io debootstrap >/dev/null 2>&1; } \
		|| echo "note: could not install docker.io and debootstrap; the compose test will fail"; fi
	$(BIN)/ruff check cms workers tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(STAMP) ## Ruff and the architecture contracts (import-linter, pyproject.toml)
	$(BIN)/ruff check cms workers tests bench
	$(BIN)/lint-imports

migrate: $(STAMP) ## Apply migrations to CMS_DATABASE_URL
	$(BIN)/cms db upgrade

bench: $(STAMP) ## Authoring benchmark (needs PostgreSQL); see bench/README.md
	$(BIN)/python bench/authoring.py

bench-fanout: $(STAMP) ## Webhook fan-out benchmark (needs PostgreSQL and Redis); see bench/README.md
	$(BIN)/python bench/fanout.py

bench-content: $(STAMP) ## Content API and change feed benchmark (needs PostgreSQL); see bench/README.md
	$(BIN)/python bench/content.py

bench-schedule: $(STAMP) ## Scheduled-publish precision against Celery eta= (needs PostgreSQL and Redis); see bench/README.md
	$(BIN)/python bench/schedule.py

bench-feeds: $(STAMP) ## Feeds: fresh renders and 304s against bare Flask (needs PostgreSQL); see bench/README.md
	$(BIN)/python bench/feeds.py

bench-overview: $(STAMP) ## The console's ops overview over 1,000,000 deliveries, against raw-row queries (needs PostgreSQL); see bench/README.md
	$(BIN)/python bench/overview.py

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache
