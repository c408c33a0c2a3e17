"""Which landing files are landed: one answer (`landing_status`) for the landing sensor,
`billing watch`, the landing step itself and `billing doctor`.

The truth is the raw layer's ledger (`raw.landed_files`, Parquet files under
$BILLING_DATA_DIR/raw, each written last as the commit of its batch: raw_store.py). The sensor,
in the Dagster daemon, must answer cheaply and never wait on a landing in progress, and it needs
more than the ledger holds (what a file looked like when it was read, files with no complete line
yet, unreadable files, the API's watermark). So landing keeps a mirror,
`landing_ledger.sqlite3` in the data directory (SQLite in WAL mode: readers never wait for the
writer, nor it for them), written right after each commit: one row per file name with the size and modification time the file had when
it was read, how many bytes of it were landed and what became of it. A file is done when its
current size and modification time are in the mirror; anything else under the landing
directory is still to land, so a failed run leaves its files to the next one.

The mirror may lag the raw layer (a crash between a batch's commit and the mirror write): then
the next landing reads those files again, finds their content in raw.landed_files, adds nothing
and records them. It may not run ahead of it: landing checks that the raw layer holds what the
mirror says before trusting it (a new or restored data directory resets the mirror).

Files the ingestion API writes (landing/api/) are found through the API's own ledger, by sequence
number, so a day of API files is never listed from disk; they are complete when they appear (the
API writes a hidden temporary file and renames it). Files dropped anywhere else are read once
unchanged for BILLING_LANDING_QUIET_SECONDS (default 1): a writer still appending is left alone.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dagster_billing.api.settings import API_LANDING_SUBDIR, api_state_path
from dagster_billing.api.state import read_acknowledged_files
from dagster_billing.defs.ingest.files import landing_format
from dagster_billing.defs.ingest.raw_store import RawStore

LEDGER_NAME = "landing_ledger.sqlite3"
DEFAULT_QUIET_SECONDS = 1.0
# Files named in one run at most (the rest go to the next).
MAX_FILES_PER_RUN = 2000

# What became of a file in the state the mirror records.
LANDED = "landed"  # its rows are in raw.* (perhaps but for an unterminated last line)
SAME_CONTENT = "same_content"  # the same bytes were landed before under this or another name
NO_COMPLETE_LINE = "no_complete_line"  # nothing ends in a newline yet: nothing to land
UNREADABLE = "unreadable"  # the file could not be read (permissions, I/O): touch it to retry
DONE = (LANDED, SAME_CONTENT)

SCHEMA = """
create table if not exists files (
    file_name text primary key,
    size integer not null,
    mtime_ns integer not null,
    landed_bytes integer not null,
    file_sha256 text,
    file_seq integer,
    outcome text not null,
    detail text,
    recorded_at text not null
);
create table if not exists meta (key text primary key, value integer not null);
"""


def quiet_seconds() -> float:
    """How long a dropped file must be unchanged before it is read."""
    value = os.environ.get("BILLING_LANDING_QUIET_SECONDS")
    return float(value) if value else DEFAULT_QUIET_SECONDS


def ledger_path(root: Path) -> Path:
    return Path(root) / LEDGER_NAME


@dataclass(frozen=True)
class Stamp:
    """What a file looked like when it was read."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class LedgerEntry:
    file_name: str
    stamp: Stamp
    landed_bytes: int
    outcome: str
    file_sha256: str | None = None
    file_seq: int | None = None
    detail: str | None = None


@dataclass
class LandingStatus:
    """Where every landing file stands (relative names)."""

    ready: list[str] = field(default_factory=list)  # to land now
    settling: list[str] = field(default_factory=list)  # changed less than the quiet time ago
    missing: list[str] = field(default_factory=list)  # acknowledged by the API, not on disk
    unreadable: dict[str, str] = field(default_factory=dict)  # name -> error, until touched
    unterminated: dict[str, int] = field(default_factory=dict)  # name -> bytes not landed yet
    api_events: dict[str, int] = field(default_factory=dict)  # events of the ready API files
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of each ready file
    api_seq: int = 0  # the API's highest confirmed file seen

    @property
    def waiting(self) -> list[str]:
        """Every file not landed in its current state, whether it can be read yet or not."""
        return self.ready + self.settling


@contextmanager
def _connect(root: Path, *, read_only: bool) -> Iterator[sqlite3.Connection | None]:
    path = ledger_path(root)
    if read_only and not path.exists():
        yield None
        return
    if read_only:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        db.execute("pragma journal_mode = wal")
        db.executescript(SCHEMA)
    try:
        yield db
    finally:
        db.close()


def _meta(db: sqlite3.Connection | None, key: str) -> int:
    if db is None:
        return 0
    try:
        row = db.execute("select value from meta where key = ?", [key]).fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] if row else 0


def _recorded(
    db: sqlite3.Connection | None, names: Iterable[str] | None, *, with_api: bool = False
) -> dict[str, tuple]:
    """name -> (size, mtime_ns, landed_bytes, outcome, detail); names=None: every file outside
    api/ (hand-dropped files are few; API files are looked up by name), with_api: every file."""
    if db is None:
        return {}
    columns = "file_name, size, mtime_ns, landed_bytes, outcome, detail"
    try:
        if names is None:
            rows = db.execute(
                f"select {columns} from files where file_name not like ?",
                ["" if with_api else f"{API_LANDING_SUBDIR}/%"],
            ).fetchall()
        else:
            rows = db.execute(
                f"select {columns} from files where file_name in (select value from json_each(?))",
                [_json_list(names)],
            ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: rest for name, *rest in rows}


def _json_list(values: Iterable[str]) -> str:
    import orjson

    return orjson.dumps(list(values)).decode()


def _dropped_files(landing_dir: Path, *, with_api: bool = False) -> Iterator[Path]:
    """Landing files outside api/ (with_api: all of them), hidden files and directories skipped
    (writers' temporary files)."""
    if not landing_dir.exists():
        return
    for root, dirs, files in os.walk(landing_dir):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and (with_api or not (here == landing_dir and d == API_LANDING_SUBDIR))
        )
        for name in sorted(files):
            path = here / name
            if not name.startswith(".") and landing_format(path):
                yield path


def _classify(
    status: LandingStatus, name: str, stamp: Stamp, recorded: tuple | None, settled: bool
) -> bool:
    """Put the file where it stands; True if it is to land now."""
    if recorded is not None and Stamp(recorded[0], recorded[1]) == stamp:
        landed_bytes, outcome, detail = recorded[2:]
        if outcome == UNREADABLE:
            status.unreadable[name] = detail or "unreadable"
        elif landed_bytes < stamp.size:
            status.unterminated[name] = stamp.size - landed_bytes
        return False
    (status.ready if settled else status.settling).append(name)
    if settled:
        status.sizes[name] = stamp.size
    return settled


def landing_status(
    root: Path,
    *,
    now: float | None = None,
    quiet: float | None = None,
    limit: int = MAX_FILES_PER_RUN,
    everything: bool = False,
) -> LandingStatus:
    """Every landing file under `root`/landing that is not landed in its current state.

    Reads only the mirror and the API's ledger (SQLite, read-only) and the directory: it never
    touches the warehouse or the raw layer, so it answers while a run writes. `everything`: also list api/ from
    disk (files there that the API's ledger does not know, e.g. restored from a backup); what a
    run without named files does."""
    root = Path(root)
    landing_dir = root / "landing"
    now = time.time() if now is None else now
    quiet = quiet_seconds() if quiet is None else quiet
    status = LandingStatus()
    with _connect(root, read_only=True) as db:
        api_done = _meta(db, "api_seq_done")
        acknowledged = read_acknowledged_files(api_state_path(root), api_done, limit)
        recorded = _recorded(db, [item.path for item in acknowledged])
        dropped = _recorded(db, None, with_api=everything)
    status.api_seq = max([api_done] + [item.seq or 0 for item in acknowledged])
    # Hand-dropped files first, then the API's in commit order: the order they land in is
    # their arrival order (the first arrival of an id wins).
    seen: set[str] = set()
    api_names = {item.path for item in acknowledged}
    for path in _dropped_files(landing_dir, with_api=everything):
        name = path.relative_to(landing_dir).as_posix()
        if name in api_names:
            continue  # below, in the API's order
        try:
            stamp = Stamp.of(path)
        except FileNotFoundError:
            continue
        # API files are complete when they appear (renamed into place).
        settled = name.startswith(f"{API_LANDING_SUBDIR}/") or now - stamp.mtime_ns / 1e9 >= quiet
        _classify(status, name, stamp, dropped.get(name), settled)
    for item in acknowledged:
        if item.path in seen:  # confirmed while we read the pending ones
            continue
        seen.add(item.path)
        try:
            stamp = Stamp.of(landing_dir / item.path)
        except FileNotFoundError:
            if item.seq is not None:  # confirmed: the API answered 202 for its events
                status.missing.append(item.path)
            continue
        if _classify(status, item.path, stamp, recorded.get(item.path), settled=True):
            status.api_events[item.path] = item.events
    status.ready = status.ready[:limit]
    status.sizes = {name: status.sizes[name] for name in status.ready}
    return status


class LandingLedger:
    """The mirror, as the landing step writes it (one writer: the `duckdb` pool)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def align_with(self, store: RawStore) -> bool:
        """Forget the mirror if the raw layer does not hold what it says was landed (a new or
        restored data directory). True if it was reset."""
        with _connect(self.root, read_only=False) as db:
            mirrored, newest = db.execute(
                "select count(distinct file_sha256), max(file_seq) from files "
                "where file_sha256 is not null"
            ).fetchone()
            if not mirrored:
                return False
            landed = store.ledger().select("file_sha256", "file_seq")
            held = True
            if newest is not None:
                [sha] = db.execute(
                    "select file_sha256 from files where file_seq = ? limit 1", [newest]
                ).fetchone()
                held = (sha, newest) in set(landed.iter_rows())
            if mirrored <= landed.height and held:
                return False
            db.execute("begin immediate")
            db.execute("delete from files")
            db.execute("delete from meta")
            db.execute("commit")
            return True

    def record(self, entries: Iterable[LedgerEntry], *, api_seq_scanned: int) -> None:
        """Record what landing did (after its DuckDB commit), then move the API watermark over
        every confirmed API file now landed."""
        recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
        with _connect(self.root, read_only=False) as db:
            db.execute("begin immediate")
            db.executemany(
                """
                insert into files values (?, ?, ?, ?, ?, ?, ?, ?, ?)
                on conflict (file_name) do update set
                    size = excluded.size, mtime_ns = excluded.mtime_ns,
                    landed_bytes = excluded.landed_bytes, file_sha256 = excluded.file_sha256,
                    file_seq = excluded.file_seq, outcome = excluded.outcome,
                    detail = excluded.detail, recorded_at = excluded.recorded_at
                """,
                [
                    (
                        entry.file_name,
                        entry.stamp.size,
                        entry.stamp.mtime_ns,
                        entry.landed_bytes,
                        entry.file_sha256,
                        entry.file_seq,
                        entry.outcome,
                        entry.detail,
                        recorded_at,
                    )
                    for entry in entries
                ],
            )
            db.execute(
                "insert into meta values ('api_seq_scanned', ?) "
                "on conflict (key) do update set value = max(value, excluded.value)",
                [api_seq_scanned],
            )
            db.execute("commit")
            self._advance_api_watermark(db)

    def _advance_api_watermark(self, db: sqlite3.Connection) -> None:
        done = _meta(db, "api_seq_done")
        while True:
            confirmed = [
                item
                for item in read_acknowledged_files(api_state_path(self.root), done, 1000)
                if item.seq is not None
            ]
            if not confirmed:
                break
            outcomes = {
                name: row[3] for name, row in _recorded(db, [i.path for i in confirmed]).items()
            }
            advanced = done
            for item in confirmed:
                # A confirmed file gone from disk cannot land: the acknowledgement check and
                # `billing doctor` report it; landing looks past it.
                gone = not (self.root / "landing" / item.path).exists()
                if outcomes.get(item.path) not in DONE and not gone:
                    break
                advanced = item.seq
            if advanced == done:
                break
            done = advanced
            db.execute(
                "insert into meta values ('api_seq_done', ?) "
                "on conflict (key) do update set value = excluded.value",
                [done],
            )


def api_seq_scanned(root: Path) -> int:
    """The API's highest confirmed file seq when landing last looked: every file up to it was
    landed by then, unless it is reported missing."""
    with _connect(Path(root), read_only=True) as db:
        return _meta(db, "api_seq_scanned")


def recorded_files(root: Path, names: Iterable[str]) -> dict[str, tuple]:
    """The mirror's rows for these names: name -> (size, mtime_ns, landed_bytes, outcome,
    detail)."""
    with _connect(Path(root), read_only=True) as db:
        return _recorded(db, list(names))
