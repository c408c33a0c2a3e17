# Two commands matter: `make demo` (sample data -> invoices on disk) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
EVENTS ?= 1000000
# The demo's clock: after the grace period of February, so January and February are final.
DEMO_AS_OF ?= 2026-03-05T00:00:00
DEMO_DAY := $(firstword $(subst T, ,$(DEMO_AS_OF)))
# The demo data's first day (`billing generate --start`, the partitions' start) and last closed
# period: the demo's runs cover these ranges, so the UI shows those partitions done.
DEMO_FIRST_DAY ?= 2026-01-01
DEMO_LAST_PERIOD ?= 2026-02-01
DEMO_FIRST_PERIOD := $(shell echo $(DEMO_FIRST_DAY) | cut -c1-7)-01
SIZE ?= 10M

export BILLING_DATA_DIR ?= $(CURDIR)/data
# The value runs set (BillingWarehouse.dbt_environment): parsing with the same value lets each
# run's dbt reuse the partial parse instead of parsing the whole project again.
export BILLING_SEEDS_DIR ?= ../seeds
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PATH := $(BIN):$(PATH)

.PHONY: install manifest postgres-server browser demo test dev docs lint format lock clean bench fakes sync-demo serve watch bench-ingest bench-ingest-latency bench-portal

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
	$(BIN)/billing generate --events $(EVENTS) --start $(DEMO_FIRST_DAY) --out $(BILLING_DATA_DIR)/landing
	$(BIN)/dagster job execute -m dagster_billing.definitions -j billing_pipeline \
	    --tags '{"dagster/asset_partition_range_start": "$(DEMO_FIRST_DAY)", "dagster/asset_partition_range_end": "$(DEMO_DAY)", "billing/as_of": "$(DEMO_AS_OF)"}'
	$(BIN)/dagster job execute -m dagster_billing.definitions -j close_billing_period \
	    --tags '{"dagster/asset_partition_range_start": "$(DEMO_FIRST_PERIOD)", "dagster/asset_partition_range_end": "$(DEMO_LAST_PERIOD)", "billing/as_of": "$(DEMO_AS_OF)"}'
	$(BIN)/billing summary

# Local NetSuite, Salesforce (HTTPS) and Stripe contract servers on 127.0.0.1:8701-8703, until
# Ctrl-C; `source $(BILLING_DATA_DIR)/fakes/env.sh` points the sync resources at them.
fakes: install
	$(BIN)/billing fakes serve --state-dir $(BILLING_DATA_DIR)/fakes

# After `make demo`: push the invoices to fresh contract servers (job billing_sync), show what they hold.
sync-demo: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/billing fakes run --state-dir $(BILLING_DATA_DIR)/fakes -- \
		$(BIN)/dagster job execute -m dagster_billing.definitions -j billing_sync

# PostgreSQL server binaries for tests/test_portable_sql.py and the bench's peer (the tests and
# the bench start a throwaway server themselves). Installed only when missing, and only as root
# with apt-get (CI: a clean clone as root); otherwise the Postgres tests skip, saying why.
postgres-server:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing the PostgreSQL server (apt-get install postgresql) ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL server binaries not found and not root: the Postgres tests will be skipped"; \
	fi

# Debian's Chromium for the browser tests (tests/browser.py drives it with Playwright; Playwright's
# own browser download cannot be used here). Installed only when missing, and only as root with
# apt-get; otherwise the browser tests are skipped, saying why.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Chromium (apt-get install chromium) ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium not found and not root: the browser tests will be skipped"; \
	fi

test: manifest postgres-server browser
	$(BIN)/pytest

dev: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

# dbt's documentation of every model and column: dbt_project/target/docs/static_index.html, one
# file to open in a browser. Written from the YAML and SQL alone (--empty-catalog: no column
# types read from the database, no SQL compiled), so it never opens the warehouse a run writes.
docs: manifest
	cd dbt_project && $(BIN)/dbt docs generate --quiet --static --empty-catalog --no-compile --target-path target/docs
	@echo "dbt docs: $(CURDIR)/dbt_project/target/docs/static_index.html"

# Floor vs pipeline vs incremental vs Postgres on the same generated events; README "Benchmark".
# make bench SIZE=100M PEER_SIZE=10M BENCH_ARGS="--no-postgres"
PEER_SIZE ?=
BENCH_ARGS ?=
bench: manifest postgres-server
	$(BIN)/python -m bench --size $(SIZE) $(if $(PEER_SIZE),--peer-size $(PEER_SIZE)) $(BENCH_ARGS)

# The ingestion API on http://127.0.0.1:8000 (keys: `billing api-keys create --tenant T --account A`).
PORT ?= 8000
WORKERS ?= 1
serve: install
	$(BIN)/billing serve --port $(PORT) --workers $(WORKERS)

# Land and rate new files as they arrive, without the Dagster daemon (`make dev` runs the sensor).
watch: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/billing watch

# Load test of POST /v1/measurements (not part of `make test`); results in bench/results/.
bench-ingest: install
	$(BIN)/python bench/ingest_load.py --concurrency 1 2 4 8 --out bench/results/ingest_load.json

# Customer portal: server time per page at 10M events over twelve billing periods (builds
# bench/out/portal/data once); results in bench/results/portal.json.
bench-portal: manifest
	$(BIN)/python bench/portal_bench.py

# POST -> visible in billing.fct_rated_usage, through `billing watch`.
bench-ingest-latency: manifest
	$(BIN)/python bench/ingest_latency.py --out bench/results/ingest_latency.json

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
