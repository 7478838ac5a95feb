# koppel — the whole set-up on a fresh machine is `make demo` and `make test`.
SHELL := /bin/bash
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: venv demo test test-fast airflow bench lock validate clean

# The environment: a venv with uv, then the fully pinned lock and koppel (editable),
# compiled to bytecode as pip (and the Dockerfile) would: uv does not compile by default,
# and where PYTHONDONTWRITEBYTECODE is set (as on CI's machines) every Airflow process would
# otherwise compile ~600 modules at start, about 3 s each time.
$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -r requirements.txt -e .
	@$(PY) -m compileall -q -j 0 koppel dags plugins bench > /dev/null
	@touch $@

venv: $(VENV)/.installed

demo: venv  ## sandboxes + Airflow on SQLite + every flow of the demo tenant, with a summary
	$(PY) -m koppel.demo

test: venv  ## the whole test suite
	bash scripts/ensure-test-deps.sh
	$(PY) -m pytest

test-fast: venv  ## the fast lane: unit tests and the sandboxes' contracts, no Airflow runs, no fault matrix
	$(PY) -m pytest tests/unit tests/sandbox -m "not faults and not e2e and not browser and not cluster"

AIRFLOW_PORT ?= 8080
airflow: venv  ## Airflow standalone UI on the demo's home, with the sandboxes running (Ctrl-C stops it)
	$(PY) -m koppel.demo --standalone --port $(AIRFLOW_PORT)

bench: venv  ## benchmarks: figures printed and written to bench/results.json
	$(PY) -m bench

validate: venv  ## validate every tenant file
	$(VENV)/bin/koppel validate

lock:  ## re-pin requirements.txt from requirements.in
	$(UV) pip compile requirements.in -o requirements.txt --python-version 3.11

clean:
	rm -rf $(AIRFLOW_HOME) demo-summary.json
