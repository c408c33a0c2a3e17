"""Land files into the raw layer (Parquet under $BILLING_DATA_DIR/raw, raw_store.py),
idempotently by file content.

A file is known by its sha256: landing the same content twice (under any name) adds nothing.
That is also what keeps raw_event_key (sha256 prefix + line) unique: a file already in the
ledger (raw.landed_files) is skipped, and landings are serialized by the raw store's lock. The
event files have no index; every build tests the key unique in int_usage_events_classified,
which holds every landed row (docs/decisions.md, 42 and 99). Files are landed in chunks, one
batch of Parquet files and one validation pass per chunk, so a backlog of many small files (one
per API request) costs about what one big file of the same rows costs.

Only complete lines are landed: a file's bytes after its last newline are a line still being
written, left for when the file has changed (the whole new content is then landed again; lines
landed before are duplicates of themselves). No file can stop the others: reading and validating
a chunk is pure, and a file that fails there on its own is landed as one quarantine row (line 0)
with the reason and the error, so it is recorded, counted in raw = accepted + duplicates +
quarantined, and not retried for ever. Only writing the batch can fail the run (disk): then its
ledger file, the commit, is not written, the batch's data files are removed by the next landing,
and its files are landed by the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dagster_billing.defs.ingest.columnar import FRAME_SCHEMA, csv_frame, ndjson_frame
from dagster_billing.defs.ingest.files import (
    WHOLE_FILE_LINE,
    FileProblem,
    check_not_foreign_text,
    checked_landing_format,
    error_row,
    landing_format,
    raw_frame,
)
from dagster_billing.defs.ingest.ledger import (
    LANDED,
    NO_COMPLETE_LINE,
    SAME_CONTENT,
    UNREADABLE,
    LedgerEntry,
    Stamp,
)
from dagster_billing.defs.ingest.raw_store import RawStore, batch_id
from dagster_billing.defs.ingest.schemas import FUTURE_TOLERANCE, validated_rows

log = logging.getLogger(__name__)


# Files are read and validated together until their bytes add up to this much.
CHUNK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LandedFile:
    """What landing did with one file. `skipped`: nothing written (content landed before, no
    complete line yet, or unreadable: see `outcome`). `problem`: why the file as a whole was
    quarantined or could not be read, naming it."""

    file_name: str
    rows: int
    accepted: int
    quarantined: int
    skipped: bool
    outcome: str = LANDED
    problem: str | None = None
    entry: LedgerEntry | None = None


class LandingError(Exception):
    """Writing a chunk of files to the raw layer failed; nothing of it was committed."""


def landing_files(landing_dir: Path) -> list[Path]:
    """Every landing file under landing_dir, subdirectories included (the API writes into
    api/received_date=YYYY-MM-DD/), in a stable order: by path relative to landing_dir.
    Hidden files and directories (temporary files of writers in progress) are not landing files."""
    if not landing_dir.exists():
        return []
    found = []
    for path in landing_dir.rglob("*"):
        relative = path.relative_to(landing_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and landing_format(path):
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(landing_dir).as_posix())


def landing_name(path: Path, landing_dir: Path | None) -> str:
    """The name a file is recorded under: its path relative to the landing directory."""
    if landing_dir is not None and path.is_relative_to(landing_dir):
        return path.relative_to(landing_dir).as_posix()
    return path.name


@dataclass(frozen=True)
class _FileData:
    path: Path
    name: str
    data: bytes  # the complete lines: up to and including the last newline
    sha256: str
    stamp: Stamp


def _read_complete_lines(path: Path, name: str) -> _FileData | LandedFile:
    try:
        stamp = Stamp.of(path)
        data = path.read_bytes()
    except OSError as error:
        problem = f"{name}: cannot be read: {error.strerror or error}"
        entry = None
        with contextlib.suppress(OSError):  # a file that is gone leaves nothing to remember
            entry = LedgerEntry(name, Stamp.of(path), 0, UNREADABLE, detail=problem)
        return LandedFile(name, 0, 0, 0, True, UNREADABLE, problem, entry)
    end = data.rfind(b"\n") + 1
    if end == 0:
        entry = LedgerEntry(name, stamp, 0, NO_COMPLETE_LINE)
        return LandedFile(name, 0, 0, 0, True, NO_COMPLETE_LINE, None, entry)
    complete = data if end == len(data) else data[:end]
    return _FileData(path, name, complete, hashlib.sha256(complete).hexdigest(), stamp)


def _chunks(
    paths: Iterable[Path], landing_dir: Path | None
) -> Iterator[list[_FileData | LandedFile]]:
    chunk: list[_FileData | LandedFile] = []
    size = 0
    for path in paths:
        item = _read_complete_lines(path, landing_name(path, landing_dir))
        chunk.append(item)
        if isinstance(item, _FileData):
            size += len(item.data)
        if size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _read_ahead(chunks: Iterator[list[_FileData | LandedFile]]) -> Iterator[list]:
    """The chunks, each next one read (its files read and hashed; hashlib lets go of the GIL)
    in a background thread while the caller lands the one before: one chunk ahead at most."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = reader.submit(next, chunks, None)
            yield chunk


def land_files(
    store: RawStore,
    paths: Iterable[Path],
    *,
    landing_dir: Path | None = None,
    received_at: datetime | None = None,
) -> list[LandedFile]:
    """Land files in the given order (which is arrival order: file_seq follows it). A file whose
    content was landed before, or appears twice in `paths`, is skipped."""
    results = []
    with store.landing_lock():
        store.remove_uncommitted()
        for chunk in _read_ahead(_chunks(paths, landing_dir)):
            results.extend(_land_chunk(store, chunk, received_at or datetime.now(UTC)))
    return results


def land_file(
    store: RawStore,
    path: Path,
    *,
    landing_dir: Path | None = None,
    received_at: datetime | None = None,
) -> LandedFile:
    """Land one file in one batch; a file already landed (same sha256) adds nothing."""
    [result] = land_files(store, [path], landing_dir=landing_dir, received_at=received_at)
    return result


def _file_row(problem: FileProblem | Exception, name: str) -> tuple:
    """The one raw row that stands for a file that cannot be read line by line."""
    if isinstance(problem, FileProblem):
        return error_row(WHOLE_FILE_LINE, f"{name}: {problem}", problem.reason)
    message = f"{name}: cannot be read: {type(problem).__name__}: {problem}"
    return error_row(WHOLE_FILE_LINE, message[:2000], "unreadable_file")


def _read_files(files: list[_FileData]) -> pl.DataFrame:
    """Raw rows of the files (RAW_SCHEMA plus file_index, the position in `files`), read
    column-at-a-time (columnar.py) as the per-row reader of files.py reads them."""
    for item in files:
        check_not_foreign_text(item.data)
    formats = [checked_landing_format(item.path) for item in files]
    ndjson = [index for index, file_format in enumerate(formats) if file_format == "ndjson"]
    frames = [pl.DataFrame(schema=FRAME_SCHEMA)]
    frames += [
        csv_frame(index, files[index].data)
        for index, file_format in enumerate(formats)
        if file_format == "csv"
    ]
    if ndjson:
        frames.append(
            ndjson_frame([files[index].data for index in ndjson]).with_columns(
                pl.col("file_index").replace_strict(dict(enumerate(ndjson)), return_dtype=pl.Int32)
            )
        )
    return pl.concat(frames)


def _validated(raw: pl.DataFrame, received_at: datetime) -> pl.DataFrame:
    return validated_rows(raw, latest_allowed_ts=received_at + FUTURE_TOLERANCE)


def _rows_of(files: list[_FileData], received_at: datetime) -> pl.DataFrame:
    """Every row of the files, validated (a `reason` column: null = valid). Read and validated
    together; if that fails, file by file, and a file that fails alone becomes one quarantine
    row naming it and the error, so one file never keeps the others out. Running out of memory
    is not the file's fault: it fails the run."""
    try:
        return _validated(_read_files(files), received_at)
    except MemoryError:
        raise
    except Exception as error:
        if len(files) == 1:
            log.warning("%s: quarantined as a whole: %s", files[0].name, error)
            row = raw_frame([_file_row(error, files[0].name)])
            return _validated(
                row.select(pl.lit(0, dtype=pl.Int32).alias("file_index"), pl.all()), received_at
            )
    return pl.concat(
        _rows_of([item], received_at).with_columns(file_index=pl.lit(index, dtype=pl.Int32))
        for index, item in enumerate(files)
    )


def _land_chunk(
    store: RawStore, chunk: list[_FileData | LandedFile], received_at: datetime
) -> list[LandedFile]:
    readable = [item for item in chunk if isinstance(item, _FileData)]
    landed_before = store.landed_before([item.sha256 for item in readable])
    results: dict[int, LandedFile] = {}
    new: list[tuple[int, _FileData]] = []
    seen: set[str] = set()
    for position, item in enumerate(chunk):
        if isinstance(item, LandedFile):
            results[position] = item
            continue
        if item.sha256 in landed_before or item.sha256 in seen:
            rows = landed_before.get(item.sha256, 0)
            entry = LedgerEntry(
                item.name, item.stamp, len(item.data), SAME_CONTENT, file_sha256=item.sha256
            )
            results[position] = LandedFile(item.name, rows, 0, 0, True, SAME_CONTENT, None, entry)
            continue
        seen.add(item.sha256)
        new.append((position, item))
    if not new:
        return [results[position] for position in range(len(chunk))]

    first_seq = store.next_file_seq()
    rows = (
        _rows_of([item for _, item in new], received_at)
        .lazy()
        .with_columns(
            key_prefix=pl.col("file_index").replace_strict(
                {offset: item.sha256[:16] for offset, (_, item) in enumerate(new)},
                return_dtype=pl.String,
            ),
            source_file=pl.col("file_index").replace_strict(
                {offset: item.name for offset, (_, item) in enumerate(new)},
                return_dtype=pl.String,
            ),
            file_seq=pl.col("file_index") + first_seq,
            received_at=pl.lit(received_at.replace(tzinfo=None)),
            event_ts=pl.col("event_ts").dt.replace_time_zone(None),
        )
        .with_columns(raw_event_key=pl.format("{}:{}", pl.col("key_prefix"), pl.col("source_line")))
    )
    # One query (on every core): the valid rows, the quarantined ones, and (rows, accepted) per
    # file (a file of blank lines only has no rows).
    valid, quarantined, per_file = pl.collect_all(
        [
            rows.filter(pl.col("reason").is_null()),
            rows.filter(pl.col("reason").is_not_null()),
            rows.group_by("file_index").agg(
                total=pl.len(), accepted=pl.col("reason").is_null().sum()
            ),
        ]
    )
    counts = per_file.rows_by_key("file_index", unique=True)
    # A file quarantined as a whole: its one row says why.
    problems = dict(
        quarantined.filter(pl.col("source_line") == WHOLE_FILE_LINE)
        .select("file_index", "raw_text")
        .iter_rows()
    )
    ledger = [
        (
            item.sha256,
            item.name,
            landing_format(item.path),
            first_seq + offset,
            counts.get(offset, (0, 0))[0],
            received_at.replace(tzinfo=None),
        )
        for offset, (_, item) in enumerate(new)
    ]
    _write_chunk(
        store,
        batch_id(first_seq, [item.sha256 for _, item in new]),
        received_at,
        valid,
        quarantined,
        ledger,
        [item.name for _, item in new],
    )

    for offset, (position, item) in enumerate(new):
        total, accepted = counts.get(offset, (0, 0))
        entry = LedgerEntry(
            item.name,
            item.stamp,
            len(item.data),
            LANDED,
            file_sha256=item.sha256,
            file_seq=first_seq + offset,
            detail=problems.get(offset),
        )
        results[position] = LandedFile(
            item.name, total, accepted, total - accepted, False, LANDED, problems.get(offset), entry
        )
    return [results[position] for position in range(len(chunk))]


def _write_chunk(
    store: RawStore,
    batch: str,
    received_at: datetime,
    valid: pl.DataFrame,
    quarantined: pl.DataFrame,
    ledger: list[tuple],
    names: list[str],
) -> None:
    """One batch: the chunk's rows and its files' ledger rows (written last: the commit)."""
    ledger_frame = pl.DataFrame(
        ledger,
        schema={
            "file_sha256": pl.String,
            "file_name": pl.String,
            "file_format": pl.String,
            "file_seq": pl.Int32,
            "row_count": pl.Int64,
            "landed_at": pl.Datetime("us"),
        },
        orient="row",
    )
    try:
        store.write_batch(
            batch, received_at.date(), events=valid, quarantine=quarantined, ledger=ledger_frame
        )
    except Exception as error:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise LandingError(f"writing {shown} to the raw layer failed: {error}") from error
