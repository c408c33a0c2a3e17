"""The rated tables as Parquet for the ingestion API's read endpoints.

The API must not open the DuckDB file (the pipeline is its single writer, and a read-only open
fails while a writer holds it). This asset copies the tables the API serves into
snapshots/api/<version>/ and then swaps snapshots/api/CURRENT to the new version, so the API
reads one consistent version, a few seconds old at most while the sensor keeps runs going.
"""

import os
import shutil
from datetime import UTC, datetime

import dagster as dg
import orjson

from dagster_billing.api.reads import CURRENT, SNAPSHOT_TABLES
from dagster_billing.api.settings import api_snapshot_dir
from dagster_billing.defs import groups
from dagster_billing.defs.resources import DUCKDB_POOL, BillingWarehouse

KEEP_VERSIONS = 3


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dg.asset(
    key=["exports", "api_snapshot"],
    deps=[dg.AssetKey(table.split(".")) for table in SNAPSHOT_TABLES.values()],
    group_name=groups.EXPORTS,
    kinds={"parquet"},
    pool=DUCKDB_POOL,
)
def api_snapshot(
    context: dg.AssetExecutionContext, warehouse: BillingWarehouse
) -> dg.MaterializeResult:
    """Rated usage, invoice lines and invoices as Parquet for GET /v1/accounts/{a}/usage|estimate."""
    return dg.MaterializeResult(metadata=write_api_snapshot(warehouse, context.run_id))


def write_api_snapshot(warehouse: BillingWarehouse, run_id: str) -> dict:
    """Write a new snapshot version, point CURRENT at it, drop old versions; its metadata."""
    root = api_snapshot_dir(warehouse.root)
    root.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC)
    version = f"{created_at:%Y%m%dT%H%M%S%fZ}"
    staging = root / f".{version}"
    staging.mkdir()
    rows = {}
    with warehouse.connect(read_only=True) as connection:
        for name, table in SNAPSHOT_TABLES.items():
            target = staging / f"{name}.parquet"
            connection.execute(
                f"copy (select * from {table}) to {_sql_string(str(target))} (format parquet)"
            )
            [(rows[name],)] = connection.execute(f"select count(*) from {table}").fetchall()
    (staging / "meta.json").write_bytes(
        orjson.dumps({"created_at": created_at.isoformat(), "run_id": run_id, **rows})
    )
    os.replace(staging, root / version)
    pointer = root / f".{CURRENT}.tmp"
    pointer.write_text(version)
    os.replace(pointer, root / CURRENT)

    versions = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in versions[:-KEEP_VERSIONS]:
        shutil.rmtree(root / old, ignore_errors=True)
    return {
        "version": version,
        "directory": dg.MetadataValue.path(str(root / version)),
        **{f"{name}_rows": dg.MetadataValue.int(count) for name, count in rows.items()},
    }
