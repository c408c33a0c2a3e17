"""Read landing files (NDJSON and CSV) into one frame of raw text columns, losslessly.

Nothing is dropped here: a line that is not a JSON object, a CSV row with the wrong number of
fields or properties that are not a JSON object becomes a row with `parse_error` set, and is
quarantined by validation. Whitespace-only lines are not rows. No line can stop the others from
being read: bytes that are not UTF-8 (`invalid_encoding`), nesting too deep for the JSON
libraries (`malformed_json`, or `invalid_properties` when it is the properties), a CSV field over
the csv module's limit (`field_too_large`) and a header row repeated inside the data
(`repeated_header`) are each a reason on that one row. A UTF-8 byte order mark at the start of a
file (Excel's "CSV UTF-8") is not part of the first line.

What cannot be read line by line is a `FileProblem`: the whole file is quarantined as one row
(landing.py) or the whole request refused (the API).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import orjson
import polars as pl

EVENT_FIELDS = ("uniqueId", "account", "meter", "value", "ts", "properties")
LANDING_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
UTF8_BOM = b"\xef\xbb\xbf"
# Byte order marks of encodings whose text is not ASCII-compatible: nothing in such a file can be
# read as UTF-8, not even where its lines end.
FOREIGN_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}

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
# The line number of a row that stands for a whole file (FileProblem).
WHOLE_FILE_LINE = 0

_decoder = msgspec.json.Decoder(float_hook=str)
# Characters that Python's "surrogateescape" decoding puts where bytes were not UTF-8.
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")


class FileProblem(Exception):
    """A file (or request body) that cannot be read line by line: `reason` is its quarantine
    reason, the message says what is wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def landing_format(path: Path) -> str | None:
    return LANDING_SUFFIXES.get(path.suffix.lower())


def strip_bom(data: bytes) -> bytes:
    """The data without a leading UTF-8 byte order mark."""
    return data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data


def check_not_foreign_text(data: bytes) -> None:
    """FileProblem for UTF-16/32 text (by its byte order mark): none of its lines is UTF-8."""
    for bom, encoding in FOREIGN_BOMS.items():
        if data.startswith(bom):
            raise FileProblem(
                "invalid_encoding", f"the text is {encoding} (byte order mark): save it as UTF-8"
            )


def visible_text(data: bytes) -> str:
    """Bytes as text for a quarantine row: invalid UTF-8 bytes shown as \\xNN, never merged."""
    return data.decode("utf-8", errors="backslashreplace")


def _text(value: object) -> str | None:
    if type(value) is str:  # the common case first: this runs for every field of every row
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    return orjson.dumps(value).decode()  # TypeError when nested deeper than orjson writes


def _properties(value: object) -> tuple[str | None, str | None]:
    """(properties as canonical JSON text, parse error)."""
    if value is None or value == "":
        return None, None
    try:
        if isinstance(value, str):
            value = orjson.loads(value)
        if not isinstance(value, dict):
            return None, "invalid_properties"
        if not value:
            return None, None
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode(), None
    except (orjson.JSONDecodeError, TypeError, RecursionError):
        return None, "invalid_properties"


def error_row(line_number: int, raw_text: str | None, reason: str) -> tuple:
    """A raw row that is nothing but its parse error (RAW_SCHEMA order)."""
    return (line_number, None, None, None, None, None, None, raw_text, reason)


def record_row(line_number: int, record: object, raw_text: str) -> tuple:
    """One raw row (RAW_SCHEMA order) from one decoded record; anything but a JSON object is
    malformed_json. The API builds its rows with this too, so both paths parse alike."""
    if not isinstance(record, dict):
        return error_row(line_number, raw_text, "malformed_json")
    properties, error = _properties(record.get("properties"))
    try:
        fields = [_text(record.get(name)) for name in EVENT_FIELDS[:5]]
    except TypeError:
        return error_row(line_number, raw_text, "malformed_json")
    return (line_number, *fields, properties, raw_text, error)


class _Event(msgspec.Struct, gc=False):
    """An event object of a JSON body, fields untyped: the same values `decode_json` gives."""

    uniqueId: Any = None
    account: Any = None
    meter: Any = None
    value: Any = None
    ts: Any = None
    properties: Any = None


class _Measurements(msgspec.Struct, gc=False):
    measurements: list[_Event]


_event_list = msgspec.json.Decoder(list[_Event], float_hook=str)
_measurements = msgspec.json.Decoder(_Measurements, float_hook=str)


def json_event_columns(body: bytes) -> list[list] | None:
    """The raw columns (RAW_SCHEMA order) of a JSON list of event objects or of
    {"measurements": [...]}: the rows `record_row` makes of the same events, decoded straight
    into columns, without a dict and a tuple per event (the API's hot path). None for anything
    else (a single event, an item that is not an object, a value nested too deep, bytes that are
    not JSON), which the caller reads with `decode_json` and `record_row`."""
    start = body.lstrip()[:1]
    try:
        if start == b"[":
            events = _event_list.decode(body)
        elif start == b"{":
            events = _measurements.decode(body).measurements
        else:
            return None
        columns = [list(range(1, len(events) + 1))]
        for name in EVENT_FIELDS[:5]:
            values = list(map(attrgetter(name), events))
            if not all(type(value) is str for value in values):
                values = [value if type(value) is str else _text(value) for value in values]
            columns.append(values)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, TypeError):
        return None
    properties = list(map(attrgetter("properties"), events))
    if all(value is None for value in properties):
        columns += [properties, [""] * len(events), properties]
    else:
        texts, errors = zip(*map(_properties, properties), strict=True)
        columns += [list(texts), [""] * len(events), list(errors)]
    return columns


def decode_json(data: bytes | str) -> object:
    """Decode JSON as landing does: numbers with a fraction stay exact text ("0.1")."""
    return _decoder.decode(data)


def ndjson_line_row(line_number: int, line: bytes) -> tuple | None:
    """The raw row of one NDJSON line (None for a blank line, which is not a row)."""
    if not line.strip():
        return None
    try:
        record = _decoder.decode(line)
    except UnicodeDecodeError:
        return error_row(line_number, visible_text(line), "invalid_encoding")
    except (msgspec.DecodeError, RecursionError):
        record = None
    return record_row(line_number, record, visible_text(line))


def ndjson_rows(data: bytes) -> list[tuple]:
    rows = (
        ndjson_line_row(line_number, line)
        for line_number, line in enumerate(strip_bom(data).split(b"\n"), start=1)
    )
    return [row for row in rows if row is not None]


def csv_rows(data: bytes) -> list[tuple]:
    """The rows of a CSV file. Bytes that are not UTF-8 are kept apart ("surrogateescape"): the
    csv module still finds the fields and records around them, and the records that hold any are
    invalid_encoding, so two different ids can never read as one."""
    data = strip_bom(data)
    try:
        text = data.decode("utf-8")
        escaped = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        escaped = True
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise FileProblem("malformed_csv_row", f"the header line cannot be read: {error}") from None
    if header is None:
        return []
    if escaped and any(_ESCAPED_BYTES.search(name) for name in header):
        raise FileProblem("invalid_encoding", "the header line is not UTF-8")
    return csv_records(reader, [name.strip() for name in header], first_line=2, escaped=escaped)


def _records(reader: Iterator[list[str]]) -> Iterator[list[str] | csv.Error]:
    """The reader's records; a record the csv module refuses (a field over its size limit) is
    the error itself, and reading goes on with the next line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield error


def csv_records(
    records: Iterable[list[str]], header: list[str], first_line: int, escaped: bool = False
) -> list[tuple]:
    """The raw rows of CSV records (numbered from first_line) under the given header. `escaped`:
    the text may hold surrogate-escaped bytes that were not UTF-8."""
    rows = []
    reader = iter(records)
    for line_number, fields in enumerate(_records(reader), start=first_line):
        if isinstance(fields, csv.Error):
            reason = "field_too_large" if "field limit" in str(fields) else "malformed_csv_row"
            rows.append(error_row(line_number, None, reason))
            continue
        if not any(field.strip() for field in fields):
            continue
        raw_text = ",".join(fields)
        if escaped and _ESCAPED_BYTES.search(raw_text):
            raw = raw_text.encode("utf-8", errors="surrogateescape")
            rows.append(error_row(line_number, visible_text(raw), "invalid_encoding"))
            continue
        if len(fields) != len(header):
            rows.append(error_row(line_number, raw_text, "malformed_csv_row"))
            continue
        if [field.strip() for field in fields] == header:
            rows.append(error_row(line_number, raw_text, "repeated_header"))
            continue
        record = {
            name: (value if value != "" else None)
            for name, value in zip(header, fields, strict=True)
        }
        rows.append(record_row(line_number, record, raw_text))
    return rows


def raw_frame(rows: list[tuple]) -> pl.DataFrame:
    """Raw rows (RAW_SCHEMA order) as a frame, built column by column: about half the time of
    polars' row orientation, which matters to the API (once per request group)."""
    if not rows:
        return pl.DataFrame(schema=RAW_SCHEMA)
    return pl.DataFrame(
        dict(zip(RAW_SCHEMA, zip(*rows, strict=True), strict=True)), schema=RAW_SCHEMA
    )


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
