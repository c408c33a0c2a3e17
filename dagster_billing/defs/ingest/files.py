"""Read landing files (NDJSON and CSV) into one frame of raw text columns, losslessly.

Nothing is dropped here: a line that is not a JSON object, a CSV row with the wrong number of
fields or properties that are not a JSON object becomes a row with `parse_error` set, and is
quarantined by validation. Whitespace-only lines are not rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

import msgspec
import orjson
import polars as pl

EVENT_FIELDS = ("uniqueId", "account", "meter", "value", "ts", "properties")
LANDING_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}

RAW_SCHEMA = {
    "source_line": pl.Int64,
    "unique_id": pl.String,
    "account_id": pl.String,
    "meter_code": pl.String,
    "value_text": pl.String,
    "ts_text": pl.String,
    "properties": pl.String,
    "raw_text": pl.String,
    "parse_error": pl.String,
}

_decoder = msgspec.json.Decoder(float_hook=str)


def landing_format(path: Path) -> str | None:
    return LANDING_SUFFIXES.get(path.suffix.lower())


def _text(value: object) -> str | None:
    if type(value) is str:  # the common case first: this runs for every field of every row
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    return orjson.dumps(value).decode()


def _properties(value: object) -> tuple[str | None, str | None]:
    """(properties as canonical JSON text, parse error)."""
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None, "invalid_properties"
    if not isinstance(value, dict):
        return None, "invalid_properties"
    if not value:
        return None, None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode(), None


def record_row(line_number: int, record: object, raw_text: str) -> tuple:
    """One raw row (RAW_SCHEMA order) from one decoded record; anything but a JSON object is
    malformed_json. The API builds its rows with this too, so both paths parse alike."""
    if not isinstance(record, dict):
        return (line_number, None, None, None, None, None, None, raw_text, "malformed_json")
    properties, error = _properties(record.get("properties"))
    return (
        line_number,
        _text(record.get("uniqueId")),
        _text(record.get("account")),
        _text(record.get("meter")),
        _text(record.get("value")),
        _text(record.get("ts")),
        properties,
        raw_text,
        error,
    )


def decode_json(data: bytes | str) -> object:
    """Decode JSON as landing does: numbers with a fraction stay exact text ("0.1")."""
    return _decoder.decode(data)


def ndjson_line_row(line_number: int, line: bytes) -> tuple | None:
    """The raw row of one NDJSON line (None for a blank line, which is not a row)."""
    if not line.strip():
        return None
    try:
        record = _decoder.decode(line)
    except msgspec.DecodeError:
        record = None
    return record_row(line_number, record, line.decode("utf-8", errors="replace"))


def ndjson_rows(data: bytes) -> list[tuple]:
    rows = (
        ndjson_line_row(line_number, line)
        for line_number, line in enumerate(data.split(b"\n"), start=1)
    )
    return [row for row in rows if row is not None]


def csv_rows(data: bytes) -> list[tuple]:
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""))
    header = next(reader, None)
    if header is None:
        return []
    return csv_records(reader, [name.strip() for name in header], first_line=2)


def csv_records(records: Iterable[list[str]], header: list[str], first_line: int) -> list[tuple]:
    """The raw rows of CSV records (numbered from first_line) under the given header."""
    rows = []
    for line_number, fields in enumerate(records, start=first_line):
        if not any(field.strip() for field in fields):
            continue
        raw_text = ",".join(fields)
        if len(fields) != len(header):
            rows.append(
                (line_number, None, None, None, None, None, None, raw_text, "malformed_csv_row")
            )
            continue
        record = {
            name: (value if value != "" else None)
            for name, value in zip(header, fields, strict=True)
        }
        rows.append(record_row(line_number, record, raw_text))
    return rows


def raw_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RAW_SCHEMA, orient="row")


def checked_landing_format(path: Path) -> str:
    file_format = landing_format(path)
    if file_format is None:
        raise ValueError(
            f"{path.name}: unsupported landing file type (use .ndjson, .jsonl or .csv)"
        )
    return file_format


def read_landing_file(path: Path, data: bytes | None = None) -> pl.DataFrame:
    """All rows of one landing file as raw text columns (RAW_SCHEMA), one row at a time: the
    reference for columnar.py, which landing uses."""
    data = path.read_bytes() if data is None else data
    if checked_landing_format(path) == "ndjson":
        return raw_frame(ndjson_rows(data))
    return raw_frame(csv_rows(data))
