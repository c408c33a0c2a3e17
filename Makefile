# Two commands matter: `make demo` (sample data -> invoices on disk) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
EVENTS ?= 1000000
SIZE ?= 10M

export BILLING_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PATH := $(BIN):$(PATH)

.PHONY: install manifest demo test dev lint format lock clean bench

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

# dagster-dbt loads dbt's manifest; outside `dagster dev` it has to be built explicitly.
manifest: install
	cd dbt_project && $(BIN)/dbt parse --quiet

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: manifest $(DAGSTER_HOME)/dagster.yaml
	rm -rf $(BILLING_DATA_DIR)
	$(BIN)/billing generate --events $(EVENTS) --out $(BILLING_DATA_DIR)/landing
	$(BIN)/dagster job execute -m dagster_billing.definitions -j billing_pipeline
	$(BIN)/billing summary

test: manifest
	$(BIN)/pytest

dev: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

# Floor vs pipeline vs incremental vs Postgres on the same generated events; README "Benchmark".
# make bench SIZE=100M PEER_SIZE=10M BENCH_ARGS="--no-postgres"
PEER_SIZE ?=
BENCH_ARGS ?=
bench: manifest
	$(BIN)/python -m bench --size $(SIZE) $(if $(PEER_SIZE),--peer-size $(PEER_SIZE)) $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency (needs the package index).
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(BILLING_DATA_DIR) $(DAGSTER_HOME) dbt_project/target
