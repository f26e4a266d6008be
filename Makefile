# Collection CRM — developer commands. `make run` and `make test` are all a newcomer needs.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
PYTHON ?= $(shell command -v python3.11 || command -v python3)
INSTANCE_DIR ?= instance

.DEFAULT_GOAL := help
.PHONY: help venv run test test-clock bench bench-full audit lock lint format stop clean-instance \
  messages translations cluster-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# The virtualenv is (re)built when missing or when the lock or pyproject.toml is newer than the
# stamp: every dependency from the lock (exact versions, hashes checked), then the project itself
# without resolving anything more.
$(STAMP): $(LOCK) pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; \
	  echo "requirements/lock.txt does not cover pyproject.toml's dependencies: run make lock"; \
	  exit 1; }
	@touch $(STAMP)

venv: $(STAMP)  ## create or update .venv (python3.11) from requirements/lock.txt

# Translations (Flask-Babel): the catalogues (.po) are kept in git, the compiled .mo files are
# built from them here, before anything runs. `make messages` collects new strings into the .po
# files; a string without a Vietnamese translation fails tests/unit/test_translations.py.
TRANSLATIONS := portal/translations
MO := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))
%.mo: %.po $(STAMP)
	@$(VENV)/bin/pybabel compile --statistics -i $< -o $@ 2>&1 | sed 's/^/  /'

translations: $(MO)  ## compile the translations (.po → .mo)

messages: $(STAMP)  ## collect the strings to translate into portal/translations/*/messages.po
	$(VENV)/bin/pybabel extract --no-location --no-wrap --sort-output -F $(TRANSLATIONS)/babel.cfg \
	  -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -o $(TRANSLATIONS)/messages.pot .
	$(VENV)/bin/pybabel update --no-fuzzy-matching --ignore-obsolete --no-wrap \
	  -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)

run: $(STAMP) $(MO)  ## run the portal: embedded PostgreSQL + Redis, migrations, demo data, web, worker
	$(PY) -m portal.devrun

# PYTEST_RC_FILE (set by .ci/run) receives pytest's own exit code: make only reports "failed".
# The suite waits more than it computes (servers, workers, browsers): TEST_WORKERS pytest-xdist
# workers share it, each on its own database and Redis DB (tests/settings.py); a file's tests
# stay on one worker. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP) $(MO)  ## unit, integration and browser tests (not the benchmarks)
	@$(VENV)/bin/pytest $(XDIST) -m "not benchmark" tests $(PYTEST_ARGS); rc=$$?; \
	  if [ -n "$(PYTEST_RC_FILE)" ]; then echo $$rc > "$(PYTEST_RC_FILE)"; fi; exit $$rc

# The suite at each instant of tests/clock.py's HOSTILE_INSTANTS (TEST_CLOCK): a Sunday night on
# 31 December, a minute before the contact window opens, the instant it closes, a leap day.
CLOCK_TESTS ?= tests/integration tests/e2e tests/scenario
test-clock: $(STAMP) $(MO)  ## integration, browser and scenario tests at each hostile TEST_CLOCK instant
	@failed=""; for instant in $$($(PY) -m tests.clock instants); do \
	  echo "== TEST_CLOCK=$$instant"; \
	  TEST_CLOCK=$$instant $(VENV)/bin/pytest $(XDIST) -m "not benchmark" $(CLOCK_TESTS) \
	    $(PYTEST_ARGS) || failed="$$failed $$instant"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed at:$$failed"; exit 1; fi; echo "passed at every instant"

# `make bench FULL=1` = `make bench-full` (make cannot take `make bench --full`: pytest can).
bench: $(STAMP) $(MO)  ## every benchmark at reduced sizes (~10 min); summary in docs/performance.md
	$(VENV)/bin/pytest -m benchmark tests/benchmarks -s $(if $(FULL),--full) $(PYTEST_ARGS)

bench-full: $(STAMP)  ## every benchmark at the issues' large sizes (hours)
	$(MAKE) --no-print-directory bench FULL=1

# Issue 24 §6: two web and two worker nodes, each in its own network namespace, behind HAProxy,
# against one PostgreSQL (database crm_cluster) and one Redis (DB 7), while the load mix runs and
# a web and a worker node are SIGKILLed and restarted; report in docs/performance.md ("Cluster").
# Needs root (ip netns) and Debian's haproxy (installed here when missing). Not part of make test.
cluster-test: $(STAMP) $(MO)  ## several nodes behind HAProxy, nodes killed under load (root, ~7 min)
	@if [ "$$(id -u)" != 0 ]; then echo "make cluster-test needs root (network namespaces)"; exit 2; fi
	@command -v haproxy >/dev/null || { echo "installing haproxy"; apt-get install -y haproxy; }
	$(PY) -m tests.cluster.run

audit: $(STAMP)  ## pip-audit over requirements/lock.txt: fails on a known vulnerability
	$(PY) .ci/audit_lock.py $(LOCK)

# Re-pin after changing pyproject.toml's dependencies (keeps the current pins where they still
# fit; `make lock UPGRADE=1` moves every pin to the newest release).
lock:  ## regenerate requirements/lock.txt from pyproject.toml (pip-tools, hashes)
	$(PYTHON) -m venv build/piptools
	build/piptools/bin/pip install --quiet pip-tools
	build/piptools/bin/pip-compile --quiet --extra dev --generate-hashes \
	  --strip-extras --allow-unsafe --no-emit-find-links --no-emit-index-url \
	  $(if $(UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml

lint: $(STAMP)  ## ruff check
	$(VENV)/bin/ruff check .

format: $(STAMP)  ## ruff: sort imports and fix what can be fixed
	$(VENV)/bin/ruff check --fix .

stop:  ## stop embedded PostgreSQL/Redis left running under instance/ (data kept)
	@if [ -x $(PY) ]; then $(PY) -m portal.embedded stop $(INSTANCE_DIR); fi

clean-instance: stop  ## stop the embedded servers and delete instance/ (all local data)
	rm -rf $(INSTANCE_DIR)
