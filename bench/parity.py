"""The same landed events billed on DuckDB and on Spark give the same answer.

`python -m bench.parity` (`make spark-parity`): generate the demo's events (1M by default), run
what `make demo` runs (the billing_pipeline job for the demo's day, then close_billing_period for
February, through Dagster, in process) once with BILLING_ENGINE=duckdb and once with spark, each
on its own data directory over the same landing files, and compare. Exit 0 only when they agree.

What is compared (warehouse_answer), every amount as an exact decimal string:
    invoices        billing.fct_invoices: ids, numbers, status, subtotal, discounts, credits,
                    total, total_minor, line count (run clocks included: both runs share them)
    lines           billing.fct_invoice_lines: every line's id, type, quantity, unit price,
                    unrounded and rounded amount, minor units
    ledger          ledger.ledger_document_lines: the booked documents, line by line
    outcomes        billing.fct_usage_event_outcomes counted per outcome and reason
    landed files    raw.landed_files without landed_at (each engine's run lands the files itself)
tests/test_spark_parity.py runs the same comparison on fixture data in `make test`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from bench.harness import _generate, _link_files, say

BENCH_DIR = Path(__file__).resolve().parent

# (name, SQL): every query orders its rows so both engines' answers line up.
ANSWER_QUERIES = {
    "invoices": """
        select invoice_id, invoice_number, status, issuer_id, account_id, period_start,
               period_end, plan_code, plan_version, currency, minor_units, line_count, subtotal,
               discount_total, credits_applied, total, total_minor, issued_on, closes_at,
               recalculated_at, cycle_elapsed_percent, estimated_period_charges
        from billing.fct_invoices order by invoice_id
    """,
    "lines": """
        select invoice_line_id, invoice_id, invoice_number, status, line_number, line_type,
               charge_id, meter_code, dimension_value, pricing_model, description, quantity,
               unit_price, amount_unrounded, amount, amount_minor, corrects_invoice_id,
               corrects_line_id, instrument_id
        from billing.fct_invoice_lines order by invoice_line_id
    """,
    "ledger": "select * exclude (finalized_at) from ledger.ledger_document_lines "
    "order by document_id, line_number",
    "outcomes": """
        select outcome, coalesce(reason, '') as reason, count(*) as events
        from billing.fct_usage_event_outcomes group by all order by all
    """,
    "landed_files": "select file_sha256, file_name, file_format, file_seq, row_count, batch_id "
    "from raw.landed_files order by file_seq",
}


def _exact(value: object) -> object:
    """Decimals as their exact text (scale included), everything else as it is."""
    return f"{value:f}" if isinstance(value, Decimal) else value


def warehouse_answer(warehouse) -> dict[str, list[tuple]]:
    """What parity compares, read the way the exports read it (DuckDB SQL through
    BillingWarehouse.connect, whatever the engine)."""
    answer = {}
    with warehouse.connect(read_only=True) as connection:
        for name, sql in ANSWER_QUERIES.items():
            if name == "ledger" and not _has_table(connection, "ledger", "ledger_document_lines"):
                answer[name] = []
                continue
            rows = connection.execute(sql).fetchall()
            answer[name] = [tuple(_exact(value) for value in row) for row in rows]
    return answer


def _has_table(connection, schema: str, table: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def answer_differences(reference: dict, candidate: dict, limit: int = 10) -> list[str]:
    """Human-readable differences, at most `limit` rows per part; empty when identical."""
    differences = []
    for name in ANSWER_QUERIES:
        expected, actual = reference.get(name, []), candidate.get(name, [])
        if expected == actual:
            continue
        missing = [row for row in expected if row not in actual]
        extra = [row for row in actual if row not in expected]
        differences.append(
            f"{name}: {len(expected)} rows vs {len(actual)}; "
            f"only in the reference: {missing[:limit]}; only in the candidate: {extra[:limit]}"
        )
    return differences


def summary(answer: dict) -> str:
    totals: dict[str, Decimal] = {}
    for row in answer["invoices"]:
        currency, total = row[9], Decimal(row[15])
        totals[currency] = totals.get(currency, Decimal(0)) + total
    return (
        f"{len(answer['invoices'])} invoices, {len(answer['lines'])} lines, "
        f"{len(answer['ledger'])} ledger lines, "
        f"{sum(row[2] for row in answer['outcomes']):,} events classified; totals "
        + ", ".join(f"{currency} {total:f}" for currency, total in sorted(totals.items()))
    )


def run_demo_jobs(warehouse, *, day: str, as_of: str, close_period: str) -> None:
    """What `make demo` runs, in process: billing_pipeline for `day`, then close_billing_period
    for `close_period`, both on the clock `as_of`."""
    import dagster as dg

    from dagster_billing.definitions import in_process_job_selection, pipeline_assets_and_checks
    from dagster_billing.defs.dbt.assets import AS_OF_TAG
    from dagster_billing.defs.resources import dbt_resource

    instance = dg.DagsterInstance.ephemeral()
    for job_name, partition in (("billing_pipeline", day), ("close_billing_period", close_period)):
        dg.materialize(
            pipeline_assets_and_checks(),
            selection=in_process_job_selection(job_name),
            partition_key=partition,
            tags={AS_OF_TAG: as_of},
            resources={"warehouse": warehouse, "dbt": dbt_resource()},
            instance=instance,
            raise_on_error=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parity", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out" / "parity")
    parser.add_argument("--as-of", default="2026-03-05T00:00:00", help="the demo's clock")
    parser.add_argument("--close-period", default="2026-02-01")
    args = parser.parse_args(argv)

    from dagster_billing.defs.resources import BillingWarehouse

    root = args.out_dir.resolve()
    say(f"generating {args.events:,} events (as make demo does) ...")
    generated = root / "generated"
    _generate(generated, reuse=True, events=args.events, seed=7, start=date(2026, 1, 1), days=59)
    answers = {}
    for engine in ("duckdb", "spark"):
        data_dir = root / engine
        shutil.rmtree(data_dir, ignore_errors=True)
        _link_files(generated / "landing", data_dir / "landing")
        warehouse = BillingWarehouse(data_dir=str(data_dir), engine=engine)
        say(f"{engine}: billing_pipeline and close_billing_period ...")
        started = time.perf_counter()
        run_demo_jobs(
            warehouse,
            day=args.as_of[:10],
            as_of=args.as_of,
            close_period=args.close_period,
        )
        answers[engine] = warehouse_answer(warehouse)
        say(f"  {engine}: {time.perf_counter() - started:.1f} s; {summary(answers[engine])}")
    differences = answer_differences(answers["duckdb"], answers["spark"])
    if differences:
        say("FAILED: DuckDB and Spark disagree:\n  " + "\n  ".join(differences))
        return 1
    say("identical: invoices, lines, totals, ledger, outcome counts and landed files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
