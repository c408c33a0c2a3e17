"""The floor: bench/floor.sql, the pipeline's answer hand-written in DuckDB, run on landing files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from dagster_billing.defs.ingest.files import landing_format

FLOOR_SQL = Path(__file__).with_name("floor.sql")

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


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def floor_script(landing_dir: Path, seeds_dir: Path) -> str:
    """floor.sql with the landing files (in the pipeline's landing order) and seeds filled in."""
    files = sorted(p for p in Path(landing_dir).iterdir() if p.is_file() and landing_format(p))
    ndjson = [p for p in files if landing_format(p) == "ndjson"]
    csv = [p for p in files if landing_format(p) == "csv"]
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


def run_floor(landing_dir: Path, seeds_dir: Path, database: Path) -> FloorResult:
    """Run the floor script into a fresh DuckDB file and return invoice totals and outcomes."""
    script = floor_script(landing_dir, seeds_dir)
    database = Path(database)
    for stale in (database, database.with_name(database.name + ".wal")):
        stale.unlink(missing_ok=True)
    connection = duckdb.connect(str(database))
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
