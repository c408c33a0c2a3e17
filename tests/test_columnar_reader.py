"""The column-at-a-time readers give exactly the frames of the per-row reference readers.

`columnar.ndjson_frame` and `columnar.csv_frame` read lines in the canonical layouts with one
regular expression and hand every other line to the reference (`files.ndjson_line_row`, Python's
csv module through `files.csv_records`). Whatever a line holds, both must give the same row:
on the fixtures, on hand-picked edge cases of the layout, and on thousands of randomly mutated
lines. Separately, canonical lines must really be read column-at-a-time (else the equality would
hold trivially).
"""

from __future__ import annotations

import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dagster_billing.defs.ingest import columnar
from dagster_billing.defs.ingest.columnar import csv_frame, ndjson_frame
from dagster_billing.defs.ingest.files import (
    RAW_SCHEMA,
    csv_rows,
    decode_json,
    json_event_columns,
    ndjson_rows,
    raw_frame,
    record_row,
)
from tests.conftest import FIXTURES

CANONICAL = [
    b'{"uniqueId":"e1","account":"acct_a","meter":"api.requests","value":10,"ts":"2026-01-05T12:00:00Z"}',
    b'{"uniqueId":"e2","account":"acct_a","meter":"tokens","value":2.50,"ts":"2026-01-05T12:00:00.123Z","properties":{"model":"gpt-4o"}}',
    b'{"uniqueId":"e3","account":"acct_a","meter":"tokens","value":"1.5","ts":"2026-01-05T12:00:00Z","properties":{"a":"1","b":"2"},"receivedAt":"2026-01-05T12:00:01Z"}',
    b'{"uniqueId":"e4","account":"acct_a","meter":"m","value":1e3,"ts":"x","receivedAt":"2026-01-05T12:00:01Z"}',
    b'{"uniqueId":"","account":"","meter":"","value":"","ts":"","properties":{}}',
    b'{"uniqueId":"e6","account":"a b","meter":"m","value":-0.0,"ts":"t","properties":{"k":""}}',
    b'{"uniqueId":"e7","account":"a","meter":"m","value":123456789012345678,"ts":"t"}',
    b'{"uniqueId":"e8","account":"a","meter":"m","value":0,"ts":"t","properties":{"A":"x","a":"y"}}',
    b'{"uniqueId":"e9","account":"{}[],:","meter":"m","value":"twelve","ts":"t"}',
]

# Lines the reference must read: each breaks the canonical layout in one way.
OTHERS = [
    b'{"uniqueId":"e1","account":"a","meter":"m","value":-0,"ts":"t"}',  # msgspec: 0
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1234567890123456789,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","properties":{"b":"1","a":"2"}}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","properties":{"a":"1","a":"2"}}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","properties":{"a":1}}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","properties":{"a":{"b":"c"}}}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","properties":"{\\"a\\":\\"b\\"}"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","properties":null}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","uniqueId":"e2"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t","receivedAt":"r","properties":{"a":"b"}}',
    b'{"account":"a","uniqueId":"e1","meter":"m","value":1,"ts":"t"}',
    b'{"uniqueId": "e1","account":"a","meter":"m","value":1,"ts":"t"}',
    b'{"uniqueId":"e\\u0031","account":"a","meter":"m","value":1,"ts":"t"}',
    b'{"uniqueId":"e1","account":"caf\xc3\xa9","meter":"m","value":1,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a\tb","meter":"m","value":1,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":true,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":[1],"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":01,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":NaN,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t",}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t"}\r',
    b'  {"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t"}',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t"} x',
    b'{"uniqueId":"e1","account":"a","meter":"m","value":1,"ts":"t"',
    b'{"uniqueId":null,"account":"a","meter":"m","value":1,"ts":"t"}',
    b'["uniqueId","e1"]',
    b'"just a string"',
    b"",
    b"   \t ",
    b"\x0c",
    b"not json",
]


def reference_frame(contents: list[bytes]) -> pl.DataFrame:
    frames = [
        raw_frame(ndjson_rows(data)).select(
            pl.lit(index, dtype=pl.Int32).alias("file_index"), pl.all()
        )
        for index, data in enumerate(contents)
    ]
    return pl.concat(frames)


def assert_reads_alike(contents: list[bytes]) -> pl.DataFrame:
    frame = ndjson_frame(contents)
    assert_frame_equal(
        frame.sort("file_index", "source_line"), reference_frame(contents), check_dtypes=True
    )
    return frame


@pytest.fixture
def reference_lines(monkeypatch) -> list[bytes]:
    """The lines that columnar.ndjson_frame hands to the reference reader."""
    handed: list[bytes] = []
    line_row = columnar.ndjson_line_row

    def counting(line_number: int, line: bytes):
        handed.append(line)
        return line_row(line_number, line)

    monkeypatch.setattr(columnar, "ndjson_line_row", counting)
    return handed


def test_canonical_lines_are_read_column_at_a_time(reference_lines):
    frame = assert_reads_alike([b"\n".join(CANONICAL) + b"\n"])
    assert frame.height == len(CANONICAL)
    assert reference_lines == [b""]  # only the empty piece after the last newline


def test_every_other_line_goes_to_the_reference(reference_lines):
    data = b"\n".join(CANONICAL + OTHERS)  # no newline at the end
    frame = assert_reads_alike([data])
    assert sorted(reference_lines) == sorted(OTHERS)
    assert frame.height == len(CANONICAL) + len(OTHERS) - 3  # blank lines are not rows


def test_files_keep_their_own_line_numbers_and_only_non_utf8_lines_go_to_the_reference():
    contents = [
        b"\n".join(CANONICAL[:3]) + b"\n\n" + CANONICAL[3],
        b"",
        b"\xff\xfe" + CANONICAL[0] + b"\n" + CANONICAL[1] + b"\n",
        b"\n".join(OTHERS[:5] + CANONICAL[5:]),
    ]
    frame = assert_reads_alike(contents)
    assert frame.filter(pl.col("file_index") == 0)["source_line"].sort().to_list() == [1, 2, 3, 5]
    assert frame.filter(pl.col("file_index") == 2).sort("source_line")["parse_error"].to_list() == [
        "malformed_json",
        None,
    ]


def test_a_bom_is_not_part_of_line_1_and_only_non_utf8_lines_go_to_the_reference(
    reference_lines,
):
    bad = b'{"uniqueId":"e\xff","account":"a","meter":"m","value":1,"ts":"t"}'
    data = b"\xef\xbb\xbf" + b"\n".join([CANONICAL[0], bad, CANONICAL[1]]) + b"\n"
    frame = assert_reads_alike([data])
    assert frame.sort("source_line")["parse_error"].to_list() == [None, "invalid_encoding", None]
    assert frame.sort("source_line")["unique_id"].to_list() == ["e1", None, "e2"]
    assert [line for line in reference_lines if line] == [bad]


def test_fixture_files_read_alike():
    paths = sorted(FIXTURES.rglob("*.ndjson")) + sorted(FIXTURES.rglob("*.jsonl"))
    assert paths
    assert_reads_alike([path.read_bytes() for path in paths])


# Characters that change what a line means: structure, quoting, escapes, numbers, whitespace.
MUTATIONS = [*'"{}[],:\\ 0123456789-+.eEnulltrfa', "\t", "\r", "\u00e9", "\u2028", "\x00"]


def _mutated(rng: random.Random, line: str) -> str:
    for _ in range(rng.randint(0, 2)):
        position = rng.randrange(len(line) + 1)
        action = rng.random()
        if action < 0.4:
            line = line[:position] + rng.choice(MUTATIONS) + line[position:]
        elif action < 0.7:
            line = line[:position] + line[position + 1 :]
        else:
            line = line[:position] + rng.choice(MUTATIONS) + line[position + 1 :]
    return line.replace("\n", "")


def test_randomly_mutated_lines_read_alike(reference_lines):
    rng = random.Random(20261203)
    seeds = [line.decode() for line in CANONICAL * 3 + OTHERS if line.strip()]
    lines = [_mutated(rng, rng.choice(seeds)) for _ in range(5000)]
    assert_reads_alike(["\n".join(lines).encode()])
    assert 500 < len(reference_lines) < 4500  # the mutations reach both readers


# The API's JSON bodies: `json_event_columns` decodes a list of events, or {"measurements": [...]},
# straight into columns, and must give the rows `record_row` makes of `decode_json`'s records.


def _json_reference(body: bytes) -> pl.DataFrame | None:
    try:
        decoded = decode_json(body)
    except Exception:
        return None
    records = decoded["measurements"] if isinstance(decoded, dict) else decoded
    return raw_frame([record_row(index + 1, record, "") for index, record in enumerate(records)])


def assert_json_reads_alike(body: bytes) -> bool:
    """Whether the body was read column-at-a-time (None hands it to the reference)."""
    columns = json_event_columns(body)
    if columns is None:
        return False
    frame = pl.DataFrame(dict(zip(RAW_SCHEMA, columns, strict=True)), schema=RAW_SCHEMA)
    assert_frame_equal(frame, _json_reference(body))
    return True


JSON_EVENTS = [line for line in CANONICAL + OTHERS if line.strip().startswith(b"{")]


def test_json_bodies_are_read_column_at_a_time_as_record_row_reads_them():
    events = b",".join(line.strip().rstrip(b"x ").rstrip(b",") for line in JSON_EVENTS[:20])
    assert assert_json_reads_alike(b"[" + events + b"]")
    assert assert_json_reads_alike(b' {"measurements": [' + events + b'], "other": 1}')
    for event in JSON_EVENTS:
        # Every event the reference reads (valid JSON) is read column-at-a-time too.
        readable = _json_reference(b"[" + event + b"]") is not None
        assert assert_json_reads_alike(b"[" + event + b"]") is readable, event
    nested = b'{"uniqueId":"e1","account":' + b"[" * 2000 + b"]" * 2000 + b',"value":1}'
    # Nested deeper than orjson writes: record_row's malformed_json row, by the reference.
    assert not assert_json_reads_alike(b"[" + nested + b"]")
    assert assert_json_reads_alike(b"[]")  # no rows: the API refuses it as empty
    for other in (b"[1]", b'{"measurements": 5}', b'{"uniqueId": "e1"}', b"null"):
        assert not assert_json_reads_alike(other)


def test_randomly_mutated_json_bodies_read_alike():
    rng = random.Random(20261206)
    seeds = [line.decode() for line in JSON_EVENTS]
    read = 0
    for _ in range(1500):
        events = ",".join(_mutated(rng, rng.choice(seeds)) for _ in range(rng.randint(1, 4)))
        body = f'{{"measurements":[{events}]}}' if rng.random() < 0.5 else f"[{events}]"
        read += assert_json_reads_alike(body.encode())
    assert 100 < read < 1400  # the mutations reach both readers


CSV_HEADER = b"uniqueId,account,meter,value,ts,properties"
CSV_CANONICAL = [
    b"c1,acct_a,api.requests,5,2026-01-07T00:00:00Z,",
    b'c2,acct_a,tokens,250,2026-01-07T00:00:00Z,"{""model"":""gpt-4o""}"',
    b'c3,acct_a,tokens,1.50,t,"{""a"":""x, y"",""b"":""""}"',
    b'c4,,, 7 ,,"{}"',
    b"c5,acct_a,m,five,t,",
    b"c6,a\\b,m,1,t,",
]
# Lines the csv module must read; the ones without '"' or '\r' one by one.
CSV_OTHERS = [
    b"c7,acct_a,api.requests,5",  # ragged
    b"c8,acct_a,api.requests,5,t,not json",
    b"c9,acct_a,api.requests,5,t,,extra",
    b",,,,,",
    b"  , ,,,,",
    b"",
]
CSV_HARD = [
    b'c10,acct_a,tokens,1,t,"{""model"": ""gpt-4o""}"',  # not compact: the rest goes to csv
    b'c11,acct_a,tokens,1,t,"{""b"":""1"",""a"":""2""}"',
    b'"c12",acct_a,m,1,t,',
    b'c13,"multi\nline",m,1,t,',
    b"c14,acct_a,m,1,t,\r",
    b"c15,acct_a,m,1,t,",
]


def csv_reference_frame(contents: list[bytes]) -> pl.DataFrame:
    return pl.concat(
        raw_frame(csv_rows(data)).select(
            pl.lit(index, dtype=pl.Int32).alias("file_index"), pl.all()
        )
        for index, data in enumerate(contents)
    )


def assert_csv_reads_alike(contents: list[bytes]) -> pl.DataFrame:
    frame = pl.concat(csv_frame(index, data) for index, data in enumerate(contents))
    assert_frame_equal(frame.sort("file_index", "source_line"), csv_reference_frame(contents))
    return frame


@pytest.fixture
def csv_records_read(monkeypatch) -> list[int]:
    """The line numbers from which columnar.csv_frame hands text to the csv module."""
    handed: list[int] = []
    records = columnar.csv_records

    def counting(rows, header, first_line, escaped=False):
        handed.append(first_line)
        return records(rows, header, first_line, escaped)

    monkeypatch.setattr(columnar, "csv_records", counting)
    return handed


def test_canonical_csv_is_read_column_at_a_time(csv_records_read):
    frame = assert_csv_reads_alike([b"\n".join([CSV_HEADER, *CSV_CANONICAL]) + b"\n"])
    assert frame.height == len(CSV_CANONICAL)
    assert csv_records_read == [len(CSV_CANONICAL) + 2]  # only the empty piece at the end


def test_csv_lines_the_layout_does_not_cover_go_to_the_csv_module(csv_records_read):
    lines = [CSV_HEADER, *CSV_CANONICAL, *CSV_OTHERS, *CSV_HARD, *CSV_CANONICAL]
    assert_csv_reads_alike([b"\n".join(lines), b"\r\n".join(lines)])
    first_hard = 2 + len(CSV_CANONICAL) + len(CSV_OTHERS)
    others = list(range(2 + len(CSV_CANONICAL), first_hard))
    assert csv_records_read == [*others, first_hard] * 2  # CRLF line ends read alike


@pytest.mark.parametrize(
    "data",
    [
        b"uniqueId,account,meter,value,ts\nc1,a,m,1,t\nc2,a,m,1,t,extra\n",
        b" uniqueId,account,meter,value,ts,properties\nc1,a,m,1,t,\n",
        b"\xef\xbb\xbfuniqueId,account,meter,value,ts,properties\nc1,a,m,1,t,\n",
        b"uniqueId,account,meter,value,ts,properties\nc1,caf\xe9,m,1,t,\n",
        b"uniqueId,account,meter,value,ts,properties\r\nc1,a,m,1,t,\r\n",
        b"uniqueId,account,meter,value,ts\nc1,a,m,1,t\nuniqueId,account,meter,value,ts\n"
        b" uniqueId ,account,meter,value,ts\nuniqueId,account,meter,value,t\n",
        b"uniqueId,account,meter,value,ts,properties\nuniqueId,account,meter,value,ts,properties\n",
        b'uniqueId,account,meter,value,ts,properties\nc1,a,m,1,t,"{""k"":""'
        + b"x" * 140_000
        + b'""}"\nc2,a,m,1,t,\n',
        b"uniqueId,account,meter,value,ts,properties",
        b"",
    ],
)
def test_csv_headers_and_encodings_read_alike(data):
    assert_csv_reads_alike([data])


def test_randomly_mutated_csv_lines_read_alike(csv_records_read):
    rng = random.Random(20261204)
    seeds = [line.decode() for line in CSV_CANONICAL * 3 + CSV_OTHERS + CSV_HARD if line.strip()]
    files = [
        "\n".join([CSV_HEADER.decode()] + [_mutated(rng, rng.choice(seeds)) for _ in range(50)])
        for _ in range(100)
    ]
    frame = assert_csv_reads_alike([text.encode() for text in files])
    assert frame.height > 2000
