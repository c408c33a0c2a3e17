# Two commands matter: `make demo` (sample data -> invoices on disk) and `make test`.
SHELL := /bin/bash
# The venv's interpreter: the distribution's /usr/bin/python3 when it is 3.11+ and can make a venv,
# else `python3` from PATH. Distributions build Python with PGO and LTO; pyenv and other version
# managers compile it without them by default. On Debian's 3.11 against pyenv's: the whole
# suite about 8 % less CPU, Python-heavy tests up to 18 % (decision 116). `make PYTHON=...`
# picks another; delete .venv to switch.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
EVENTS ?= 1000000
# The demo's clock: after the grace period of February, so January and February are final.
DEMO_AS_OF ?= 2026-03-05T00:00:00
# The demo data's first day (`billing generate --start`, the partitions' start) and last closed
# period: the demo's runs cover these ranges, so the UI shows those partitions done.
DEMO_FIRST_DAY ?= 2026-01-01
DEMO_LAST_PERIOD ?= 2026-02-01
SIZE ?= 10M

export BILLING_DATA_DIR ?= $(CURDIR)/data
# The value runs set (BillingWarehouse.dbt_environment): parsing with the same value lets each
# run's dbt reuse the partial parse instead of parsing the whole project again.
export BILLING_SEEDS_DIR ?= ../seeds
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PATH := $(BIN):$(PATH)
# mkdocs-material prints an end-of-life banner on every build; nothing here to act on.
export NO_MKDOCS_2_WARNING := 1

.PHONY: install manifest postgres-server browser demo test test-fast docs docs-check docs-generate dbt-docs dev lint format lock clean bench fakes sync-demo serve watch bench-ingest bench-ingest-latency spark-parity bench-portal bench-summary

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	# Compiled once here: with PYTHONDONTWRITEBYTECODE set (as in CI), every Python process
	# (run workers, dbt, the API) would otherwise compile dagster and dbt again (~3 s each).
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

# dagster-dbt loads dbt's manifest; outside `dagster dev` it has to be built explicitly.
manifest: install
	cd dbt_project && $(BIN)/billing-dbt parse --quiet

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# One line per stage on the terminal; the Dagster and dbt logs go to $(BILLING_DATA_DIR)/logs/demo.log.
demo: manifest $(DAGSTER_HOME)/dagster.yaml
	@$(BIN)/billing dbt-server --socket $(CURDIR)/.dbt-demo.sock --exit-with-parent \
	    2>/dev/null & \
	BILLING_DBT_SERVER=$(CURDIR)/.dbt-demo.sock $(BIN)/billing demo --fresh \
	    --events $(EVENTS) --first-day $(DEMO_FIRST_DAY) --as-of $(DEMO_AS_OF) \
	    --close-period $(DEMO_LAST_PERIOD)

# Local NetSuite, Salesforce (HTTPS) and Stripe contract servers on 127.0.0.1:8701-8703, until
# Ctrl-C; `source $(BILLING_DATA_DIR)/fakes/env.sh` points the sync resources at them.
fakes: install
	$(BIN)/billing fakes serve --state-dir $(BILLING_DATA_DIR)/fakes

# After `make demo`: push the invoices to the contract servers (job billing_sync; they keep their
# records in $(BILLING_DATA_DIR)/fakes between runs), show what they hold and the checks.
sync-demo: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/billing fakes run --state-dir $(BILLING_DATA_DIR)/fakes -- \
		$(BIN)/dagster job execute -m dagster_billing.definitions -j billing_sync; \
	status=$$?; $(BIN)/billing sync-report || status=1; exit $$status

# $(call apt-install,<check that succeeds when present>,<Debian package>,<what is skipped without it>)
# Installs a Debian package only when missing, and only as root with apt-get (CI: a clean clone as
# root); otherwise says which tests will be skipped (they skip themselves, saying why).
define apt-install
	@if { $(1); } >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(2) (apt-get install $(2)) ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	else \
		echo "$(2) not found and not root: $(3) will be skipped"; \
	fi
endef

# PostgreSQL server binaries for tests/test_portable_sql.py and the bench's peer (the tests and
# the bench start a throwaway server themselves).
postgres-server:
	$(call apt-install,command -v initdb || ls /usr/lib/postgresql/*/bin/initdb,postgresql,the Postgres tests)

# Debian's Chromium for the browser tests (tests/browser.py drives it with Playwright, whose own
# browser download cannot be used here).
browser:
	$(call apt-install,command -v chromium,chromium,the browser tests)

# The whole suite (what CI runs), on three workers for two cores (a worker waiting on a server, a
# daemon or Spark's JVM would leave a core idle): xdist_group keeps each shared warehouse's users
# on the worker that built it (docs/testing.md). Prints its duration and the 15 slowest tests.
TEST_WORKERS ?= 3
PYTEST_ARGS ?=
test: manifest postgres-server browser docs-check
	time $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# The inner loop: unit tests and dbt's unit tests, no end-to-end runs (`slow`), in under 2 minutes.
test-fast: manifest
	time $(BIN)/pytest -m "not slow" -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# The docs site (mkdocs-material, mkdocs.yml): `make docs` serves it; docs-check builds it strictly
# (a broken link, a page missing from the nav or a stale generated page fails), in `make test`.
DOCS_PORT ?= 8001
docs: install docs-generate
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-check: install
	$(BIN)/mkdocs build --strict

# docs/benchmarks.md (from bench/results/*.json) and docs/openapi.json (from the API).
docs-generate: install
	$(BIN)/python scripts/generate_docs.py

# With a dbt fork server for the session (docs/operations.md#the-dbt-fork-server): every dbt
# invocation of a run forks from it instead of importing dbt again.
dev: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/billing dbt-server --socket $(CURDIR)/.dbt-dev.sock --exit-with-parent & \
	BILLING_DBT_SERVER=$(CURDIR)/.dbt-dev.sock $(BIN)/dagster dev -w workspace.yaml

# dbt's documentation of every model and column: dbt_project/target/docs/static_index.html, one
# file to open in a browser. Written from the YAML and SQL alone (--empty-catalog: no column
# types read from the database, no SQL compiled), so it never opens the warehouse a run writes.
dbt-docs: manifest
	cd dbt_project && $(BIN)/dbt docs generate --quiet --static --empty-catalog --no-compile --target-path target/docs
	@echo "dbt docs: $(CURDIR)/dbt_project/target/docs/static_index.html"

# Floor vs pipeline vs incremental vs Postgres on the same generated events; docs/benchmarks.md.
# make bench SIZE=100M PEER_SIZE=10M BENCH_ARGS="--no-postgres"; the Spark variant (spark/duckdb)
# runs up to 10M unless BENCH_ARGS="--no-spark" (or --spark above 10M).
PEER_SIZE ?=
BENCH_ARGS ?=
bench: manifest postgres-server
	$(BIN)/python -m bench --size $(SIZE) $(if $(PEER_SIZE),--peer-size $(PEER_SIZE)) $(BENCH_ARGS)
	$(BIN)/python scripts/generate_docs.py

# Issue 23's targets against bench/results/*.json: figure, met / missed / measured differently /
# not measured (bench/targets.py); `make bench*` print it at the end too.
bench-summary: install
	$(BIN)/python -m bench.targets

# The demo's events (EVENTS, default 1M) billed by the same Dagster jobs on DuckDB and on Spark
# (BILLING_ENGINE=duckdb|spark, local mode, Java 17+): exits 0 only if invoices, lines, totals,
# the ledger and outcome counts are identical (bench/parity.py, docs/spark.md).
spark-parity: manifest
	$(BIN)/python -m bench.parity --events $(EVENTS)

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
	$(BIN)/python bench/ingest_load.py --workers 2 --batch 1000 --concurrency 2 3 4 --out bench/results/ingest_load_batch1000.json
	$(BIN)/python scripts/generate_docs.py

# Customer portal: server time per page at 10M events over twelve billing periods (builds
# bench/out/portal/data once); results in bench/results/portal.json.
bench-portal: manifest
	$(BIN)/python bench/portal_bench.py

# POST -> visible in billing.fct_rated_usage, through `billing watch`.
bench-ingest-latency: manifest
	$(BIN)/python bench/ingest_latency.py --out bench/results/ingest_latency.json
	$(BIN)/python scripts/generate_docs.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency (needs the package index).
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(BILLING_DATA_DIR) $(DAGSTER_HOME) dbt_project/target build/site
