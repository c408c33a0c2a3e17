"""Land files into the warehouse's raw schema, idempotently by file content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from dagster_billing.defs.ingest.files import landing_format, read_landing_file
from dagster_billing.defs.ingest.schemas import FUTURE_TOLERANCE, parse_raw_rows, quarantine_reasons

DDL = """
create schema if not exists raw;
create table if not exists raw.landed_files (
    file_sha256 varchar primary key,
    file_name varchar not null,
    file_format varchar not null,
    file_seq integer not null,
    row_count bigint not null,
    landed_at timestamp not null
);
create table if not exists raw.usage_events (
    raw_event_key varchar primary key,
    unique_id varchar not null,
    account_id varchar not null,
    meter_code varchar not null,
    value decimal(38,10) not null,
    event_ts timestamp not null,
    properties varchar,
    received_at timestamp not null,
    file_seq integer not null,
    source_line bigint not null,
    source_file varchar not null
);
create table if not exists raw.usage_quarantine (
    raw_event_key varchar primary key,
    unique_id varchar,
    account_id varchar,
    meter_code varchar,
    value_text varchar,
    ts_text varchar,
    raw_text varchar,
    reason varchar not null,
    received_at timestamp not null,
    file_seq integer not null,
    source_line bigint not null,
    source_file varchar not null
);
"""


@dataclass(frozen=True)
class LandedFile:
    file_name: str
    rows: int
    accepted: int
    quarantined: int
    skipped: bool


def ensure_raw_tables(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(DDL)


def landing_files(landing_dir: Path) -> list[Path]:
    if not landing_dir.exists():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and landing_format(p))


def land_file(
    connection: duckdb.DuckDBPyConnection, path: Path, *, received_at: datetime | None = None
) -> LandedFile:
    """Land one file in one transaction; a file already landed (same sha256) adds nothing."""
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    already = connection.execute(
        "select row_count from raw.landed_files where file_sha256 = ?", [sha256]
    ).fetchone()
    if already:
        return LandedFile(path.name, already[0], 0, 0, skipped=True)

    received_at = received_at or datetime.now(UTC)
    parsed = parse_raw_rows(read_landing_file(path, data))
    reasons = quarantine_reasons(parsed, latest_allowed_ts=received_at + FUTURE_TOLERANCE)
    file_seq = connection.execute(
        "select coalesce(max(file_seq), 0) + 1 from raw.landed_files"
    ).fetchone()[0]
    rows = parsed.with_columns(
        reason=reasons,
        raw_event_key=pl.format("{}:{}", pl.lit(sha256[:16]), pl.col("source_line")),
        received_at=pl.lit(received_at.replace(tzinfo=None)),
        file_seq=pl.lit(file_seq, dtype=pl.Int32),
        source_file=pl.lit(path.name),
        event_ts=pl.col("event_ts").dt.replace_time_zone(None),
    )
    valid = rows.filter(pl.col("reason").is_null())
    quarantined = rows.filter(pl.col("reason").is_not_null())

    connection.execute("begin transaction")
    try:
        connection.execute(
            """
            insert into raw.usage_events
            select raw_event_key, unique_id, account_id, meter_code, value, event_ts, properties,
                   received_at, file_seq, source_line, source_file
            from valid
            """
        )
        connection.execute(
            """
            insert into raw.usage_quarantine
            select raw_event_key, unique_id, account_id, meter_code, value_text, ts_text, raw_text,
                   reason, received_at, file_seq, source_line, source_file
            from quarantined
            """
        )
        connection.execute(
            "insert into raw.landed_files values (?, ?, ?, ?, ?, ?)",
            [
                sha256,
                path.name,
                landing_format(path),
                file_seq,
                rows.height,
                received_at.replace(tzinfo=None),
            ],
        )
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise
    return LandedFile(path.name, rows.height, valid.height, quarantined.height, skipped=False)
