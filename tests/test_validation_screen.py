"""The API's validation fast path gives exactly the reasons of the pandera schema.

`passing_rows` runs the schema's own check functions in one polars pass; it may only ever pass
rows that pandera passes. `validated_rows` (parsing and the screen in one query, pandera for the rows
the screen fails) must give the rows of `parse_raw_rows` and the reasons of `quarantine_reasons`
row for row, on the malformed fixtures and on generated rows that mix every kind of bad field.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta

import pandera.polars as pa
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dagster_billing.defs.ingest import schemas
from dagster_billing.defs.ingest.files import raw_frame, read_landing_file, record_row
from dagster_billing.defs.ingest.schemas import (
    FUTURE_TOLERANCE,
    parse_raw_rows,
    passing_rows,
    quarantine_reasons,
    validated_rows,
)
from tests.conftest import FIXTURES

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
LATEST = NOW + FUTURE_TOLERANCE


def _same_outcome(raw: pl.DataFrame) -> list[str | None]:
    parsed = parse_raw_rows(raw)
    expected = quarantine_reasons(parsed, latest_allowed_ts=LATEST).to_list()
    validated = validated_rows(raw, latest_allowed_ts=LATEST)
    assert_frame_equal(validated.drop("reason"), parsed)
    assert validated["reason"].to_list() == expected
    passes = passing_rows(parsed, latest_allowed_ts=LATEST)
    assert passes is not None
    # Sound: nothing the screen passes is quarantined by pandera.
    assert all(reason is None for reason, ok in zip(expected, passes, strict=True) if ok)
    return expected


@pytest.mark.parametrize("name", ["events.ndjson", "backfill.csv"])
def test_malformed_fixtures_get_the_pandera_reasons(name):
    raw = read_landing_file(FIXTURES / "malformed" / name)
    reasons = _same_outcome(raw)
    parsed = parse_raw_rows(raw)
    assert any(reasons) and not all(reasons)
    # Here the screen is also complete: it fails exactly the invalid rows.
    passes = passing_rows(parsed, latest_allowed_ts=LATEST).to_list()
    assert passes == [reason is None for reason in reasons]


IDS = ["evt-1", "", "   ", None, "x" * 255, "x" * 256, "é" * 255, 42, True]
ACCOUNTS = ["acct_meridian", None, "", 7]
METERS = ["api.requests", None, "", "api.reqests"]
VALUES = [
    1, 0, -1, "1.25", "1.50", " 2 ", "-0", "0.0000000001", "0.00000000001", 1.5, "1e3", "12abc",
    "", None, "NaN", "inf", True, [1], {"a": 1}, "99999999999999999999999999999", "1" * 40,
]  # fmt: skip
TIMESTAMPS = [
    "2026-01-05T12:00:00Z", "2026-01-05T12:00:00+00:00", "2026-01-05T13:00:00+01:00",
    "2026-01-05T12:00:00.123456Z", "2026-01-05T12:00:00", "2026-13-45T99:00:00Z", "yesterday",
    "", None, 1767614400, (NOW + timedelta(minutes=4)).isoformat(),
    (NOW + timedelta(minutes=6)).isoformat(), "2099-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "2026-01-31T23:59:60Z", "  ",
]  # fmt: skip
PROPERTIES = [None, {"model": "gpt-4o"}, {}, [1, 2], '{"a": 1}', "not json", ""]


def test_generated_rows_get_the_pandera_reasons():
    rng = random.Random(6)
    rows = []
    for line in range(1, 3001):
        if rng.random() < 0.02:
            rows.append(record_row(line, [1, 2], "[1, 2]"))
            continue
        record = {
            "uniqueId": rng.choice(IDS),
            "account": rng.choice(ACCOUNTS),
            "meter": rng.choice(METERS),
            "value": rng.choice(VALUES),
            "ts": rng.choice(TIMESTAMPS),
            "properties": rng.choice(PROPERTIES),
        }
        for name in list(record):
            if rng.random() < 0.05:
                del record[name]
        rows.append(record_row(line, record, ""))
    reasons = _same_outcome(raw_frame(rows))
    assert reasons.count(None) > 25
    assert len(set(reasons)) > 10


def test_all_valid_rows_skip_pandera(monkeypatch):
    rows = [
        record_row(n, {"uniqueId": f"e{n}", "account": "a", "meter": "m", "value": "1.5",
                       "ts": "2026-01-05T12:00:00Z"}, "")
        for n in range(1, 101)
    ]  # fmt: skip

    def fail(*args, **kwargs):
        raise AssertionError("pandera should not run")

    monkeypatch.setattr(schemas, "quarantine_reasons", fail)
    validated = validated_rows(raw_frame(rows), latest_allowed_ts=LATEST)
    assert validated["reason"].null_count() == 100


def test_a_schema_feature_the_screen_does_not_evaluate_means_pandera_validates(monkeypatch):
    original = schemas.usage_row_schema

    def with_frame_check(**window):
        schema = original(**window)
        schema.checks = [pa.Check(lambda data: data.lazyframe.select(pl.lit(True)))]
        return schema

    monkeypatch.setattr(schemas, "usage_row_schema", with_frame_check)
    schemas._screen_reading_latest.cache_clear()  # built from the schema above, then dropped
    monkeypatch.setattr(
        schemas,
        "_screen_reading_latest",
        functools.cache(schemas._screen_reading_latest.__wrapped__),
    )
    raw = read_landing_file(FIXTURES / "malformed" / "events.ndjson")
    parsed = parse_raw_rows(raw)
    assert passing_rows(parsed, latest_allowed_ts=LATEST) is None
    reasons = validated_rows(raw, latest_allowed_ts=LATEST)["reason"].to_list()
    assert reasons == quarantine_reasons(parsed, latest_allowed_ts=LATEST).to_list()
    assert any(reasons)


def test_the_screen_built_once_still_takes_each_calls_latest_allowed_time():
    """The API validates each group with its own latest_allowed_ts against one cached screen."""
    ts = ["2026-01-10T12:04:00Z", "2026-01-10T12:06:00Z", "2026-01-10T12:08:00Z"]
    raw = raw_frame([
        record_row(n, {"uniqueId": f"e{n}", "account": "a", "meter": "m", "value": "1",
                       "ts": text}, "")
        for n, text in enumerate(ts, start=1)
    ])  # fmt: skip
    outcomes = [
        validated_rows(raw, latest_allowed_ts=NOW + timedelta(minutes=minutes))["reason"].to_list()
        for minutes in (5, 7, 5, 9, 3)
    ]
    future = "future_timestamp"
    assert outcomes == [
        [None, future, future],
        [None, None, future],
        [None, future, future],
        [None, None, None],
        [future, future, future],
    ]


def test_a_wrong_dtype_means_pandera_validates():
    parsed = parse_raw_rows(read_landing_file(FIXTURES / "malformed" / "events.ndjson"))
    wrong = parsed.with_columns(pl.col("value").cast(pl.Float64))
    assert passing_rows(wrong, latest_allowed_ts=LATEST) is None
