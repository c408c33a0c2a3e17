"""Publishing a snapshot: the analyst-facing marts copied into a new immutable DuckDB file.

Steps (reader.py describes the layout readers rely on):
  1. the new file `.<name>.tmp` starts as a byte copy of the current snapshot when that one can
     be built on (published by this DuckDB version with partition fingerprints), else empty;
  2. an in-memory DuckDB attaches the warehouse READ_ONLY and the new file; in one transaction
     every PUBLISHED_TABLES entry is brought up to date:
       - a table in PARTITION_COLUMNS: each partition's fingerprint (row count and the sum of
         DuckDB's hash of each row) is computed on the warehouse and compared with the one
         meta.partitions stored when the copied snapshot was published; the partitions that
         differ, or exist on one side only, are deleted and inserted again, the others stay as
         copied. Then the whole table's fingerprint is checked against the warehouse's; a table
         whose columns changed, or that fails that check, is copied whole;
       - any other table is copied whole (CREATE OR REPLACE TABLE AS);
     then meta.tables (row counts), meta.partitions and meta.snapshot (run id, as_of,
     created_at, the DuckDB version) are written;
  3. the new file is checkpointed, detached, fsync'd and renamed to `<name>` (os.replace);
  4. the symlink current.duckdb is replaced by one naming it (os.replace: atomic);
  5. files beyond the newest `keep` are deleted (never the current one).
A reader therefore opens either the previous file or the new one, each complete; a published
file is never written again (the next one is a copy).

A run that restates a few usage days rewrites those days of the usage rollups, not the months
before them (decision 129). A fingerprint is a 64-bit-hash sum: two different sets of rows share
one with a chance of about 2^-64; DuckDB's hash may change between versions, so a snapshot by
another version is not built on.

The file is written in DuckDB's v1.5.0 storage format: the `duckdb` CLI package (duckdb-cli 1.5.x,
what `billing analytics shell` runs) cannot read the 2.0 format the Python package writes by
default; the Python package reads both.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
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
from dagster_billing.analytics.tables import META_SCHEMA, PARTITION_COLUMNS, PUBLISHED_TABLES
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
    # Per partitioned table: (partitions rewritten, partitions in all); all of them when the
    # snapshot was not built on the previous one.
    partitions_rewritten: dict[str, tuple[int, int]] = field(default_factory=dict)
    built_on: Path | None = None


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
    """Bring a copy of the current snapshot (or a new file) up to the warehouse's PUBLISHED_TABLES
    and make it current.

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
    base = _base_to_build_on(data_dir)

    connection = duckdb.connect(":memory:", config=duckdb_config or {})
    try:
        if base is not None:
            shutil.copyfile(base, staging)
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
        row_counts, rewritten = _update_tables(connection, built_on_previous=base is not None)
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
    return PublishedSnapshot(
        target, seq, row_counts, time.monotonic() - started, pruned, rewritten, base
    )


def _base_to_build_on(data_dir: Path) -> Path | None:
    """The current snapshot, when it was published by this DuckDB version with partition
    fingerprints (meta.partitions): a new snapshot starts as a copy of it."""
    try:
        path = current_snapshot_path(data_dir)
    except LookupError:
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            tables = {
                table
                for (table,) in connection.execute(
                    "select table_name from duckdb_tables() where schema_name = ?", [META_SCHEMA]
                ).fetchall()
            }
            if "partitions" not in tables:
                return None
            [(version,)] = connection.execute(
                f"select duckdb_version from {META_SCHEMA}.snapshot"
            ).fetchall()
    except duckdb.Error:
        return None
    return path if version == duckdb.__version__ else None


def _update_tables(
    connection: duckdb.DuckDBPyConnection, *, built_on_previous: bool
) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    columns = _columns(connection)
    missing = [
        f"{schema}.{table}"
        for schema, table in PUBLISHED_TABLES
        if ("warehouse", schema, table) not in columns
    ]
    if missing:
        raise RuntimeError(
            f"cannot publish an analytics snapshot: the warehouse has no {', '.join(missing)} "
            "(run billing_pipeline once to build every mart)"
        )
    row_counts: dict[str, int] = {}
    rewritten: dict[str, tuple[int, int]] = {}
    connection.execute("begin transaction")
    for schema in sorted({schema for schema, _ in PUBLISHED_TABLES} | {META_SCHEMA}):
        connection.execute(f"create schema if not exists snapshot.{schema}")
    connection.execute(
        f"create table if not exists snapshot.{META_SCHEMA}.partitions (schema_name varchar, "
        "table_name varchar, partition_value varchar, row_count bigint, fingerprint hugeint)"
    )
    for schema, table in PUBLISHED_TABLES:
        partition_column = PARTITION_COLUMNS.get((schema, table))
        published = columns[("warehouse", schema, table)]
        if partition_column in [name for name, _ in published]:
            # Built on only when the copied table has the warehouse's columns.
            built_on = built_on_previous and columns.get(("snapshot", schema, table)) == published
            rewritten[f"{schema}.{table}"] = _update_partitions(
                connection, schema, table, partition_column, built_on
            )
        else:
            connection.execute(
                f"create or replace table snapshot.{schema}.{table} as "
                f"select * from warehouse.{schema}.{table}"
            )
        [(count,)] = connection.execute(
            f"select count(*) from snapshot.{schema}.{table}"
        ).fetchall()
        row_counts[f"{schema}.{table}"] = count
    # Fingerprints of tables no longer published a partition at a time are dropped.
    connection.execute(
        f"delete from snapshot.{META_SCHEMA}.partitions "
        "where schema_name || '.' || table_name not in (select unnest(?))",
        [list(rewritten)],
    )
    connection.execute(
        f"create or replace table snapshot.{META_SCHEMA}.tables "
        "(schema_name varchar, table_name varchar, row_count bigint)"
    )
    connection.executemany(
        f"insert into snapshot.{META_SCHEMA}.tables values (?, ?, ?)",
        [[*name.split("."), count] for name, count in row_counts.items()],
    )
    connection.execute("commit")
    return row_counts, rewritten


def _columns(connection: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], list]:
    """(name, type) of each column, in order, by (database, schema, table) of the warehouse's and
    the snapshot's tables and views, as they are now."""
    columns: dict[tuple[str, str, str], list] = {}
    for database, schema, table, name, data_type in connection.execute(
        "select database_name, schema_name, table_name, column_name, data_type "
        "from duckdb_columns() where database_name in ('warehouse', 'snapshot') "
        "order by database_name, schema_name, table_name, column_index"
    ).fetchall():
        columns.setdefault((database, schema, table), []).append((name, data_type))
    return columns


# A set of rows' fingerprint, over `<relation> as source_row`: the same expression for a
# partition and for a whole table, since the two are compared.
FINGERPRINT = "count(*) as row_count, coalesce(sum(hash(source_row)), 0) as fingerprint"


def _fingerprints(source: str, partition_column: str) -> str:
    """Per partition: its value as text, its rows, and the sum of the rows' hashes."""
    return (
        f"select cast({partition_column} as varchar) as partition_value, {FINGERPRINT} "
        f"from {source} as source_row group by all"
    )


def _table_fingerprint(connection: duckdb.DuckDBPyConnection, relation: str) -> tuple:
    return connection.execute(f"select {FINGERPRINT} from {relation} as source_row").fetchone()


def _update_partitions(
    connection: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    partition_column: str,
    built_on: bool,
) -> tuple[int, int]:
    """Rewrite the partitions of snapshot.schema.table whose fingerprint changed, or the whole
    table when it is not `built_on` the copied one; (partitions rewritten, partitions in all).
    Stores the new fingerprints in meta.partitions."""
    source = f"warehouse.{schema}.{table}"
    target = f"snapshot.{schema}.{table}"
    stored = f"snapshot.{META_SCHEMA}.partitions"
    this_table = f"schema_name = {_quote(schema)} and table_name = {_quote(table)}"
    connection.execute(
        f"create or replace temp table current_fingerprints as {_fingerprints(source, partition_column)}"
    )
    [(partitions,)] = connection.execute("select count(*) from current_fingerprints").fetchall()
    changed = partitions
    if built_on:
        connection.execute(
            f"""
            create or replace temp table changed_partitions as
            select partition_value from (
                select partition_value, row_count, fingerprint from current_fingerprints
                except
                select partition_value, row_count, fingerprint from {stored} where {this_table}
            )
            union
            select partition_value from (
                select partition_value, row_count, fingerprint from {stored} where {this_table}
                except
                select partition_value, row_count, fingerprint from current_fingerprints
            )
            """
        )
        [(changed,)] = connection.execute("select count(*) from changed_partitions").fetchall()
        in_changed = (
            f"cast({partition_column} as varchar) is not distinct from changed.partition_value"
        )
        connection.execute(
            f"delete from {target} where exists "
            f"(select 1 from changed_partitions as changed where {in_changed})"
        )
        connection.execute(
            f"insert into {target} select * from {source} where exists "
            f"(select 1 from changed_partitions as changed where {in_changed})"
        )
        # The whole table against the warehouse: the partitions kept must be what was copied.
        built_on = (
            _table_fingerprint(connection, target)
            == connection.execute(
                "select coalesce(sum(row_count), 0), coalesce(sum(fingerprint), 0) "
                "from current_fingerprints"
            ).fetchone()
        )
    if not built_on:
        connection.execute(f"create or replace table {target} as select * from {source}")
        changed = partitions
    connection.execute(f"delete from {stored} where {this_table}")
    connection.execute(
        f"insert into {stored} select {_quote(schema)}, {_quote(table)}, partition_value, "
        "row_count, fingerprint from current_fingerprints"
    )
    return changed, partitions


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
        create or replace table snapshot.{META_SCHEMA}.snapshot as
        select cast(? as bigint) as seq, cast(? as varchar) as run_id,
               cast(? as timestamp) as as_of, cast(? as timestamp) as created_at,
               cast(? as varchar) as duckdb_version
        """,
        [
            seq,
            run_id,
            as_of.replace(tzinfo=None) if as_of else None,
            created_at.replace(tzinfo=None),
            duckdb.__version__,
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
