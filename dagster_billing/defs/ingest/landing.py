"""Land files into the raw layer (Parquet under $BILLING_DATA_DIR/raw, raw_store.py),
idempotently by file content.

A file is known by its sha256: landing the same content twice (under any name) adds nothing.
That is also what keeps raw_event_key (sha256 prefix + line) unique: a file already in the
ledger (raw.landed_files) is skipped, and landings are serialized by the raw store's lock. The
event files have no index; every build tests the key unique in fct_usage_event_outcomes, which
holds every landed row (docs/decisions.md, 42). Files are landed in chunks, one batch of Parquet
files and one validation pass per chunk, so a backlog of many small files (one per API request)
costs about what one big file of the same rows costs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dagster_billing.defs.ingest.columnar import csv_frame, ndjson_frame
from dagster_billing.defs.ingest.files import checked_landing_format, landing_format
from dagster_billing.defs.ingest.raw_store import RawStore, batch_id
from dagster_billing.defs.ingest.schemas import FUTURE_TOLERANCE, parse_raw_rows, quarantine_reasons

# Files are read and validated together until their bytes add up to this much.
CHUNK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LandedFile:
    file_name: str
    rows: int
    accepted: int
    quarantined: int
    skipped: bool


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
    data: bytes
    sha256: str


def _chunks(paths: Iterable[Path], landing_dir: Path | None) -> Iterator[list[_FileData]]:
    chunk: list[_FileData] = []
    size = 0
    for path in paths:
        data = path.read_bytes()
        chunk.append(
            _FileData(path, landing_name(path, landing_dir), data, hashlib.sha256(data).hexdigest())
        )
        size += len(data)
        if size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
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
        for chunk in _chunks(paths, landing_dir):
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


def _read_files(files: list[_FileData]) -> pl.DataFrame:
    """Raw rows of the files (RAW_SCHEMA plus file_index, the position in `files`), read
    column-at-a-time (columnar.py) as the per-row reader of files.py reads them."""
    formats = [checked_landing_format(item.path) for item in files]
    ndjson = [index for index, file_format in enumerate(formats) if file_format == "ndjson"]
    frames = [
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


def _land_chunk(store: RawStore, chunk: list[_FileData], received_at: datetime) -> list[LandedFile]:
    landed_before = store.landed_before([item.sha256 for item in chunk])
    results: dict[int, LandedFile] = {}
    new: list[tuple[int, _FileData]] = []
    seen: set[str] = set()
    for position, item in enumerate(chunk):
        if item.sha256 in landed_before or item.sha256 in seen:
            rows = landed_before.get(item.sha256, 0)
            results[position] = LandedFile(item.name, rows, 0, 0, skipped=True)
            continue
        seen.add(item.sha256)
        new.append((position, item))
    if not new:
        return [results[position] for position in range(len(chunk))]

    first_seq = store.next_file_seq()
    raw = _read_files([item for _, item in new]).with_columns(
        key_prefix=pl.col("file_index").replace_strict(
            {offset: item.sha256[:16] for offset, (_, item) in enumerate(new)},
            return_dtype=pl.String,
        ),
        source_file=pl.col("file_index").replace_strict(
            {offset: item.name for offset, (_, item) in enumerate(new)}, return_dtype=pl.String
        ),
        file_seq=pl.col("file_index") + first_seq,
    )

    parsed = parse_raw_rows(raw)
    reasons = quarantine_reasons(parsed, latest_allowed_ts=received_at + FUTURE_TOLERANCE)
    rows = parsed.with_columns(
        reason=reasons,
        raw_event_key=pl.format("{}:{}", pl.col("key_prefix"), pl.col("source_line")),
        received_at=pl.lit(received_at.replace(tzinfo=None)),
        event_ts=pl.col("event_ts").dt.replace_time_zone(None),
    )
    valid = rows.filter(pl.col("reason").is_null())
    quarantined = rows.filter(pl.col("reason").is_not_null())
    # (rows, accepted) per file; a file of blank lines only has no rows.
    counts = (
        rows.group_by("file_index")
        .agg(
            total=pl.len(),
            accepted=pl.col("reason").is_null().sum(),
        )
        .rows_by_key("file_index", unique=True)
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

    store.write_batch(
        batch_id(first_seq, [item.sha256 for _, item in new]),
        received_at.date(),
        events=valid,
        quarantine=quarantined,
        ledger=ledger_frame,
    )

    for offset, (position, item) in enumerate(new):
        total, accepted = counts.get(offset, (0, 0))
        results[position] = LandedFile(item.name, total, accepted, total - accepted, skipped=False)
    return [results[position] for position in range(len(chunk))]
