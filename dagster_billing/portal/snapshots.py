"""The portal's view of the published analytics snapshot: one open read-only connection per
snapshot, and a cache of what pages computed from it, both replaced when a newer snapshot is
published.

Each request reads the symlink (one readlink) to notice a new publish; the first request after
it opens the new file and starts an empty cache. Requests still running on the previous snapshot
keep their handle (and so its connection) until they finish; a pruned file stays readable while
open. DuckDB keeps one database instance per file per process, so the portal opens each snapshot
once and gives every request its own cursor (a connection of its own to that database).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from dagster_billing.analytics import current_snapshot_path, open_snapshot, snapshot_meta

T = TypeVar("T")
CACHE_ENTRIES = 1024  # per snapshot, least recently used out first (pages are up to ~100 KB)


@dataclass
class PortalSnapshot:
    """One published snapshot, open for reading, with the page cache built from it."""

    name: str
    seq: int
    as_of: datetime | None
    created_at: datetime
    connection: duckdb.DuckDBPyConnection
    _cache: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def clock(self) -> datetime:
        """The run's clock (as_of) the snapshot's drafts were computed at, else its publish time."""
        return self.as_of or self.created_at

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self.connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """compute() once per key for this snapshot (two racing requests may both compute)."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return value


class PortalSnapshots:
    """The current snapshot for the portal, reopened when the pipeline publishes a new one."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._current: PortalSnapshot | None = None

    def current(self) -> PortalSnapshot:
        """The current snapshot; NoSnapshotYet before the first publish."""
        name = current_snapshot_path(self.data_dir).name
        with self._lock:
            if self._current is None or self._current.name != name:
                connection = open_snapshot(self.data_dir)
                meta = snapshot_meta(connection)
                self._current = PortalSnapshot(
                    name=meta["path"].name,
                    seq=meta["seq"],
                    as_of=meta["as_of"],
                    created_at=meta["created_at"],
                    connection=connection,
                )
            return self._current


def rows(cursor: duckdb.DuckDBPyConnection, sql: str, params: list | dict) -> list[dict]:
    """The query's rows as dicts keyed by column name."""
    result = cursor.execute(sql, params)
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
