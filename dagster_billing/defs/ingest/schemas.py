"""Structural validation of landed usage rows with pandera (polars backend).

Each check maps to one quarantine reason. A row failing several checks gets the first reason
in REASON_PRIORITY, so the reason is stable and the most fundamental problem is named.

Before the checks (`parse_raw_rows`): an empty account, meter, value or ts counts as missing, in
JSON as in CSV (where an empty field is no value); a leap second (`23:59:60`) stays in its minute
as `23:59:59.999999`, so it never rolls into the next day or billing period.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pandera.backends.polars.builtin_checks  # noqa: F401  (registers Check.ge & co. for polars)
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.config import get_config_context

VALUE_DTYPE = pl.Decimal(38, 10)
MAX_ID_LENGTH = 255
FUTURE_TOLERANCE = timedelta(minutes=5)
# Events before this instant are refused (timestamp_before_floor): a year-0001 timestamp is a
# producer's bug, and no billing period that old is ever invoiced. BILLING_EVENT_TIME_FLOOR
# (RFC 3339) moves it, e.g. for a backfill of older history.
DEFAULT_EVENT_TIME_FLOOR = "2000-01-01T00:00:00Z"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
_LEAP_SECOND = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:)60(?:\.\d+)?([Zz]|[+-]\d\d:?\d\d)$"
# A number written out (sign, digits, fraction, exponent): if it does not fit DECIMAL(38,10)
# (28 digits before the point) it is value_too_large, not non_numeric_value.
_WELL_FORMED_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# validated_rows' columns for the screen's verdict and the latest allowed event time, dropped
# before it returns.
_PASSES = "__passes_screen"
_LATEST = "__latest_allowed_ts"
_EVENT_TS_DTYPE = pl.Datetime("us", "UTC")

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

# (column, pandera check name) -> quarantine reason, in priority order.
REASON_PRIORITY: list[tuple[tuple[str, str], str]] = [
    (("parse_error", "no_parse_error"), "<parse_error>"),
    (("unique_id", "not_nullable"), "missing_id"),
    (("unique_id", "id_present"), "missing_id"),
    (("unique_id", "id_length"), "id_too_long"),
    (("account_id", "not_nullable"), "missing_account"),
    (("meter_code", "not_nullable"), "missing_meter"),
    (("value_text", "not_nullable"), "missing_value"),
    (("value", "fits_decimal"), "value_too_large"),
    (("value", "numeric"), "non_numeric_value"),
    (("value", "exact_to_10_places"), "value_too_precise"),
    (("value", "greater_than_or_equal_to(0)"), "negative_value"),
    (("ts_text", "not_nullable"), "missing_timestamp"),
    (("event_ts", "rfc3339_utc"), "bad_timestamp"),
    (("event_ts", "not_in_future"), "future_timestamp"),
    (("event_ts", "not_before_floor"), "timestamp_before_floor"),
]


def event_time_floor() -> datetime:
    """The earliest event time accepted (BILLING_EVENT_TIME_FLOOR, default 2000-01-01 UTC)."""
    text = os.environ.get("BILLING_EVENT_TIME_FLOOR") or DEFAULT_EVENT_TIME_FLOOR
    try:
        floor = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"BILLING_EVENT_TIME_FLOOR={text!r} is not an RFC 3339 time") from None
    return (floor if floor.tzinfo else floor.replace(tzinfo=UTC)).astimezone(UTC)


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


def _fits_decimal(data: pa.PolarsData) -> pl.LazyFrame:
    text = pl.col("value_text").str.strip_chars()
    return data.lazyframe.select(
        pl.col(data.key).is_not_null() | text.is_null() | ~text.str.contains(_WELL_FORMED_NUMBER)
    )


def usage_row_schema(
    *, latest_allowed_ts: datetime | pl.Expr, earliest_allowed_ts: datetime | None = None
) -> pa.DataFrameSchema:
    """Schema of a parsed landing frame; latest_allowed_ts = received_at + future tolerance
    (or an expression giving it, for validated_rows' screen),
    earliest_allowed_ts = the event time floor (default: `event_time_floor()`)."""
    earliest = earliest_allowed_ts or event_time_floor()
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
                    pa.Check(_fits_decimal, name="fits_decimal"),
                    pa.Check(_parsed_where_given("value_text"), name="numeric"),
                    pa.Check(_exact_to_10_places, name="exact_to_10_places"),
                    pa.Check.ge(0),
                ],
            ),
            "ts_text": pa.Column(pl.String),
            "event_ts": pa.Column(
                _EVENT_TS_DTYPE,
                nullable=True,
                checks=[
                    pa.Check(_parsed_where_given("ts_text"), name="rfc3339_utc"),
                    pa.Check(
                        lambda data: data.lazyframe.select(
                            pl.col(data.key).is_null() | (pl.col(data.key) <= latest_allowed_ts)
                        ),
                        name="not_in_future",
                    ),
                    pa.Check(
                        lambda data: data.lazyframe.select(
                            pl.col(data.key).is_null() | (pl.col(data.key) >= earliest)
                        ),
                        name="not_before_floor",
                    ),
                ],
            ),
        },
        strict=False,
    )


BLANK_IS_MISSING = ("account_id", "meter_code", "value_text", "ts_text")


def _given(column: str) -> pl.Expr:
    """The column, with empty text as null: missing, not malformed (a CSV field has no other
    way to be empty, and "" in JSON means the same)."""
    return pl.when(pl.col(column) != "").then(pl.col(column))


def _leap_second_kept(ts_text: pl.Expr) -> pl.Expr:
    """`...T23:59:60[.f]<offset>` as `...T23:59:59.999999<offset>` (only where the seconds are
    60: the regex runs on those few texts)."""
    return (
        pl.when(ts_text.str.slice(17, 2) == "60")
        .then(ts_text.str.replace(_LEAP_SECOND, "${1}59.999999${2}"))
        .otherwise(ts_text)
    )


def parse_raw_rows(raw: Frame) -> Frame:
    """Typed columns next to the raw text: value as DECIMAL(38,10), event_ts as UTC datetime
    (eager or lazy, as given)."""
    given, typed = _parsing()
    return raw.with_columns(given).with_columns(typed)


@functools.cache
def _parsing() -> tuple[list[pl.Expr], list[pl.Expr]]:
    """parse_raw_rows' expressions, built once: the API parses a group of requests every few
    milliseconds, and building them took about a sixth of a small group's validation."""
    given = [_given(column).alias(column) for column in BLANK_IS_MISSING]
    typed = [
        pl.col("value_text").str.strip_chars().cast(VALUE_DTYPE, strict=False).alias("value"),
        _leap_second_kept(pl.col("ts_text"))
        .str.to_datetime(format=TS_FORMAT, time_zone="UTC", time_unit="us", strict=False)
        .alias("event_ts"),
    ]
    return given, typed


def quarantine_reasons(
    parsed: pl.DataFrame,
    *,
    latest_allowed_ts: datetime,
    earliest_allowed_ts: datetime | None = None,
) -> pl.Series:
    """One reason per row (null = valid), from pandera's failure cases."""
    schema = usage_row_schema(
        latest_allowed_ts=latest_allowed_ts, earliest_allowed_ts=earliest_allowed_ts
    )
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


class _Unsupported(Exception):
    """The schema uses a pandera feature `passing_rows` does not evaluate."""


class _Selection:
    """What a check function returned from `_Frame.select`: its one boolean expression."""

    def __init__(self, expr: pl.Expr) -> None:
        self.expr = expr


class _Frame:
    """Stands in for the LazyFrame a check function receives, to read off the expression it
    selects (every check here is `data.lazyframe.select(<expr>)`), so that all checks run as one
    select. A check that does anything else with its frame is not evaluated here."""

    def select(self, *exprs: object, **named: object) -> _Selection:
        if named or len(exprs) != 1 or not isinstance(exprs[0], pl.Expr):
            raise _Unsupported("check selects something other than one expression")
        return _Selection(exprs[0])

    def __getattr__(self, name: str):
        raise _Unsupported(f"check uses LazyFrame.{name}")


def _check_passes(check: pa.Check, key: str) -> pl.Expr | bool:
    """One check of the schema as a boolean expression over the rows (a null is a failure,
    whatever the check's ignore_na: stricter than pandera, never looser)."""
    if check.element_wise or check.groupby is not None or check._check_fn is None:
        raise _Unsupported(check.name)
    out = check._check_fn(PolarsData(_Frame(), key), **check._check_kwargs)
    if isinstance(out, bool):
        return out
    if not isinstance(out, _Selection):
        raise _Unsupported(check.name)
    return out.expr.fill_null(False)


def passing_rows(
    parsed: pl.DataFrame,
    *,
    latest_allowed_ts: datetime,
    earliest_allowed_ts: datetime | None = None,
) -> pl.Series | None:
    """True for each row that passes every check of `usage_row_schema`, in one polars pass.

    Not a second copy of the rules: it runs the schema object's own check functions, plus the
    column rules pandera applies (presence, dtype, nullability), but in one collect instead of
    pandera's ~40. It is only ever used to skip pandera for rows it passes; it never names a
    reason. It is sound, not complete: a row it passes passes pandera (a null check result
    counts as a failure here), while a row it fails may still be valid, so failed rows go to
    `quarantine_reasons` for their reason. Returns None (validate everything with pandera) if
    the schema uses something not evaluated here (dataframe-level checks, unique, coerce,
    parsers, regex columns, element-wise or grouped checks, float columns...)."""
    passes = _screen(
        parsed.lazy(), latest_allowed_ts=latest_allowed_ts, earliest_allowed_ts=earliest_allowed_ts
    )
    if passes is None:
        return None
    return parsed.select(passes.alias("passes")).get_column("passes")


def _screen(
    parsed: pl.LazyFrame,
    *,
    latest_allowed_ts: datetime | pl.Expr,
    earliest_allowed_ts: datetime | None,
) -> pl.Expr | None:
    """`passing_rows` as one boolean expression over `parsed`, or None."""
    if get_config_context().use_narwhals_backend:
        return None  # pandera would run other implementations of the built-in checks
    schema = usage_row_schema(
        latest_allowed_ts=latest_allowed_ts, earliest_allowed_ts=earliest_allowed_ts
    )
    try:
        return _passes(schema, parsed)
    except _Unsupported:
        return None


def _passes(schema: pa.DataFrameSchema, parsed: pl.LazyFrame) -> pl.Expr:
    if (
        schema.checks
        or schema.parsers
        or schema.dtype is not None
        or schema.coerce
        or schema.unique
        or schema.strict
        or schema.ordered
        or schema.index is not None
        or schema.add_missing_columns
        or schema.drop_invalid_rows
    ):
        raise _Unsupported("schema options")
    dtypes = parsed.collect_schema()
    passes: list[pl.Expr] = []
    for name, column in schema.columns.items():
        if (
            column.regex
            or column.coerce
            or column.unique
            or column.parsers
            or column.drop_invalid_rows
            or column.default is not None
            or not column.required
        ):
            raise _Unsupported(f"column {name} options")
        if name not in dtypes:
            raise _Unsupported(f"missing column {name}")  # pandera names the error
        if dtypes[name].is_float():
            raise _Unsupported(f"float column {name}")  # pandera counts NaN as null
        if column.dtype is not None and not column.dtype.check(
            dtypes[name], PolarsData(parsed.select(name), name)
        ):
            raise _Unsupported(f"dtype of {name}")
        if not column.nullable:
            passes.append(pl.col(name).is_not_null())
        for check in column.checks:
            result = _check_passes(check, name)
            if result is False:
                return pl.lit(False)
            if result is not True:
                passes.append(result)
    return pl.all_horizontal(passes) if passes else pl.lit(True)


def validated_rows(
    raw: pl.DataFrame,
    *,
    latest_allowed_ts: datetime,
    earliest_allowed_ts: datetime | None = None,
) -> pl.DataFrame:
    """`parse_raw_rows(raw)` with a `reason` column (null = valid): the reasons of
    `quarantine_reasons`, faster when most rows are valid. Parsing and the screen
    (`passing_rows`) run as one polars query, on every core; rows the screen passes are valid;
    the others (usually none) go through pandera. Every check of the schema is row-wise (a row's
    outcome does not depend on other rows), which is what makes validating only those rows give
    them the same reasons.

    The screen is built once per raw schema and event time floor (`_screen_reading_latest`): the
    API validates a group of requests every few milliseconds, each with its own
    `latest_allowed_ts`, and building the screen cost about as much as running it."""
    earliest = earliest_allowed_ts or event_time_floor()
    lazy = parse_raw_rows(raw.lazy())
    passes = _screen_reading_latest(
        tuple(raw.schema.items()), earliest, get_config_context().use_narwhals_backend
    )
    window = {"latest_allowed_ts": latest_allowed_ts, "earliest_allowed_ts": earliest}
    if passes is None:
        parsed = lazy.collect()
        return parsed.with_columns(reason=quarantine_reasons(parsed, **window))
    screened = (
        lazy.with_columns(pl.lit(latest_allowed_ts, _EVENT_TS_DTYPE).alias(_LATEST))
        .with_columns(passes.alias(_PASSES), pl.lit(None, pl.String).alias("reason"))
        .drop(_LATEST)
        .collect()
    )
    passed = screened.drop_in_place(_PASSES)
    if passed.all():  # the usual case: no second query
        return screened
    failed = (~passed).arg_true()
    reasons = screened.get_column("reason").scatter(
        failed, quarantine_reasons(screened.drop("reason")[failed], **window)
    )
    return screened.with_columns(reasons)


@functools.lru_cache(maxsize=16)
def _screen_reading_latest(
    raw_schema: tuple[tuple[str, pl.DataType], ...], earliest: datetime, narwhals: bool
) -> pl.Expr | None:
    """The screen of `usage_row_schema` over frames parsed from `raw_schema`, with the
    latest allowed event time read from the column _LATEST instead of written into the
    expression, so that one expression serves every `latest_allowed_ts`. `narwhals` (pandera's
    backend setting, under which `_screen` gives None) is part of the cache key only."""
    del narwhals
    parsed = parse_raw_rows(pl.LazyFrame(schema=dict(raw_schema))).with_columns(
        pl.lit(None, _EVENT_TS_DTYPE).alias(_LATEST)
    )
    return _screen(parsed, latest_allowed_ts=pl.col(_LATEST), earliest_allowed_ts=earliest)
