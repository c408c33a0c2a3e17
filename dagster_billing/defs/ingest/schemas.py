"""Structural validation of landed usage rows with pandera (polars backend).

Each check maps to one quarantine reason. A row failing several checks gets the first reason
in REASON_PRIORITY, so the reason is stable and the most fundamental problem is named.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandera.polars as pa
import polars as pl

VALUE_DTYPE = pl.Decimal(38, 10)
MAX_ID_LENGTH = 255

# (column, pandera check name) -> quarantine reason, in priority order.
REASON_PRIORITY: list[tuple[tuple[str, str], str]] = [
    (("parse_error", "no_parse_error"), "<parse_error>"),
    (("unique_id", "not_nullable"), "missing_id"),
    (("unique_id", "id_present"), "missing_id"),
    (("unique_id", "id_length"), "id_too_long"),
    (("account_id", "not_nullable"), "missing_account"),
    (("meter_code", "not_nullable"), "missing_meter"),
    (("value_text", "not_nullable"), "missing_value"),
    (("value", "numeric"), "non_numeric_value"),
    (("value", "exact_to_10_places"), "value_too_precise"),
    (("value", "greater_than_or_equal_to(0)"), "negative_value"),
    (("ts_text", "not_nullable"), "missing_timestamp"),
    (("event_ts", "rfc3339_utc"), "bad_timestamp"),
    (("event_ts", "not_in_future"), "future_timestamp"),
]


def _parsed_where_given(text_column: str):
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_not_null() | pl.col(text_column).is_null())

    return check


def _exact_to_10_places(data: pa.PolarsData) -> pl.LazyFrame:
    wide = pl.Decimal(38, 20)
    text_value = pl.col("value_text").str.strip_chars().cast(wide, strict=False)
    return data.lazyframe.select(
        pl.col(data.key).is_null()
        | text_value.is_null()
        | (pl.col(data.key).cast(wide) == text_value)
    )


def usage_row_schema(*, latest_allowed_ts: datetime) -> pa.DataFrameSchema:
    """Schema of a parsed landing frame; latest_allowed_ts = received_at + future tolerance."""
    return pa.DataFrameSchema(
        {
            "parse_error": pa.Column(
                pl.String,
                nullable=True,
                checks=pa.Check(
                    lambda data: data.lazyframe.select(pl.col(data.key).is_null()),
                    name="no_parse_error",
                ),
            ),
            "unique_id": pa.Column(
                pl.String,
                checks=[
                    pa.Check(
                        lambda data: data.lazyframe.select(
                            pl.col(data.key).str.strip_chars() != ""
                        ),
                        name="id_present",
                    ),
                    pa.Check(
                        lambda data: data.lazyframe.select(
                            pl.col(data.key).str.len_chars() <= MAX_ID_LENGTH
                        ),
                        name="id_length",
                    ),
                ],
            ),
            "account_id": pa.Column(pl.String),
            "meter_code": pa.Column(pl.String),
            "value_text": pa.Column(pl.String),
            "value": pa.Column(
                VALUE_DTYPE,
                nullable=True,
                checks=[
                    pa.Check(_parsed_where_given("value_text"), name="numeric"),
                    pa.Check(_exact_to_10_places, name="exact_to_10_places"),
                    pa.Check.ge(0),
                ],
            ),
            "ts_text": pa.Column(pl.String),
            "event_ts": pa.Column(
                pl.Datetime("us", "UTC"),
                nullable=True,
                checks=[
                    pa.Check(_parsed_where_given("ts_text"), name="rfc3339_utc"),
                    pa.Check(
                        lambda data: data.lazyframe.select(
                            pl.col(data.key).is_null() | (pl.col(data.key) <= latest_allowed_ts)
                        ),
                        name="not_in_future",
                    ),
                ],
            ),
        },
        strict=False,
    )


def parse_raw_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """Typed columns next to the raw text: value as DECIMAL(38,10), event_ts as UTC datetime."""
    return raw.with_columns(
        value=pl.col("value_text").str.strip_chars().cast(VALUE_DTYPE, strict=False),
        event_ts=pl.col("ts_text").str.to_datetime(
            format="%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC", time_unit="us", strict=False
        ),
    )


def quarantine_reasons(parsed: pl.DataFrame, *, latest_allowed_ts: datetime) -> pl.Series:
    """One reason per row (null = valid), from pandera's failure cases."""
    schema = usage_row_schema(latest_allowed_ts=latest_allowed_ts)
    reasons: list[str | None] = [None] * parsed.height
    try:
        schema.validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases.select("column", "check", "index").drop_nulls("index")
        priority = {key: rank for rank, (key, _) in enumerate(REASON_PRIORITY)}
        best: dict[int, int] = {}
        for column, check, index in failures.iter_rows():
            rank = priority.get((column, check))
            if rank is None:
                raise RuntimeError(f"unmapped validation failure {column}/{check}") from errors
            if rank < best.get(index, len(REASON_PRIORITY)):
                best[index] = rank
        parse_errors = parsed.get_column("parse_error")
        for index, rank in best.items():
            reason = REASON_PRIORITY[rank][1]
            reasons[index] = parse_errors[index] if reason == "<parse_error>" else reason
    return pl.Series("reason", reasons, dtype=pl.String)


FUTURE_TOLERANCE = timedelta(minutes=5)
