# Conveyor: `make run` starts the service, `make test` checks everything; both set up what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LINT_PATHS := src tests $(if $(wildcard bench/*.py),bench)
PYTEST_ARGS ?= -n 2 --durations=10
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help venv install system-packages postgres postgres-stop run test test-only lint format bench clean

help:
	@echo "make run      set up and start the service on http://$(HOST):$(PORT)"
	@echo "make test     set up (system packages, venv, PostgreSQL), lint, run the tests"
	@echo "make lint     ruff check, ruff format --check, mypy, lint-imports"
	@echo "make format   ruff format and ruff check --fix"
	@echo "make bench    run the benchmarks against the test PostgreSQL"
	@echo "make clean    remove the venv and caches (keeps conveyor-data)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than pyproject.toml once its dependencies are installed; then this is a no-op.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

venv: $(BIN)/python

install: $(INSTALLED)

system-packages:
	@bash scripts/system-packages.sh

postgres: system-packages
	@bash scripts/postgres.sh start

postgres-stop:
	@bash scripts/postgres.sh stop

run: install
	$(BIN)/conveyor serve --host $(HOST) --port $(PORT)

# Lint first (seconds), then the tests even if lint failed, so the test summary comes last;
# either failing fails the target.
test: install postgres
	@lint=0; $(MAKE) --no-print-directory lint || lint=$$?; \
	$(MAKE) --no-print-directory test-only || exit $$?; \
	if [ $$lint -ne 0 ]; then echo "make test: the tests passed but lint failed (above)" >&2; exit $$lint; fi

test-only: install
	CONVEYOR_TEST_DATABASE_URL="$$(bash scripts/postgres.sh url)" $(BIN)/pytest $(PYTEST_ARGS)

# Every check runs even when an earlier one fails, so one run shows all the problems.
lint: install
	@status=0; \
	for check in "ruff check $(LINT_PATHS)" "ruff format --check $(LINT_PATHS)" \
	             "mypy $(LINT_PATHS)" "lint-imports"; do \
	    echo "+ $$check"; $(BIN)/$$check || status=1; \
	done; \
	exit $$status

format: install
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

bench: install postgres
	CONVEYOR_TEST_DATABASE_URL="$$(bash scripts/postgres.sh url)" $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
