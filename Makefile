# Streamboard: `make run` serves the demo, `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
SEED_ROWS ?= 1000000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test bench lint venv clean

$(VENV)/.installed: requirements.txt scripts/find-python
	@python=$$(scripts/find-python) || exit 1; \
	  [ -x $(PY) ] || "$$python" -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(VENV)/.installed

run: venv
	PORT=$(PORT) SEED_ROWS=$(SEED_ROWS) $(PY) scripts/run_demo.py

test: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: venv
	$(PY) -m pip install -q --disable-pip-version-check -r ../shared/bench/requirements.txt
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var
