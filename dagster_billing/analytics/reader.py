"""Finding and opening the published snapshots (no Dagster import: the API and the portal use it).

Layout under $BILLING_DATA_DIR/analytics/:
    000012-20261204T124035Z-7769c7ba.duckdb   one immutable DuckDB file per publish
                                             (sequence, UTC time, first 8 characters of the run id)
    current.duckdb -> 000012-...duckdb        symlink to the newest, replaced atomically
A reader opens the file the symlink names, read-only. The publisher never writes to a published
file: it writes a new one under a temporary name, renames it into place, repoints the symlink
and deletes the oldest beyond the last N. A reader that holds a file keeps reading it (a deleted
file stays readable while open), and its next open finds the new one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ANALYTICS_SUBDIR = "analytics"
CURRENT_LINK = "current.duckdb"
SNAPSHOT_NAME = re.compile(r"^(?P<seq>\d{6,})-(?P<created>\d{8}T\d{6}Z)-(?P<run>[^.]+)\.duckdb$")


class NoSnapshotYet(LookupError):
    """No snapshot has been published (the pipeline has not completed a run yet)."""


@dataclass(frozen=True)
class SnapshotFile:
    path: Path
    seq: int
    created_at: datetime
    run_id_prefix: str

    @classmethod
    def parse(cls, path: Path) -> SnapshotFile | None:
        match = SNAPSHOT_NAME.match(path.name)
        if match is None:
            return None
        created = datetime.strptime(match["created"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return cls(path, int(match["seq"]), created, match["run"])


def analytics_dir(data_dir: str | Path) -> Path:
    return Path(data_dir).resolve() / ANALYTICS_SUBDIR


def list_snapshots(data_dir: str | Path) -> list[SnapshotFile]:
    """The published snapshots still kept, oldest first."""
    folder = analytics_dir(data_dir)
    if not folder.is_dir():
        return []
    found = (SnapshotFile.parse(path) for path in folder.iterdir())
    return sorted((snapshot for snapshot in found if snapshot), key=lambda s: s.seq)


def current_snapshot_path(data_dir: str | Path) -> Path:
    """The newest snapshot's file (the target of analytics/current.duckdb)."""
    link = analytics_dir(data_dir) / CURRENT_LINK
    if link.is_symlink():
        return link.parent / os.readlink(link)
    if link.is_file():
        # A data directory copied without its symlinks (`cp -r`, a backup): current.duckdb is a
        # copy of the snapshot it named, whole. The next publish makes it a link again.
        return link
    raise NoSnapshotYet(
        f"no analytics snapshot in {link.parent} yet: one is published at the end of every "
        "pipeline run (run `make demo` or billing_pipeline once)"
    )


def snapshot_path(data_dir: str | Path, seq: int | None = None) -> Path:
    """The snapshot with sequence number `seq`, or the current one."""
    if seq is None:
        return current_snapshot_path(data_dir)
    for snapshot in list_snapshots(data_dir):
        if snapshot.seq == seq:
            return snapshot.path
    kept = ", ".join(str(s.seq) for s in list_snapshots(data_dir)) or "none"
    raise NoSnapshotYet(f"no snapshot {seq} in {analytics_dir(data_dir)} (kept: {kept})")


def open_snapshot(data_dir: str | Path, seq: int | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the current snapshot (or snapshot `seq`).

    Queries name tables as in the warehouse (billing.fct_invoices, revenue.fct_mrr, ...), plus
    meta.snapshot and meta.tables. The connection sees one snapshot for as long as it is open;
    open a new one to see a newer publish. Close it when done (`with open_snapshot(d) as c:`)."""
    for attempt in range(3):
        path = snapshot_path(data_dir, seq)
        try:
            # Each snapshot path is opened once: DuckDB caches database instances by path.
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            # Pruned between reading the symlink and opening it (N publishes in between): the
            # symlink names a newer file by now.
            if seq is not None or path.exists() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def published_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables an open snapshot holds ('billing.fct_invoices', ...), from its meta.tables. A
    snapshot published by an earlier version may lack a table added since."""
    rows = connection.execute("select schema_name, table_name from meta.tables").fetchall()
    return {f"{schema}.{table}" for schema, table in rows}


def snapshot_meta(connection: duckdb.DuckDBPyConnection) -> dict:
    """meta.snapshot of an open snapshot (seq, run_id, as_of, created_at; UTC) and its `path`."""
    cursor = connection.execute("select * from meta.snapshot")
    names = [column[0] for column in cursor.description]
    meta = dict(zip(names, cursor.fetchone(), strict=True))
    [(path,)] = connection.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()
    return meta | {"path": Path(path)}
