"""The floor: bench/floor.sql, the pipeline's answer hand-written in DuckDB, run on landing files."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from dagster_billing.defs.ingest.files import landing_format
from dagster_billing.lib.duckdb_config import duckdb_config

FLOOR_SQL = Path(__file__).with_name("floor.sql")
LANDING_FIELDS = ("uniqueId", "account", "meter", "value", "ts", "properties")

EMPTY_CSV_SOURCE = """(
    select
        cast(null as varchar) as filename, cast(null as bigint) as ordinality,
        cast(null as varchar) as "uniqueId", cast(null as varchar) as account,
        cast(null as varchar) as meter, cast(null as varchar) as value,
        cast(null as varchar) as ts, cast(null as varchar) as properties
    where false
)"""


@dataclass(frozen=True)
class FloorResult:
    invoices: dict[str, tuple[str, Decimal]]
    outcomes: dict[str, int]


# What floor.sql rates (calendar-month periods, the rated lines before coupons and prepaid
# credits: the pipeline's fct_invoices.subtotal). The sample plans (plans/, compiled to seeds/price_*.csv) use all of it;
# the pricing engine can do more (docs/plans.md), and seeds that need more are refused rather
# than rated differently from the pipeline.
FLOOR_PRICING_MODELS = frozenset({"per_unit", "matrix", "graduated", "volume", "seat", "flat"})
FLOOR_DIMENSION_MATCHES = frozenset({"all", "value"})
FLOOR_UNSUPPORTED_CHARGE_TERMS = ("discount_percent", "minimum_spend", "maximum_spend")


class OutOfFloorScope(ValueError):
    """The seeds price something floor.sql does not implement."""


def check_floor_scope(seeds_dir: Path) -> None:
    """Raise OutOfFloorScope naming every seed row floor.sql would not rate like the pipeline."""

    def rows(name: str) -> list[dict[str, str]]:
        with (Path(seeds_dir) / name).open(newline="") as handle:
            return list(csv.DictReader(handle))

    problems = []
    for charge in rows("price_charges.csv"):
        where = (
            f"price_charges {charge['plan_code']} v{charge['plan_version']} {charge['charge_id']}"
        )
        if charge["pricing_model"] not in FLOOR_PRICING_MODELS:
            problems.append(f"{where}: pricing model {charge['pricing_model']}")
        if charge["dimension_match"] not in FLOOR_DIMENSION_MATCHES:
            problems.append(
                f"{where}: dimension_match {charge['dimension_match']} (group_by/default)"
            )
        for term in FLOOR_UNSUPPORTED_CHARGE_TERMS:
            if charge.get(term):
                problems.append(f"{where}: {term}")
    plan_versions: dict[str, int] = {}
    for plan in rows("price_plans.csv"):
        plan_versions[plan["plan_code"]] = plan_versions.get(plan["plan_code"], 0) + 1
        if plan["account_id"]:
            problems.append(f"price_plans {plan['plan_code']}: account override")
        if plan["effective_to"]:
            problems.append(f"price_plans {plan['plan_code']}: effective_to (several versions)")
        if plan["billing_interval"] != "month":
            problems.append(f"price_plans {plan['plan_code']}: billing_interval")
    problems += [
        f"price_plans {code}: {count} versions"
        for code, count in plan_versions.items()
        if count > 1
    ]
    subscribed: dict[str, int] = {}
    for subscription in rows("subscriptions.csv"):
        account = subscription["account_id"]
        subscribed[account] = subscribed.get(account, 0) + 1
    problems += [
        f"subscriptions {account}: {count} subscriptions"
        for account, count in subscribed.items()
        if count > 1
    ]
    problems += [
        f"billing_cycles {cycle['account_id']}: anniversary periods"
        for cycle in rows("billing_cycles.csv")
    ]
    problems += [
        f"meters {meter['meter_code']}: several dimension keys (decision 81)"
        for meter in rows("meters.csv")
        if "|" in (meter.get("dimension_key") or "")
    ]
    if problems:
        raise OutOfFloorScope(
            f"{seeds_dir}: floor.sql does not rate: " + "; ".join(sorted(set(problems)))
        )


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join(_sql_string(p) for p in paths) + "]"


def _landing_files(landing_dir: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The landing files in the pipeline's landing order: all, the NDJSON ones, the CSV ones."""
    files = sorted(p for p in Path(landing_dir).iterdir() if p.is_file() and landing_format(p))
    ndjson = [p for p in files if landing_format(p) == "ndjson"]
    csv = [p for p in files if landing_format(p) == "csv"]
    return files, ndjson, csv


def floor_script(landing_dir: Path, seeds_dir: Path) -> str:
    """floor.sql with the landing files (in the pipeline's landing order) and seeds filled in."""
    files, ndjson, csv = _landing_files(landing_dir)
    if not ndjson:
        raise ValueError(f"{landing_dir}: the floor needs at least one NDJSON landing file")
    csv_source = (
        f"read_csv({_sql_list(csv)}, header = true, all_varchar = true, filename = true, "
        "ignore_errors = true, store_rejects = true, strict_mode = true) with ordinality"
        if csv
        else EMPTY_CSV_SOURCE
    )
    return (
        FLOOR_SQL.read_text()
        .replace("@all_files@", _sql_list(files))
        .replace("@ndjson_files@", _sql_list(ndjson))
        .replace("@csv_source@", csv_source)
        .replace("@seeds@", str(Path(seeds_dir).resolve()).replace("'", "''"))
    )


def read_landing_script(landing_dir: Path, out_dir: Path) -> str:
    """DuckDB reading the landing files and writing their rows to Parquet: the floor landing is
    measured against (issue 23's target 2). Fields as text, like the raw layer keeps them; lines
    and records DuckDB cannot read are skipped (landing quarantines them)."""
    _files, ndjson, csv = _landing_files(landing_dir)
    out_dir = Path(out_dir)
    statements = ["set TimeZone = 'UTC';"]
    if ndjson:
        columns = ", ".join(f"'{name}': 'varchar'" for name in LANDING_FIELDS[:-1])
        statements.append(
            f"copy (select * from read_json({_sql_list(ndjson)}, format = 'newline_delimited', "
            f"columns = {{{columns}, 'properties': 'json'}}, ignore_errors = true)) "
            f"to {_sql_string(out_dir / 'ndjson.parquet')} (format parquet);"
        )
    if csv:
        statements.append(
            f"copy (select * from read_csv({_sql_list(csv)}, header = true, all_varchar = true, "
            "ignore_errors = true)) "
            f"to {_sql_string(out_dir / 'csv.parquet')} (format parquet);"
        )
    return "\n".join(statements)


def read_landing(landing_dir: Path, out_dir: Path) -> int:
    """Run read_landing_script in memory; the number of rows written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(config=duckdb_config())
    try:
        connection.execute(read_landing_script(landing_dir, out_dir))
        return sum(
            connection.execute(f"select count(*) from {_sql_string(part)}").fetchone()[0]
            for part in sorted(out_dir.glob("*.parquet"))
        )
    finally:
        connection.close()


def run_floor(landing_dir: Path, seeds_dir: Path, database: Path) -> FloorResult:
    """Run the floor script into a fresh DuckDB file and return invoice totals and outcomes."""
    check_floor_scope(seeds_dir)
    script = floor_script(landing_dir, seeds_dir)
    database = Path(database)
    for stale in (database, database.with_name(database.name + ".wal")):
        stale.unlink(missing_ok=True)
    connection = duckdb.connect(str(database), config=duckdb_config())
    try:
        connection.execute(script)
        invoices = {
            invoice_id: (currency, total)
            for invoice_id, currency, total in connection.execute(
                "select invoice_id, currency, total from floor_invoices"
            ).fetchall()
        }
        outcomes: dict[str, int] = {}
        for outcome, reason, count in connection.execute(
            "select outcome, reason, row_count from floor_outcomes"
        ).fetchall():
            key = outcome if reason is None else f"{outcome}:{reason}"
            outcomes[key] = outcomes.get(key, 0) + count
        rejected_csv = connection.execute(
            "select count(*) from duckdb_tables() where table_name = 'reject_errors'"
        ).fetchone()[0]
        if rejected_csv:
            malformed = connection.execute("select count(*) from reject_errors").fetchone()[0]
            if malformed:
                key = "quarantined:malformed_csv_row"
                outcomes[key] = outcomes.get(key, 0) + malformed
    finally:
        connection.close()
    return FloorResult(invoices=invoices, outcomes=outcomes)


if __name__ == "__main__":  # python -m bench.floor LANDING SEEDS DB: a quick look at the floor
    import sys
    import time

    started = time.perf_counter()
    result = run_floor(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(f"{time.perf_counter() - started:.2f} s, {len(result.invoices)} invoices")
    print(json.dumps(result.outcomes, indent=1, sort_keys=True))
