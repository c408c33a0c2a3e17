"""Publishing a snapshot: the analyst-facing marts copied into a new immutable DuckDB file.

Steps (reader.py describes the layout readers rely on):
  1. an in-memory DuckDB attaches the warehouse READ_ONLY and a new file `.<name>.tmp`;
  2. in one transaction, CREATE TABLE AS copies every PUBLISHED_TABLES entry, then meta.tables
     (row counts) and meta.snapshot (run id, as_of, created_at) are written;
  3. the new file is checkpointed, detached, fsync'd and renamed to `<name>` (os.replace);
  4. the symlink current.duckdb is replaced by one naming it (os.replace: atomic);
  5. files beyond the newest `keep` are deleted (never the current one).
A reader therefore opens either the previous file or the new one, each complete.

The file is written in DuckDB's v1.5.0 storage format: the `duckdb` CLI package (duckdb-cli 1.5.x,
what `billing analytics shell` runs) cannot read the 2.0 format the Python package writes by
default; the Python package reads both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_billing.analytics.reader import (
    CURRENT_LINK,
    SnapshotFile,
    analytics_dir,
    current_snapshot_path,
    list_snapshots,
)
from dagster_billing.analytics.tables import META_SCHEMA, PUBLISHED_TABLES
from dagster_billing.lib.fsync import fsync_path
from dagster_billing.lib.warehouse_lock import retry_while_locked

SNAPSHOT_STORAGE_VERSION = "v1.5.0"
DEFAULT_KEEP = 10
MIN_KEEP = 2  # the previous snapshot stays while readers that just read the symlink open it


@dataclass(frozen=True)
class PublishedSnapshot:
    path: Path
    seq: int
    row_counts: dict[str, int]
    seconds: float
    pruned: list[Path]


def keep_from_env() -> int:
    """BILLING_ANALYTICS_KEEP (default 10, at least 2): how many snapshots are kept."""
    value = os.environ.get("BILLING_ANALYTICS_KEEP")
    return max(int(value), MIN_KEEP) if value else DEFAULT_KEEP


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def publish_snapshot(
    warehouse_path: Path,
    data_dir: Path,
    *,
    run_id: str,
    as_of: datetime | None,
    keep: int | None = None,
    duckdb_config: dict[str, str] | None = None,
) -> PublishedSnapshot:
    """Copy PUBLISHED_TABLES from the warehouse into a new snapshot and make it current.

    The caller makes sure no process writes the warehouse meanwhile (the `duckdb` pool)."""
    started = time.monotonic()
    folder = analytics_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    existing = list_snapshots(data_dir)
    seq = (existing[-1].seq + 1) if existing else 1
    created_at = datetime.now(UTC).replace(microsecond=0)
    name = f"{seq:06d}-{created_at:%Y%m%dT%H%M%SZ}-{run_id[:8]}.duckdb"
    staging = folder / f".{name}.tmp"
    staging.unlink(missing_ok=True)

    connection = duckdb.connect(":memory:", config=duckdb_config or {})
    try:
        retry_while_locked(
            lambda: connection.execute(
                f"attach {_quote(str(warehouse_path))} as warehouse (read_only)"
            ),
            warehouse_path,
        )
        connection.execute(
            f"attach {_quote(str(staging))} as snapshot "
            f"(storage_version {_quote(SNAPSHOT_STORAGE_VERSION)})"
        )
        row_counts = _copy_tables(connection)
        _write_meta(connection, seq=seq, run_id=run_id, as_of=as_of, created_at=created_at)
        connection.execute("checkpoint snapshot")
        connection.execute("detach snapshot")
    except BaseException:
        connection.close()
        staging.unlink(missing_ok=True)
        raise
    connection.close()

    fsync_path(staging)
    target = folder / name
    os.replace(staging, target)
    link = folder / f".{CURRENT_LINK}.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(name)
    os.replace(link, folder / CURRENT_LINK)
    fsync_path(folder)
    pruned = prune_snapshots(data_dir, keep if keep is not None else keep_from_env())
    return PublishedSnapshot(target, seq, row_counts, time.monotonic() - started, pruned)


def _copy_tables(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    present = {
        (schema, table)
        for schema, table in connection.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'warehouse'"
            " union all "
            "select schema_name, view_name from duckdb_views() where database_name = 'warehouse'"
        ).fetchall()
    }
    missing = [
        f"{schema}.{table}" for schema, table in PUBLISHED_TABLES if (schema, table) not in present
    ]
    if missing:
        raise RuntimeError(
            f"cannot publish an analytics snapshot: the warehouse has no {', '.join(missing)} "
            "(run billing_pipeline once to build every mart)"
        )
    row_counts = {}
    connection.execute("begin transaction")
    for schema in sorted({schema for schema, _ in PUBLISHED_TABLES} | {META_SCHEMA}):
        connection.execute(f"create schema snapshot.{schema}")
    for schema, table in PUBLISHED_TABLES:
        connection.execute(
            f"create table snapshot.{schema}.{table} as select * from warehouse.{schema}.{table}"
        )
        [(count,)] = connection.execute(
            f"select count(*) from snapshot.{schema}.{table}"
        ).fetchall()
        row_counts[f"{schema}.{table}"] = count
    connection.execute(
        f"create table snapshot.{META_SCHEMA}.tables "
        "(schema_name varchar, table_name varchar, row_count bigint)"
    )
    connection.executemany(
        f"insert into snapshot.{META_SCHEMA}.tables values (?, ?, ?)",
        [[*name.split("."), count] for name, count in row_counts.items()],
    )
    connection.execute("commit")
    return row_counts


def _write_meta(
    connection: duckdb.DuckDBPyConnection,
    *,
    seq: int,
    run_id: str,
    as_of: datetime | None,
    created_at: datetime,
) -> None:
    connection.execute(
        f"""
        create table snapshot.{META_SCHEMA}.snapshot as
        select cast(? as bigint) as seq, cast(? as varchar) as run_id,
               cast(? as timestamp) as as_of, cast(? as timestamp) as created_at
        """,
        [
            seq,
            run_id,
            as_of.replace(tzinfo=None) if as_of else None,
            created_at.replace(tzinfo=None),
        ],
    )


def prune_snapshots(data_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` snapshots (never the current one); what was deleted.

    A reader holding a deleted file keeps reading it until it closes the connection."""
    try:
        current = current_snapshot_path(data_dir).name
    except LookupError:
        current = None
    snapshots: list[SnapshotFile] = list_snapshots(data_dir)
    doomed = [s.path for s in snapshots[: max(len(snapshots) - keep, 0)] if s.path.name != current]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
