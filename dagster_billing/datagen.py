"""Deterministic, vectorized sample usage-event generator.

Writes one NDJSON file per arrival day plus one CSV backfill per month. Values follow
per-meter shapes (bursty API calls, per-model tokens, hourly storage snapshots, ...),
account activity is Zipf-like, and the files carry the late arrivals, re-sent
duplicates and malformed rows that the ingest layer has to cope with.

Every value is generated as an integer in minor units and rendered with integer and
string operations only, so it is always an exact decimal literal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = ["MALFORMED_KINDS", "GenerationSummary", "generate_events"]

DEFAULT_START = date(2026, 1, 1)
MALFORMED_KINDS = (
    "missing_id",
    "unknown_meter",
    "unknown_account",
    "bad_timestamp",
    "non_numeric_value",
    "negative_value",
    "missing_value",
    "future_timestamp",
    "malformed_json",
)
CSV_COLUMNS = ("uniqueId", "account", "meter", "value", "ts", "properties")
# uniqueIds: "time-ordered" as the SDK makes them (UUIDv7 hex: the event's millisecond, then the
# event's 64-bit token in the random bits), or "random" (evt_ and the token's 16 hex digits).
ID_KINDS = ("time-ordered", "random")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"

DUPLICATE_RATE = 0.01
CONFLICT_RATE = 0.0002
MALFORMED_RATE = 0.003
LATE_RATE = 0.005
MAX_LATE_DAYS = 5
MIN_EVENTS = 100

ZIPF_EXPONENT = 1.1
METER_ADOPTION = 0.55
SEAT_POOL_MAX = 300
FUTURE_YEAR = 2099
RESEND_DELAY_WEIGHTS = (0.5, 0.25, 0.15, 0.1)
WEEKEND_FACTOR = 0.6
GROWTH_OVER_WINDOW = 0.3
DIURNAL = 0.3 + np.exp(-0.5 * ((np.arange(24) - 14.0) / 3.5) ** 2)
TIMEZONE_BY_CURRENCY = {"USD": -5, "EUR": 1, "GBP": 0, "JPY": 9}

BAD_ACCOUNTS = ("acct_nobody", "acct_deleted", "acct_test_sandbox", "acct_meridain")
BAD_METERS = ("api.reqests", "tokens.generatd", "gpu.seconds", "storage.gb_hour", "api_requests")
BAD_VALUES = ("twelve", "1.2.3", "N/A")
SAFE_ID = re.compile(r"[A-Za-z0-9_.:\-]+")

Sampler = Callable[[np.random.Generator, int], np.ndarray]
Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class GenerationSummary:
    files: list[str]
    total_rows: int
    valid_events: int
    duplicates: int
    conflicting_duplicates: int
    late_events: int
    malformed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "files": list(self.files),
            "total_rows": self.total_rows,
            "valid_events": self.valid_events,
            "duplicates": self.duplicates,
            "conflicting_duplicates": self.conflicting_duplicates,
            "late_events": self.late_events,
            "malformed": dict(self.malformed),
        }


def _lognormal(median: float, sigma: float) -> Sampler:
    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.maximum(1, np.rint(rng.lognormal(np.log(median), sigma, n))).astype(np.int64)

    return sample


def _bursty_calls(rng: np.random.Generator, n: int) -> np.ndarray:
    calls = rng.lognormal(np.log(6.0), 1.0, n)
    burst = rng.random(n) < 0.02
    calls[burst] *= rng.uniform(20.0, 200.0, int(burst.sum()))
    return np.maximum(1, np.rint(calls)).astype(np.int64)


def _small_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(rng.geometric(0.18, n), 60).astype(np.int64)


def _ones(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.ones(n, dtype=np.int64)


@dataclass(frozen=True)
class _MeterShape:
    share: float
    scale: int
    sample: Sampler
    prop_key: str | None = None
    prop_values: tuple[str, ...] = ()
    prop_weights: tuple[float, ...] = ()
    snapshot: bool = False
    per_user: bool = False


SHAPES: dict[str, _MeterShape] = {
    "api.requests": _MeterShape(0.45, 0, _bursty_calls),
    "tokens.generated": _MeterShape(
        0.20,
        0,
        _lognormal(700, 0.9),
        "model",
        ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b"),
        (0.45, 0.30, 0.15, 0.10),
    ),
    "compute.gpu_seconds": _MeterShape(
        0.07,
        3,
        _lognormal(40_000, 1.1),
        "region",
        ("us-east-1", "eu-west-1", "ap-northeast-1"),
        (0.55, 0.30, 0.15),
    ),
    "storage.gb_hours": _MeterShape(0.03, 2, _ones, snapshot=True),
    "seats.active": _MeterShape(0.05, 0, _ones, "user_id", per_user=True),
    "messages.delivered": _MeterShape(0.08, 0, _ones),
    "builds.completed": _MeterShape(0.02, 0, _ones),
    "minutes.transcribed": _MeterShape(0.03, 2, _lognormal(350, 0.9)),
    "pipeline.rows_processed": _MeterShape(0.04, 0, _lognormal(200_000, 1.6)),
    "checks.executed": _MeterShape(0.03, 0, _small_counts),
}
GENERIC_SHAPE = _MeterShape(0.02, 0, _small_counts)
ALWAYS_ON_METER = "api.requests"


@dataclass(frozen=True)
class _Catalog:
    accounts: tuple[str, ...]
    currencies: tuple[str, ...]
    meters: tuple[str, ...]
    shapes: tuple[_MeterShape, ...]


@dataclass(frozen=True)
class _Window:
    start: date
    days: int

    @property
    def start_ms(self) -> int:
        return (self.start - date(1970, 1, 1)).days * DAY_MS

    @property
    def last(self) -> int:
        return self.days - 1

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def months(self) -> list[str]:
        return sorted({f"{self.day(i):%Y-%m}" for i in range(self.days)})

    def month_of_day(self) -> np.ndarray:
        months = self.months()
        return np.array([months.index(f"{self.day(i):%Y-%m}") for i in range(self.days)])

    def month_starts(self) -> list[int]:
        return [i for i in range(1, self.days) if self.day(i).day == 1]

    def day_weights(self) -> np.ndarray:
        weights = np.array(
            [
                (WEEKEND_FACTOR if self.day(i).weekday() >= 5 else 1.0)
                * (1.0 + GROWTH_OVER_WINDOW * i / self.days)
                for i in range(self.days)
            ]
        )
        return weights / weights.sum()


@dataclass(frozen=True)
class _Population:
    weight: np.ndarray
    uses: np.ndarray
    tz_hours: np.ndarray
    seat_pool: np.ndarray


@dataclass(frozen=True)
class _Properties:
    fragments: pl.Series
    objects: pl.Series
    meter_offset: np.ndarray
    user_offset: np.ndarray


@dataclass(frozen=True)
class _Tables:
    accounts: pl.Series
    meters: pl.Series
    heads: pl.Series
    divisors: pl.Series
    props: _Properties
    time_ordered_ids: bool


@dataclass(frozen=True)
class _Counts:
    valid: int
    duplicates: int
    conflicts: int
    malformed: dict[str, int]


def generate_events(
    out_dir: Path,
    *,
    events: int,
    seed: int = 7,
    start: date = DEFAULT_START,
    days: int = 59,
    accounts_csv: Path,
    meters_csv: Path,
    csv_share: float = 0.05,
    ids: str = "time-ordered",
) -> GenerationSummary:
    """Write ``events`` rows of sample usage into ``out_dir`` and describe what was written.
    ``ids`` is one of ID_KINDS."""
    _check_arguments(events, days, csv_share)
    if ids not in ID_KINDS:
        raise ValueError(f"ids must be one of {ID_KINDS}, got {ids!r}")
    catalog = _load_catalog(Path(accounts_csv), Path(meters_csv))
    window = _Window(start, days)
    counts = _plan_counts(events)
    rng = np.random.default_rng(seed)
    population = _population(rng, catalog)
    tables = _tables(catalog, population, time_ordered_ids=ids == "time-ordered")

    valid = _sample_valid(rng, catalog, population, tables.props, window, counts.valid)
    valid["token"] = _tokens(np.arange(counts.valid), seed)
    day = (valid["ts_ms"] - window.start_ms) // DAY_MS
    to_csv = rng.random(counts.valid) < csv_share
    file = _delay_some(rng, day, ~to_csv, window)
    resends = _resends(rng, valid, file, ~to_csv, counts, window)
    malformed = _malformed(rng, valid, counts, seed, window, csv_share, catalog, tables)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ndjson_ok = ~to_csv
    valid_ndjson = _take(valid, ndjson_ok) | {
        "file": file[ndjson_ok],
        "tail": file[ndjson_ok] > day[ndjson_ok],
    }
    files = _write_ndjson(out, window, tables, valid_ndjson, resends, malformed)
    if csv_share > 0:
        csv_rows = _take(valid, to_csv) | {"day": day[to_csv]}
        files += _write_backfill(out, window, tables, csv_rows, malformed)

    return GenerationSummary(
        files=sorted(files),
        total_rows=events,
        valid_events=counts.valid,
        duplicates=counts.duplicates,
        conflicting_duplicates=counts.conflicts,
        late_events=int(np.count_nonzero(file[ndjson_ok] > day[ndjson_ok])),
        malformed=dict(counts.malformed),
    )


def _check_arguments(events: int, days: int, csv_share: float) -> None:
    if events < MIN_EVENTS:
        raise ValueError(f"events must be at least {MIN_EVENTS}, got {events}")
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    if not 0.0 <= csv_share < 1.0:
        raise ValueError(f"csv_share must be in [0, 1), got {csv_share}")


def _load_catalog(accounts_csv: Path, meters_csv: Path) -> _Catalog:
    accounts = pl.read_csv(accounts_csv, infer_schema=False)
    meters = pl.read_csv(meters_csv, infer_schema=False)
    account_ids = tuple(accounts["account_id"].to_list())
    meter_codes = tuple(meters["meter_code"].to_list())
    for name in (*account_ids, *meter_codes):
        if not SAFE_ID.fullmatch(name or ""):
            raise ValueError(f"identifier {name!r} is not safe to embed in JSON unescaped")
    if not account_ids or not meter_codes:
        raise ValueError("accounts and meters must not be empty")
    currencies = tuple(accounts["currency"].fill_null("").to_list())
    shapes = tuple(SHAPES.get(code, GENERIC_SHAPE) for code in meter_codes)
    return _Catalog(account_ids, currencies, meter_codes, shapes)


def _apportion(total: int, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def _plan_counts(events: int) -> _Counts:
    kinds = len(MALFORMED_KINDS)
    malformed = max(kinds, round(events * MALFORMED_RATE))
    per_kind = 1 + _apportion(malformed - kinds, np.ones(kinds))
    duplicates = round(events * DUPLICATE_RATE)
    conflicts = max(1, round(events * CONFLICT_RATE))
    return _Counts(
        valid=events - malformed - duplicates - conflicts,
        duplicates=duplicates,
        conflicts=conflicts,
        malformed={kind: int(n) for kind, n in zip(MALFORMED_KINDS, per_kind, strict=True)},
    )


def _tokens(index: np.ndarray, seed: int) -> np.ndarray:
    """Bijective splitmix64 finaliser: distinct indices always give distinct tokens."""
    key = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64)
    with np.errstate(over="ignore"):
        x = index.astype(np.uint64) + key
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _population(rng: np.random.Generator, catalog: _Catalog) -> _Population:
    n_accounts, n_meters = len(catalog.accounts), len(catalog.meters)
    rank = rng.permutation(n_accounts)
    weight = 1.0 / (rank + 1.0) ** ZIPF_EXPONENT
    weight /= weight.sum()
    uses = rng.random((n_accounts, n_meters)) < METER_ADOPTION
    if ALWAYS_ON_METER in catalog.meters:
        uses[:, catalog.meters.index(ALWAYS_ON_METER)] = True
    biggest = np.argsort(-weight, kind="stable")[: min(2, n_accounts)]
    for meter in range(n_meters):
        if uses[:, meter].sum() < len(biggest):
            uses[biggest, meter] = True
    tz_hours = np.array([TIMEZONE_BY_CURRENCY.get(c, 0) for c in catalog.currencies])
    seat_pool = np.clip(np.rint(SEAT_POOL_MAX * weight / weight.max()), 3, SEAT_POOL_MAX)
    return _Population(weight, uses, tz_hours, seat_pool.astype(np.int64))


def _json_object(key: str, value: str) -> str:
    return f'{{"{key}":"{value}"}}'


def _properties(catalog: _Catalog, population: _Population) -> _Properties:
    objects: list[str | None] = [None]
    meter_offset = np.zeros(len(catalog.meters), dtype=np.int64)
    for meter, shape in enumerate(catalog.shapes):
        if shape.prop_key and shape.prop_values:
            meter_offset[meter] = len(objects)
            objects += [_json_object(shape.prop_key, v) for v in shape.prop_values]
    user_offset = np.zeros(len(catalog.accounts), dtype=np.int64)
    for account, name in enumerate(catalog.accounts):
        user_offset[account] = len(objects)
        short = name.removeprefix("acct_")
        pool = int(population.seat_pool[account])
        objects += [_json_object("user_id", f"u_{short}_{n}") for n in range(pool)]
    fragments = ["" if o is None else f',"properties":{o}' for o in objects]
    return _Properties(
        fragments=pl.Series(fragments, dtype=pl.String),
        objects=pl.Series(objects, dtype=pl.String),
        meter_offset=meter_offset,
        user_offset=user_offset,
    )


def _tables(catalog: _Catalog, population: _Population, *, time_ordered_ids: bool) -> _Tables:
    heads = [
        f'","account":"{account}","meter":"{meter}","value":'
        for account in catalog.accounts
        for meter in catalog.meters
    ]
    return _Tables(
        accounts=pl.Series(catalog.accounts, dtype=pl.String),
        meters=pl.Series(catalog.meters, dtype=pl.String),
        heads=pl.Series(heads, dtype=pl.String),
        divisors=pl.Series([10**s.scale for s in catalog.shapes], dtype=pl.Int64),
        props=_properties(catalog, population),
        time_ordered_ids=time_ordered_ids,
    )


def _meter_counts(
    n: int, catalog: _Catalog, population: _Population, window: _Window
) -> np.ndarray:
    """Per-meter event counts; snapshot meters are capped at one per holder per hour."""
    shares = np.array([s.share for s in catalog.shapes])
    counts = _apportion(n, shares)
    hours = window.days * 24
    caps = np.array(
        [
            int(population.uses[:, m].sum()) * hours if s.snapshot else n
            for m, s in enumerate(catalog.shapes)
        ]
    )
    capped = counts > caps
    if capped.any():
        rest = np.where(capped, 0.0, shares)
        counts = np.where(capped, caps, _apportion(n - int(caps[capped].sum()), rest))
    return counts


def _sample_valid(
    rng: np.random.Generator,
    catalog: _Catalog,
    population: _Population,
    props: _Properties,
    window: _Window,
    n: int,
) -> Columns:
    parts: list[Columns] = []
    for meter, count in enumerate(_meter_counts(n, catalog, population, window)):
        shape = catalog.shapes[meter]
        if count == 0:
            continue
        if shape.snapshot:
            part = _storage_snapshots(rng, meter, int(count), population, window)
        else:
            part = _usage(rng, meter, int(count), shape, population, props, window)
        parts.append(part | {"meter_ix": np.full(int(count), meter, dtype=np.uint8)})
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _usage(
    rng: np.random.Generator,
    meter: int,
    n: int,
    shape: _MeterShape,
    population: _Population,
    props: _Properties,
    window: _Window,
) -> Columns:
    users = np.flatnonzero(population.uses[:, meter])
    p = population.weight[users] / population.weight[users].sum()
    acct = rng.choice(users, size=n, p=p)
    day = rng.choice(window.days, size=n, p=window.day_weights())
    local_hour = rng.choice(24, size=n, p=DIURNAL / DIURNAL.sum())
    hour = (local_hour - population.tz_hours[acct]) % 24
    ts_ms = window.start_ms + day * DAY_MS + hour * HOUR_MS + rng.integers(0, HOUR_MS, n)
    return {
        "acct": acct.astype(np.uint16),
        "ts_ms": ts_ms.astype(np.int64),
        "units": shape.sample(rng, n),
        "prop": _sample_props(rng, meter, acct, shape, population, props),
    }


def _sample_props(
    rng: np.random.Generator,
    meter: int,
    acct: np.ndarray,
    shape: _MeterShape,
    population: _Population,
    props: _Properties,
) -> np.ndarray:
    n = len(acct)
    if shape.per_user:
        skewed = rng.random(n) ** 1.7
        user = (skewed * population.seat_pool[acct]).astype(np.int64)
        return (props.user_offset[acct] + user).astype(np.int32)
    if shape.prop_values:
        weights = np.asarray(shape.prop_weights or np.ones(len(shape.prop_values)))
        pick = rng.choice(len(shape.prop_values), size=n, p=weights / weights.sum())
        return (props.meter_offset[meter] + pick).astype(np.int32)
    return np.zeros(n, dtype=np.int32)


def _storage_snapshots(
    rng: np.random.Generator, meter: int, n: int, population: _Population, window: _Window
) -> Columns:
    holders = np.flatnonzero(population.uses[:, meter])
    per_holder = _apportion(n, np.ones(len(holders)))
    acct = np.repeat(holders, per_holder)
    first = np.repeat(np.cumsum(per_holder) - per_holder, per_holder)
    slot = np.arange(n) - first
    interval = window.days * DAY_MS / np.repeat(np.maximum(per_holder, 1), per_holder)
    phase = rng.uniform(0.1, 0.9, len(population.weight))[acct]
    jitter = rng.uniform(-0.05, 0.05, n) * np.minimum(interval, HOUR_MS)
    offset = np.clip((slot + phase) * interval + jitter, 0, window.days * DAY_MS - 1)
    base_gb = rng.lognormal(np.log(250.0), 1.2, len(population.weight)) * (
        1.0 + 20.0 * population.weight
    )
    growth = rng.uniform(0.05, 0.6, len(population.weight))
    held = base_gb[acct] * (1.0 + growth[acct] * offset / (window.days * DAY_MS))
    noisy = held * (1.0 + rng.normal(0.0, 0.004, n))
    return {
        "acct": acct.astype(np.uint16),
        "ts_ms": (window.start_ms + offset.astype(np.int64)).astype(np.int64),
        "units": np.maximum(1, np.rint(noisy * 100)).astype(np.int64),
        "prop": np.zeros(n, dtype=np.int32),
    }


def _take(columns: Columns, index: np.ndarray) -> Columns:
    return {key: values[index] for key, values in columns.items()}


def _delay_some(
    rng: np.random.Generator, day: np.ndarray, eligible: np.ndarray, window: _Window
) -> np.ndarray:
    """Arrival day per event: the ts day, or 1..5 days later for a late share."""
    file = day.copy()
    candidates = np.flatnonzero(eligible & (day < window.last))
    n_late = min(candidates.size, round(LATE_RATE * int(eligible.sum())))
    chosen = rng.choice(candidates, size=n_late, replace=False)
    delay = rng.integers(1, MAX_LATE_DAYS + 1, n_late)
    file[chosen] = np.minimum(day[chosen] + delay, window.last)
    for boundary in window.month_starts():
        if np.any((file >= boundary) & (day < boundary)):
            continue
        pool = np.flatnonzero(eligible & (day == boundary - 1))
        if pool.size:
            pick = pool[rng.integers(pool.size)]
            delay_one = int(rng.integers(1, MAX_LATE_DAYS + 1))
            file[pick] = min(day[pick] + delay_one, window.last)
    return file


def _resends(
    rng: np.random.Generator,
    valid: Columns,
    file: np.ndarray,
    eligible: np.ndarray,
    counts: _Counts,
    window: _Window,
) -> Columns:
    """Exact re-sends followed by re-sends of the same uniqueId with a changed value."""
    total = counts.duplicates + counts.conflicts
    pool = np.flatnonzero(eligible) if eligible.any() else np.arange(len(file))
    source = rng.choice(pool, size=total, replace=pool.size < total)
    delay = rng.choice(len(RESEND_DELAY_WEIGHTS), size=total, p=RESEND_DELAY_WEIGHTS)
    rows = _take(valid, source)
    conflict = np.arange(total) >= counts.duplicates
    units = rows["units"]
    rows["units"] = np.where(conflict, units + np.maximum(1, units // 4), units)
    rows["file"] = np.minimum(file[source] + delay, window.last)
    rows["tail"] = np.ones(total, dtype=bool)
    return rows


def _malformed(
    rng: np.random.Generator,
    valid: Columns,
    counts: _Counts,
    seed: int,
    window: _Window,
    csv_share: float,
    catalog: _Catalog,
    tables: _Tables,
) -> pl.DataFrame:
    per_kind = list(counts.malformed.values())
    n = sum(per_kind)
    kind = np.repeat(np.arange(len(MALFORMED_KINDS)), per_kind)[rng.permutation(n)]
    rows = _take(valid, rng.integers(0, counts.valid, n))
    rows["token"] = _tokens(counts.valid + np.arange(n), seed)
    frame = pl.DataFrame(
        rows
        | {
            "kind": np.array(MALFORMED_KINDS)[kind],
            "variant": rng.integers(0, 1 << 30, n),
            "cut": rng.uniform(0.25, 0.9, n),
            "to_csv": (kind != MALFORMED_KINDS.index("malformed_json"))
            & (rng.random(n) < csv_share),
            "day": (rows["ts_ms"] - window.start_ms) // DAY_MS,
        }
    )
    fields = frame.with_columns(
        uid=_ids(frame["token"].to_numpy(), frame["ts_ms"].to_numpy(), tables)
    ).with_columns(_field_exprs(tables))
    return _corrupt(fields, catalog, window)


def _choose(options: Sequence[str | pl.Expr], variant: pl.Expr) -> pl.Expr:
    exprs = [pl.lit(o) if isinstance(o, str) else o for o in options]
    chosen = exprs[-1]
    for position in range(len(exprs) - 2, -1, -1):
        chosen = pl.when(variant % len(exprs) == position).then(exprs[position]).otherwise(chosen)
    return chosen


def _corrupt(frame: pl.DataFrame, catalog: _Catalog, window: _Window) -> pl.DataFrame:
    kind, variant = pl.col("kind"), pl.col("variant")
    year = window.start.year
    future_shift = (date(FUTURE_YEAR, 1, 1) - window.start).days * DAY_MS
    bad_ts = (f"{year}-13-45T99:00:00Z", "yesterday", "not-a-timestamp", f"{year}-02-30T25:61:00Z")
    bad_accounts = [a for a in BAD_ACCOUNTS if a not in catalog.accounts]
    bad_meters = [m for m in BAD_METERS if m not in catalog.meters]
    bad_values = [pl.concat_str([pl.col("value"), pl.lit("abc")]), *BAD_VALUES]
    null = pl.lit(None, dtype=pl.String)
    corrupted = frame.with_columns(
        uniqueId=pl.when(kind == "missing_id")
        .then(pl.when(variant % 2 == 0).then(null).otherwise(pl.lit("")))
        .otherwise(pl.col("uniqueId")),
        account=pl.when(kind == "unknown_account")
        .then(_choose(bad_accounts, variant))
        .otherwise(pl.col("account")),
        meter=pl.when(kind == "unknown_meter")
        .then(_choose(bad_meters, variant))
        .otherwise(pl.col("meter")),
        ts=pl.when(kind == "bad_timestamp")
        .then(_choose(bad_ts, variant))
        .when(kind == "future_timestamp")
        .then(_ts_text(pl.col("ts_ms") + future_shift))
        .otherwise(pl.col("ts")),
        value=pl.when(kind == "non_numeric_value")
        .then(_choose(bad_values, variant))
        .when(kind == "negative_value")
        .then(pl.concat_str([pl.lit("-"), pl.col("value")]))
        .when(kind == "missing_value")
        .then(null)
        .otherwise(pl.col("value")),
    ).with_columns(
        value_json=pl.when(kind == "non_numeric_value")
        .then(pl.concat_str([pl.lit('"'), pl.col("value"), pl.lit('"')]))
        .when((kind == "missing_value") & (variant % 2 == 1))
        .then(pl.lit("null"))
        .otherwise(pl.col("value"))
    )
    line = _json_line()
    cut = (line.str.len_bytes() * pl.col("cut")).cast(pl.Int64)
    return corrupted.with_columns(
        line=pl.when(kind == "malformed_json").then(line.str.slice(0, cut)).otherwise(line),
        uniqueId=pl.when(pl.col("uniqueId") == "").then(null).otherwise(pl.col("uniqueId")),
    )


_HEX_PAIRS = np.array(
    [int.from_bytes(f"{i:02x}".encode(), "little") for i in range(256)], dtype="<u2"
)


def _ids(tokens: np.ndarray, ts_ms: np.ndarray, tables: _Tables) -> pl.Series:
    """The events' uniqueIds (ID_KINDS). A time-ordered id is laid out as sdk.new_unique_id's
    UUIDv7: 48 bits of the event's millisecond, version 7, then the token's top 12 bits and, after
    the variant bits, its low 52 (distinct tokens, distinct ids)."""
    tokens = np.asarray(tokens, dtype=np.uint64)
    if not tables.time_ordered_ids:
        prefix = np.frombuffer(b"evt_" * len(tokens), dtype=np.uint8).reshape(-1, 4)
        return _fixed_width_strings(np.hstack([prefix, _hex_digits(tokens)]))
    ms = np.asarray(ts_ms).astype(np.uint64) & np.uint64((1 << 48) - 1)
    high = ms << np.uint64(16) | np.uint64(0x7000) | tokens >> np.uint64(52)
    low = np.uint64(0b10 << 62) | tokens & np.uint64((1 << 52) - 1)
    return _fixed_width_strings(np.hstack([_hex_digits(high), _hex_digits(low)]))


def _hex_digits(values: np.ndarray) -> np.ndarray:
    """Each 64-bit value as a row of 16 lowercase hex digits (ASCII bytes)."""
    pairs = _HEX_PAIRS[values.astype(">u8").view(np.uint8).reshape(-1, 8)]
    return pairs.view(np.uint8).reshape(len(values), 16)


def _fixed_width_strings(chars: np.ndarray) -> pl.Series:
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int64)
    data = np.ascontiguousarray(chars).reshape(-1)
    array = pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return pl.Series("uid", array, dtype=pl.String)


def _gather(table: pl.Series, index: pl.Expr) -> pl.Expr:
    return pl.lit(table).gather(index)


def _ts_text(ts_ms: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ts_ms, time_unit="ms").dt.to_string(TS_FORMAT)


def _value_text(tables: _Tables) -> pl.Expr:
    units = pl.col("units")
    divisor = _gather(tables.divisors, pl.col("meter_ix"))
    fraction = pl.concat_str(
        [pl.lit("."), (units % divisor + divisor).cast(pl.String).str.slice(1)]
    )
    return pl.concat_str(
        [
            (units // divisor).cast(pl.String),
            pl.when(divisor > 1).then(fraction).otherwise(pl.lit("")),
        ]
    )


def _line_expr(tables: _Tables) -> pl.Expr:
    combo = pl.col("acct").cast(pl.Int64) * len(tables.meters) + pl.col("meter_ix").cast(pl.Int64)
    return pl.concat_str(
        [
            pl.lit('{"uniqueId":"'),
            pl.col("uid"),
            _gather(tables.heads, combo),
            _value_text(tables),
            pl.lit(',"ts":"'),
            _ts_text(pl.col("ts_ms")),
            pl.lit('"'),
            _gather(tables.props.fragments, pl.col("prop")),
            pl.lit("}"),
        ]
    )


def _field_exprs(tables: _Tables) -> list[pl.Expr]:
    return [
        pl.col("uid").alias("uniqueId"),
        _gather(tables.accounts, pl.col("acct")).alias("account"),
        _gather(tables.meters, pl.col("meter_ix")).alias("meter"),
        _value_text(tables).alias("value"),
        _ts_text(pl.col("ts_ms")).alias("ts"),
        _gather(tables.props.objects, pl.col("prop")).alias("properties"),
    ]


def _json_line() -> pl.Expr:
    def quoted(key: str, column: str) -> pl.Expr:
        return pl.concat_str([pl.lit(f'"{key}":"'), pl.col(column), pl.lit('"')])

    def raw(key: str, column: str) -> pl.Expr:
        return pl.concat_str([pl.lit(f'"{key}":'), pl.col(column)])

    body = pl.concat_str(
        [
            quoted("uniqueId", "uniqueId"),
            quoted("account", "account"),
            quoted("meter", "meter"),
            raw("value", "value_json"),
            quoted("ts", "ts"),
            raw("properties", "properties"),
        ],
        separator=",",
        ignore_nulls=True,
    )
    return pl.concat_str([pl.lit("{"), body, pl.lit("}")])


PLAN_SCHEMA = {
    "file": pl.Int32,
    "tail": pl.Boolean,
    "ts_ms": pl.Int64,
    "token": pl.UInt64,
    "acct": pl.UInt16,
    "meter_ix": pl.UInt8,
    "units": pl.Int64,
    "prop": pl.Int32,
    "mal": pl.Int32,
}


def _plan_frame(columns: Columns) -> pl.DataFrame:
    n = len(columns["ts_ms"])
    columns = {"mal": np.full(n, -1, dtype=np.int32)} | columns
    return pl.DataFrame({name: columns[name] for name in PLAN_SCHEMA}, schema=PLAN_SCHEMA)


def _write_ndjson(
    out: Path,
    window: _Window,
    tables: _Tables,
    valid: Columns,
    resends: Columns,
    malformed: pl.DataFrame,
) -> list[str]:
    broken = malformed.filter(~pl.col("to_csv"))
    broken_rows = {
        name: broken[name].to_numpy()
        for name in ("ts_ms", "token", "acct", "meter_ix", "units", "prop")
    } | {
        "file": broken["day"].to_numpy(),
        "tail": np.zeros(broken.height, dtype=bool),
        "mal": np.arange(broken.height, dtype=np.int32),
    }
    plan = pl.concat([_plan_frame(valid), _plan_frame(resends), _plan_frame(broken_rows)])
    plan = plan.sort(["file", "tail", "ts_ms", "token"], maintain_order=True)
    sizes = np.bincount(plan["file"].to_numpy(), minlength=window.days)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    names = [f"events_{window.day(i).isoformat()}.ndjson" for i in range(window.days)]
    lines = broken["line"]

    def write(i: int) -> None:
        chunk = plan.slice(int(offsets[i]), int(sizes[i]))
        _write_day(out / names[i], chunk, tables, lines)

    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, range(window.days)))
    return names


def _write_day(path: Path, chunk: pl.DataFrame, tables: _Tables, broken_lines: pl.Series) -> None:
    chunk = chunk.with_columns(
        uid=_ids(chunk["token"].to_numpy(), chunk["ts_ms"].to_numpy(), tables)
    )
    lines = chunk.select(_line_expr(tables).alias("line")).to_series()
    mal = chunk["mal"].to_numpy()
    positions = np.flatnonzero(mal >= 0)
    if positions.size:
        lines = lines.scatter(positions, broken_lines.gather(mal[positions]))
    pl.DataFrame({"line": lines}).write_csv(path, include_header=False, quote_style="never")


def _write_backfill(
    out: Path, window: _Window, tables: _Tables, rows: Columns, malformed: pl.DataFrame
) -> list[str]:
    month_of_day = window.month_of_day()
    numeric = pl.DataFrame(
        {k: rows[k] for k in ("ts_ms", "token", "acct", "meter_ix", "units", "prop")}
    )
    good = numeric.with_columns(
        uid=_ids(rows["token"], rows["ts_ms"], tables),
        month=pl.Series(month_of_day[rows["day"]], dtype=pl.Int64),
    ).with_columns(_field_exprs(tables))
    bad = malformed.filter(pl.col("to_csv"))
    bad = bad.with_columns(month=pl.Series(month_of_day[bad["day"].to_numpy()], dtype=pl.Int64))
    keys = ["month", "ts_ms", "token"]
    combined = pl.concat([good.select(*keys, *CSV_COLUMNS), bad.select(*keys, *CSV_COLUMNS)]).sort(
        keys, maintain_order=True
    )
    names = []
    for index, month in enumerate(window.months()):
        name = f"backfill_{month}.csv"
        combined.filter(pl.col("month") == index).select(CSV_COLUMNS).write_csv(out / name)
        names.append(name)
    return names
