"""Measure an incremental run of one new day on a month of history against a full build.

    .venv/bin/python scripts/incremental_ratio.py --events 1000000 --out /tmp/incremental

1. Generates --events usage rows over 32 days (January 2026 + February 1).
2. Lands January's files and builds everything (`dbt build --full-refresh`).
3. Lands February 1's file and runs what the daily schedule runs for that day: an incremental
   `dbt build` with the day's partition window (usage_window_start/end).
4. Rebuilds the same data from scratch (`dbt build --full-refresh`): the full build it replaces.

Prints wall-clock seconds of each dbt process, dbt's own elapsed time, and the summed execution
time of the usage models (classify, dedupe, daily/hourly rollups, period aggregation), whose cost
is what incremental processing changes. dbt is run as Dagster runs it (a dbt process with vars).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from dagster_billing.datagen import generate_events
from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
from dagster_billing.defs.ingest.landing import land_files, landing_files
from dagster_billing.defs.resources import BillingWarehouse
from dagster_billing.lib.dbt_args import dbt_build_args
from dagster_billing.paths import DBT_PROJECT_DIR, SEEDS_DIR

USAGE_MODELS = (
    "int_usage_events_classified",
    "int_usage_events_deduped",
    "fct_usage_event_outcomes",
    "int_usage_daily",
    "int_usage_daily_unique_values",
    "int_usage_hourly",
    "int_usage_aggregated",
)


def land(warehouse: BillingWarehouse, files: list[Path]) -> None:
    for path in files:
        land_files(warehouse.raw_store, [path])


def dbt_build(warehouse: BillingWarehouse, target: Path, *extra: str, **dbt_vars: str) -> dict:
    command = [DBT_EXECUTABLE, *dbt_build_args(), "--quiet", "--target-path", str(target), *extra]
    command += ["--vars", json.dumps(dbt_vars)]
    with warehouse.dbt_environment():
        started = time.perf_counter()
        subprocess.run(command, cwd=DBT_PROJECT_DIR, check=True)
        wall = time.perf_counter() - started
    results = json.loads((target / "run_results.json").read_text())
    usage = {
        r["unique_id"].rsplit(".", 1)[-1]: r["execution_time"]
        for r in results["results"]
        if r["unique_id"].startswith("model.") and r["unique_id"].endswith(USAGE_MODELS)
    }
    return {"wall": wall, "dbt_elapsed": results["elapsed_time"], "usage_models": usage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    generated = args.out / "generated"
    generate_events(
        generated,
        events=args.events,
        days=32,
        accounts_csv=SEEDS_DIR / "accounts.csv",
        meters_csv=SEEDS_DIR / "meters.csv",
    )
    files = landing_files(generated)
    new_day = [p for p in files if p.name == "events_2026-02-01.ndjson"]
    history = [p for p in files if "2026-01" in p.name]

    warehouse = BillingWarehouse(data_dir=str(args.out / "data"))
    land(warehouse, history)
    month = dbt_build(warehouse, args.out / "t1", "--full-refresh", as_of="2026-02-01T00:00:00")
    land(warehouse, new_day)
    incremental = dbt_build(
        warehouse,
        args.out / "t2",
        as_of="2026-02-01T06:00:00",
        usage_window_start="2026-02-01T00:00:00",
        usage_window_end="2026-02-02T00:00:00",
    )
    with duckdb.connect(str(warehouse.duckdb_path), read_only=True) as connection:
        incremental_invoices = connection.sql(
            "select * from billing.fct_invoices order by invoice_id"
        ).fetchall()
        events = connection.execute("select count(*) from raw.usage_events").fetchone()[0]
        new_events = connection.execute(
            "select count(*) from raw.usage_events where source_file = ?", [new_day[0].name]
        ).fetchone()[0]
    full = dbt_build(warehouse, args.out / "t3", "--full-refresh", as_of="2026-02-01T06:00:00")
    with duckdb.connect(str(warehouse.duckdb_path), read_only=True) as connection:
        same = (
            incremental_invoices
            == connection.sql("select * from billing.fct_invoices order by invoice_id").fetchall()
        )

    report = {
        "events_in_warehouse": events,
        "events_in_new_day": new_events,
        "first_build_of_the_month": month,
        "incremental_new_day": incremental,
        "full_build_month_plus_day": full,
        "ratio_wall": round(full["wall"] / incremental["wall"], 2),
        "ratio_dbt_elapsed": round(full["dbt_elapsed"] / incremental["dbt_elapsed"], 2),
        "ratio_usage_models": round(
            sum(full["usage_models"].values()) / sum(incremental["usage_models"].values()), 2
        ),
        "incremental_equals_full_refresh": same,
    }
    json.dump(report, sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
