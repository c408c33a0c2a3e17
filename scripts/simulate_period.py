"""Live through January 2026 one day at a time and print the draft of acct_sim after each day.

    .venv/bin/python scripts/simulate_period.py --out /tmp/simulation

Uses the lifecycle fixture (tests/fixtures/lifecycle: graduated API calls, volume-priced builds,
a capped percentage coupon, priority-ordered prepaid credits with a top-up on Jan 20). Each day
lands that day's usage file and runs `dbt build` at 23:00 of the day (what the continuous-rating
schedule does); then January is closed after its grace period (Feb 4), closed again (nothing
changes), and a late file arrives on Feb 6 (an adjustment on February's draft and a credit note).
The same scenario, in fewer steps, is tests/test_lifecycle.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import duckdb

from dagster_billing.defs.dbt.project import DBT_EXECUTABLE
from dagster_billing.defs.ingest.landing import land_files, landing_files
from dagster_billing.defs.resources import BillingWarehouse
from dagster_billing.lib.dbt_args import dbt_build_args
from dagster_billing.paths import DBT_PROJECT_DIR, REPO_ROOT, SEEDS_DIR
from dagster_billing.pricing.inputs import write_empty_account_data
from dagster_billing.pricing.plans import compile_plans

CASE = REPO_ROOT / "tests" / "fixtures" / "lifecycle"
FINALIZE_JANUARY = "2026-02-01T00:00:00"


def day_events(day: date) -> list[dict]:
    stamp = day.isoformat()
    return [
        {
            "uniqueId": f"sim-api-{stamp}",
            "account": "acct_sim",
            "meter": "api.requests",
            "value": 100,
            "ts": f"{stamp}T12:00:00Z",
        },
        {
            "uniqueId": f"sim-build-{stamp}",
            "account": "acct_sim",
            "meter": "builds.completed",
            "value": 1,
            "ts": f"{stamp}T15:00:00Z",
        },
        *[
            {
                "uniqueId": f"vol-build-{stamp}-{n}",
                "account": "acct_volume",
                "meter": "builds.completed",
                "value": 1,
                "ts": f"{stamp}T09:0{n}:00Z",
            }
            for n in range(3)
        ],
    ]


def write(landing: Path, name: str, events: list[dict]) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text("".join(json.dumps(event) + "\n" for event in events))


def land(warehouse: BillingWarehouse) -> None:
    for path in landing_files(warehouse.landing_dir):
        land_files(warehouse.raw_store, [path])


def dbt_build(warehouse: BillingWarehouse, target: Path, **dbt_vars: str) -> None:
    command = [DBT_EXECUTABLE, *dbt_build_args(), "--quiet", "--target-path", str(target)]
    with warehouse.dbt_environment():
        subprocess.run([*command, "--vars", json.dumps(dbt_vars)], cwd=DBT_PROJECT_DIR, check=True)


def invoice_row(warehouse: BillingWarehouse, invoice_id: str) -> tuple:
    with duckdb.connect(str(warehouse.duckdb_path), read_only=True) as connection:
        return connection.execute(
            "select status, coalesce(invoice_number, '-'), subtotal, discount_total, "
            "credits_applied, total, cycle_elapsed_percent, estimated_period_charges "
            "from billing.fct_invoices where invoice_id = ?",
            [invoice_id],
        ).fetchone()


def show(label: str, row: tuple) -> None:
    status, number, subtotal, discounts, credits, total, elapsed, estimate = row
    print(
        f"{label:<24} {status:<6} {number:<10} {subtotal:>9.2f} {discounts:>9.2f} "
        f"{credits:>8.2f} {total:>8.2f} {elapsed:>6.1f}% {estimate:>9.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    seeds = args.out / "seeds"
    seeds.mkdir(parents=True)
    shutil.copy(SEEDS_DIR / "currencies.csv", seeds / "currencies.csv")
    write_empty_account_data(seeds)
    for path in CASE.glob("*.csv"):
        shutil.copy(path, seeds / path.name)
    compile_plans(CASE / "plans", seeds)
    warehouse = BillingWarehouse(
        data_dir=str(args.out / "data"), plans_dir=str(CASE / "plans"), seeds_dir=str(seeds)
    )
    target = args.out / "target"

    print(
        f"{'acct_sim, January':<24} {'status':<6} {'number':<10} {'subtotal':>9} "
        f"{'discounts':>9} {'credits':>8} {'total':>8} {'cycle':>7} {'run-rate':>9}"
    )
    day = date(2026, 1, 1)
    while day <= date(2026, 1, 31):
        write(warehouse.landing_dir, f"usage_{day}.ndjson", day_events(day))
        land(warehouse)
        dbt_build(
            warehouse, target, as_of=f"{day}T23:00:00", finalize_periods_before=FINALIZE_JANUARY
        )
        show(f"day {day}", invoice_row(warehouse, "inv-acct_sim-2026-01-01"))
        day += timedelta(days=1)

    for day in (date(2026, 2, 1), date(2026, 2, 2), date(2026, 2, 3)):
        write(warehouse.landing_dir, f"usage_{day}.ndjson", day_events(day))
    land(warehouse)
    dbt_build(
        warehouse, target, as_of="2026-02-03T23:00:00", finalize_periods_before=FINALIZE_JANUARY
    )
    show("Feb 3 (in grace)", invoice_row(warehouse, "inv-acct_sim-2026-01-01"))
    dbt_build(
        warehouse, target, as_of="2026-02-04T01:00:00", finalize_periods_before=FINALIZE_JANUARY
    )
    show("close Feb 4 01:00", invoice_row(warehouse, "inv-acct_sim-2026-01-01"))
    dbt_build(
        warehouse, target, as_of="2026-02-05T01:00:00", finalize_periods_before=FINALIZE_JANUARY
    )
    show("close again Feb 5", invoice_row(warehouse, "inv-acct_sim-2026-01-01"))

    write(
        warehouse.landing_dir,
        "late_2026-02-06.ndjson",
        [
            {
                "uniqueId": "sim-api-late",
                "account": "acct_sim",
                "meter": "api.requests",
                "value": 500,
                "ts": "2026-01-31T18:00:00Z",
            },
            *[
                {
                    "uniqueId": f"vol-build-late-{n}",
                    "account": "acct_volume",
                    "meter": "builds.completed",
                    "value": 1,
                    "ts": f"2026-01-31T20:0{n}:00Z",
                }
                for n in range(10)
            ],
        ],
    )
    land(warehouse)
    dbt_build(warehouse, target, as_of="2026-02-06T09:00:00")
    show("late file, Feb 6", invoice_row(warehouse, "inv-acct_sim-2026-01-01"))
    show("  February draft", invoice_row(warehouse, "inv-acct_sim-2026-02-01"))
    dbt_build(
        warehouse, target, as_of="2026-02-07T01:30:00", finalize_periods_before=FINALIZE_JANUARY
    )
    show("close Feb 7", invoice_row(warehouse, "inv-acct_sim-2026-01-01"))
    with duckdb.connect(str(warehouse.duckdb_path), read_only=True) as connection:
        for row in connection.sql(
            "select invoice_id, line_type, description, amount from billing.fct_invoice_lines "
            "where line_type = 'adjustment'"
        ).fetchall():
            print("  adjustment:", row)
        for row in connection.sql(
            "select credit_note_number, invoice_number, total from billing.fct_credit_notes"
        ).fetchall():
            print("  credit note:", row)


if __name__ == "__main__":
    main()
