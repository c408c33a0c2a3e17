"""Landing files read column-at-a-time with polars, row for row as the per-row readers of
`files.py` read them (`ndjson_frame` like `files.ndjson_rows`, `csv_frame` like `files.csv_rows`;
the CSV layout is described above `csv_frame`).

`files.py` is the reference reader: one msgspec decode and a few Python calls per line, about
5 µs a row, which was most of the landing time. Here one anchored regular expression splits the
fields out of whole files at once (polars, on every core), but only for lines in the layout that
our API writes and most producers emit, where what msgspec would read is plain to see:

    {"uniqueId":S,"account":S,"meter":S,"value":N|S,"ts":S[,"properties":P][,"receivedAt":S]}

- no whitespace; S is a string of printable ASCII without '"' or '\\' (so no escapes: the text
  is what stands between the quotes);
- N is a JSON number, kept as written (msgspec hands numbers with a fraction or an exponent over
  as text; integers, at most 18 digits here, come back as written, except -0, which is left out);
- P is an object of such strings under keys of [A-Za-z0-9_.-], in sorted order, without repeats:
  the reference writes properties back as compact JSON with sorted keys, which is then P itself;
  {} is no properties.

Every other line (another key order, spaces, escapes, nulls, nesting, malformed JSON, blank...)
goes to the reference reader: in NDJSON the lines that are not UTF-8 too (the rest of their file
is still read here), in CSV a file with any such byte goes to it whole. A UTF-8 byte order mark is
dropped first; in CSV a line equal to the header is never canonical (it is `repeated_header`), nor
one longer than the csv module's field limit (which it may refuse: `field_too_large`).
Both readers give the same frame; tests/test_columnar_reader.py holds them to it, fuzzed lines
included.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from dagster_billing.defs.ingest.files import (
    RAW_SCHEMA,
    csv_records,
    csv_rows,
    ndjson_line_row,
    raw_frame,
    strip_bom,
)

FRAME_SCHEMA = {"file_index": pl.Int32, **RAW_SCHEMA}

_TEXT = r"[ !#-\[\]-~]*"  # printable ASCII but '"' and '\\'
_STRING = f'"{_TEXT}"'
_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_KEY_TEXT = r"[A-Za-z0-9_.\-]+"
_KEY = f'"{_KEY_TEXT}"'
_PROPERTIES = rf"\{{(?:{_KEY}:{_STRING}(?:,{_KEY}:{_STRING})*)?\}}"
# Written so that every character decides the branch (a one-pass regex: twice as fast to match).
CANONICAL_LINE = (
    rf'^\{{"uniqueId":"({_TEXT})","account":"({_TEXT})","meter":"({_TEXT})",'
    rf'"value":(?:({_NUMBER})|"({_TEXT})"),"ts":"({_TEXT})"'
    rf'(?:,"(?:properties":({_PROPERTIES})(?:,"receivedAt":{_STRING})?|receivedAt":{_STRING}))?'
    r"\}$"
)
_GROUPS = (
    "unique_id",
    "account_id",
    "meter_code",
    "value_number",
    "value_string",
    "ts_text",
    "properties",
)

# Lines are matched in slices of this many, one polars task each.
SLICE_ROWS = 128 * 1024


def _lines(file_index: int, data: bytes) -> pl.DataFrame:
    """(file_index, source_line, raw_text) of the file's lines as `bytes.split(b"\\n")` cuts
    and numbers them, without copying them: each but the last still ends in its newline, as
    arrow strings are contiguous."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    offsets = np.concatenate(([0], np.flatnonzero(buffer == 10) + 1, [len(data)]))
    count = len(offsets) - 1
    raw_text = pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data)
    )
    return pl.DataFrame(
        {
            "file_index": pl.repeat(file_index, count, dtype=pl.Int32, eager=True),
            "source_line": pl.int_range(1, count + 1, dtype=pl.Int64, eager=True),
            "raw_text": pl.from_arrow(raw_text),
        }
    )


def _sorted_distinct_keys(properties: pl.Expr) -> pl.Expr:
    """Properties (compact JSON of strings, or null) whose keys are sorted and distinct. Only
    properties with a comma can have two keys: the key lists (a third of the read's time when
    built for every row) are built for those alone."""
    several = pl.when(properties.str.contains(",", literal=True)).then(properties)
    keys = several.str.extract_all(f"{_KEY}:")
    return several.is_null() | (
        (keys == keys.list.sort()) & (keys.list.n_unique() == keys.list.len())
    )


def _read(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Lines (file_index, source_line, raw_text) with their fields, and `canonical`: whether the
    fields were read here (else they are null and the line goes to the reference reader)."""
    return (
        lines.with_columns(pl.col("raw_text").str.strip_suffix("\n"))
        .with_columns(
            pl.col("raw_text")
            .str.extract_groups(CANONICAL_LINE)
            .struct.rename_fields(list(_GROUPS))
            .struct.unnest()
        )
        .select(
            "file_index",
            "source_line",
            "unique_id",
            "account_id",
            "meter_code",
            pl.coalesce("value_number", "value_string").alias("value_text"),
            "ts_text",
            pl.when(pl.col("properties") != "{}").then(pl.col("properties")).alias("properties"),
            "raw_text",
            pl.lit(None, dtype=pl.String).alias("parse_error"),
            canonical=pl.col("unique_id").is_not_null()
            & (pl.col("value_number").is_null() | (pl.col("value_number") != "-0"))
            & _sorted_distinct_keys(pl.col("properties")),
        )
    )


def ndjson_frame(contents: Sequence[bytes]) -> pl.DataFrame:
    """The rows of NDJSON files (their contents, in order) as `files.ndjson_rows` reads them, in
    RAW_SCHEMA plus `file_index` (the position in `contents`). The rows read here come first,
    then those of the reference reader: order means nothing, (file_index, source_line) does."""
    file_indexes: list[int] = []
    reference_rows: list[tuple] = []

    def read_by_reference(file_index: int, rows: Iterable[tuple | None]) -> None:
        for row in rows:
            if row is not None:
                file_indexes.append(file_index)
                reference_rows.append(row)

    lines = []
    for file_index, data in enumerate(contents):
        data = strip_bom(data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data, invalid = _blank_invalid_lines(data)
            read_by_reference(
                file_index, (ndjson_line_row(number, line) for number, line in invalid)
            )
        lines.append(_lines(file_index, data))
    frames = []
    if lines:
        all_lines = pl.concat(lines)
        reads = [
            _read(all_lines.slice(offset, SLICE_ROWS).lazy())
            for offset in range(0, all_lines.height, SLICE_ROWS)
        ]
        results = pl.collect_all(
            [read.filter("canonical").select(FRAME_SCHEMA.keys()) for read in reads]
            + [
                read.filter(~pl.col("canonical")).select("file_index", "source_line", "raw_text")
                for read in reads
            ]
        )
        frames.append(pl.concat(results[: len(reads)]))
        for file_index, line_no, line in pl.concat(results[len(reads) :]).iter_rows():
            read_by_reference(file_index, [ndjson_line_row(line_no, line.encode())])
    if reference_rows:
        frames.append(
            raw_frame(reference_rows).select(
                pl.Series("file_index", file_indexes, dtype=pl.Int32), pl.all()
            )
        )
    if not frames:
        return pl.DataFrame(schema=FRAME_SCHEMA)
    return pl.concat(frames)


def _blank_invalid_lines(data: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The data with each line that is not UTF-8 emptied (so every other line keeps its number,
    and an empty line is no row), and those lines with their numbers."""
    lines = data.split(b"\n")
    invalid = []
    for index, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            invalid.append((index + 1, line))
            lines[index] = b""
    return b"\n".join(lines), invalid


# CSV: files with one of these headers, and records of plain fields (printable ASCII but '"' and
# ','; empty is null) with properties empty or quoted compact JSON of strings, sorted keys.
_FIELD = r"([ !#-+\--~]*)"
_CSV_PROPERTIES = (
    rf'(?:"(\{{(?:""{_KEY_TEXT}"":""{_TEXT}""(?:,""{_KEY_TEXT}"":""{_TEXT}"")*)?\}})")?'
)
CSV_COLUMNS = ("unique_id", "account_id", "meter_code", "value_text", "ts_text")
CSV_LINES = {
    "uniqueId,account,meter,value,ts,properties": rf"^{','.join([_FIELD] * 5)},{_CSV_PROPERTIES}$",
    "uniqueId,account,meter,value,ts": rf"^{','.join([_FIELD] * 5)}$",
}


def csv_frame(file_index: int, data: bytes) -> pl.DataFrame:
    """The rows of one CSV file as `files.csv_rows` reads them (RAW_SCHEMA plus file_index).

    Lines in the canonical layout are read here. Python's csv module reads a line without '"',
    '\\r' or NUL as one record whatever it holds, so other such lines go to it one by one;
    from the first line with any of those on, it reads the rest of the file (a quoted field may
    span lines)."""
    data = strip_bom(data)
    header = data.split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        data.decode("utf-8")
        pattern = CSV_LINES[header.decode()]
    except (UnicodeDecodeError, KeyError):
        return _with_file_index(raw_frame(csv_rows(data)), file_index)
    names = header.decode().split(",")
    fields = [f"field_{n}" for n in range(1, len(names) + 1)]
    lines = (
        _lines(file_index, data)
        .slice(1)
        .with_columns(pl.col("raw_text").str.strip_suffix("\n"))
        .with_columns(record=pl.col("raw_text").str.strip_suffix("\r"))
        .with_columns(
            pl.col("record")
            .str.extract_groups(pattern)
            .struct.rename_fields(fields)
            .struct.unnest()
        )
    )
    if len(names) == 6:
        properties = pl.col("field_6").str.replace_all('""', '"', literal=True)
        csv_text = pl.concat_str([*fields[:5], pl.col("properties").fill_null("")], separator=",")
    else:
        properties = pl.lit(None, dtype=pl.String)
        csv_text = pl.concat_str(fields, separator=",")
    read = lines.with_columns(properties=properties).with_columns(
        canonical=pl.col("field_1").is_not_null()
        & ~pl.col("record").str.contains("^[ ,]*$")
        & ~_is_header(fields, names)
        # The csv module refuses a field over its limit (field_too_large): it decides.
        & (pl.col("record").str.len_bytes() <= csv.field_size_limit())
        & _sorted_distinct_keys(pl.col("properties")),
        hard=pl.col("record").str.contains('["\r\x00]'),
        **{
            column: pl.when(pl.col(field) != "").then(pl.col(field))
            for column, field in zip(CSV_COLUMNS, fields, strict=False)
        },
        properties=pl.when(pl.col("properties") != "{}").then(pl.col("properties")),
        csv_text=csv_text,
        parse_error=pl.lit(None, dtype=pl.String),
    )
    hard_lines = read.filter(~pl.col("canonical") & pl.col("hard"))["source_line"]
    first_hard = hard_lines.min() if len(hard_lines) else None
    if first_hard is not None:
        rest = read.filter(pl.col("source_line") >= first_hard)
        read = read.filter(pl.col("source_line") < first_hard)
    fast = (
        read.filter("canonical")
        .drop("raw_text")
        .rename({"csv_text": "raw_text"})
        .select(FRAME_SCHEMA.keys())
    )
    rows = []
    others = read.filter(~pl.col("canonical")).select("source_line", "raw_text")
    for line_no, line in others.iter_rows():
        rows += csv_records(_csv_reader(line), names, first_line=line_no)
    if first_hard is not None:
        rows += csv_records(_csv_reader("\n".join(rest["raw_text"])), names, first_line=first_hard)
    return pl.concat([fast, _with_file_index(raw_frame(rows), file_index)])


def _is_header(fields: list[str], names: list[str]) -> pl.Expr:
    """The record repeats the header (the reference's repeated_header)."""
    return pl.all_horizontal(
        [pl.col(field).str.strip_chars() == name for field, name in zip(fields, names, strict=True)]
    ).fill_null(False)


def _csv_reader(text: str) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(text, newline=""))


def _with_file_index(frame: pl.DataFrame, file_index: int) -> pl.DataFrame:
    return frame.select(pl.lit(file_index, dtype=pl.Int32).alias("file_index"), pl.all())
