# Two commands matter: `make demo` (sample data -> invoices on disk) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
EVENTS ?= 1000000
# The demo's clock: after the grace period of February, so January and February are final.
DEMO_AS_OF ?= 2026-03-05T00:00:00
DEMO_DAY := $(firstword $(subst T, ,$(DEMO_AS_OF)))
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
	$(BIN)/dagster job execute -m dagster_billing.definitions -j billing_pipeline \
	    --tags '{"dagster/partition": "$(DEMO_DAY)", "billing/as_of": "$(DEMO_AS_OF)"}'
	$(BIN)/dagster job execute -m dagster_billing.definitions -j close_billing_period \
	    --tags '{"dagster/partition": "2026-02-01", "billing/as_of": "$(DEMO_AS_OF)"}'
	$(BIN)/billing summary

test: manifest
	$(BIN)/pytest

dev: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

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
