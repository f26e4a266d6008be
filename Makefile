# Collection CRM — developer commands. `make run` and `make test` are all a newcomer needs.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
INSTANCE_DIR ?= instance

.DEFAULT_GOAL := help
.PHONY: help venv run test bench lint format stop clean-instance

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# The virtualenv is (re)built when missing or when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)  ## create or update .venv (python3.11, pip install -e '.[dev]')

run: $(STAMP)  ## run the portal: embedded PostgreSQL + Redis, migrations, demo data, web, worker
	$(PY) -m portal.devrun

# PYTEST_RC_FILE (set by .ci/run) receives pytest's own exit code: make only reports "failed".
test: $(STAMP)  ## unit, integration and browser tests (not the benchmarks)
	@$(VENV)/bin/pytest -m "not benchmark" tests $(PYTEST_ARGS); rc=$$?; \
	  if [ -n "$(PYTEST_RC_FILE)" ]; then echo $$rc > "$(PYTEST_RC_FILE)"; fi; exit $$rc

bench: $(STAMP)  ## benchmarks on large data (slow)
	$(VENV)/bin/pytest -m benchmark tests/benchmarks -s $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff check
	$(VENV)/bin/ruff check .

format: $(STAMP)  ## ruff: sort imports and fix what can be fixed
	$(VENV)/bin/ruff check --fix .

stop:  ## stop embedded PostgreSQL/Redis left running under instance/ (data kept)
	@if [ -x $(PY) ]; then $(PY) -m portal.embedded stop $(INSTANCE_DIR); fi

clean-instance: stop  ## stop the embedded servers and delete instance/ (all local data)
	rm -rf $(INSTANCE_DIR)
