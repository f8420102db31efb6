# Streamboard: `make run` serves the demo, `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
SEED_ROWS ?= 1000000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run cluster test bench lint venv clean

$(VENV)/.installed: requirements.txt scripts/find-python
	@python=$$(scripts/find-python) || exit 1; \
	  [ -x $(PY) ] || "$$python" -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(VENV)/.installed

run: venv
	PORT=$(PORT) SEED_ROWS=$(SEED_ROWS) $(PY) scripts/run_demo.py

# A local cluster against the configured services (DATABASE_URL, REDIS_URL): SERVERS server
# processes on one port and WORKERS task workers, one supervisor; Ctrl-C stops them all.
SERVERS ?= 2
WORKERS ?= 2
cluster: venv
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py cluster --servers $(SERVERS) --workers $(WORKERS) --port $(PORT)

test: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest
	@# The scale-out configuration: the same export, job and stream tests on PostgreSQL + Redis.
	$(PY) scripts/with_services.py -- $(PY) -m pytest -m services

lint: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The bench has its own venv (same Python as the project's), so the peers' packages
# (uvicorn, starlette, django-eventstream...) never touch the project's pinned ones.
BENCH_VENV := var/bench/venv
BENCH_REQUIREMENTS := ../shared/bench/requirements.txt

$(BENCH_VENV)/.installed: $(BENCH_REQUIREMENTS) scripts/find-python
	@python=$$(scripts/find-python) || exit 1; \
	  [ -x $(BENCH_VENV)/bin/python ] || "$$python" -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $(BENCH_REQUIREMENTS)
	@touch $@

# Not part of `make test`; BENCH_QUICK=1 for a ~3 minute smoke run. See docs/benchmarks.md.
bench: venv $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/run.py --project-python $(PY)

clean:
	rm -rf $(VENV) var
