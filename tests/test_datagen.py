from __future__ import annotations

import csv
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson
import pytest

from dagster_billing.datagen import MALFORMED_KINDS, GenerationSummary, generate_events

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
ACCOUNTS_CSV = SEEDS / "accounts.csv"
METERS_CSV = SEEDS / "meters.csv"
EVENTS = 20_000
CSV_HEADER = ["uniqueId", "account", "meter", "value", "ts", "properties"]
TS_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
VALUE_LITERAL = re.compile(r'"value":([^,}]*)')
EXACT_DECIMAL = re.compile(r"(0|[1-9]\d*)(\.\d+)?")
SCALES = {"compute.gpu_seconds": 3, "storage.gb_hours": 2, "minutes.transcribed": 2}


def _column(path: Path, name: str) -> set[str]:
    with path.open(newline="") as handle:
        return {row[name] for row in csv.DictReader(handle)}


ACCOUNTS = _column(ACCOUNTS_CSV, "account_id")
METERS = _column(METERS_CSV, "meter_code")


def _generate(out_dir: Path, **overrides: object) -> GenerationSummary:
    arguments: dict = {"events": EVENTS, "accounts_csv": ACCOUNTS_CSV, "meters_csv": METERS_CSV}
    return generate_events(out_dir, **(arguments | overrides))


@dataclass
class Row:
    file: str
    record: dict | None
    value_literal: str | None = None


@dataclass
class Tally:
    total: int = 0
    valid: dict[str, Row] = field(default_factory=dict)
    duplicates: int = 0
    conflicts: int = 0
    malformed: Counter = field(default_factory=Counter)
    malformed_ids: set[str] = field(default_factory=set)
    rows_by_file: dict[str, list[Row]] = field(default_factory=dict)


def _parse_ts(text: object) -> datetime | None:
    if not isinstance(text, str) or not TS_PATTERN.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None


def _number(value: object, from_csv: bool) -> Decimal | None:
    if isinstance(value, bool) or (isinstance(value, str) and not from_csv):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _classify(record: dict, from_csv: bool) -> str | None:
    ts = _parse_ts(record.get("ts"))
    value = record.get("value")
    checks = [
        ("missing_id", not record.get("uniqueId")),
        ("unknown_meter", record.get("meter") not in METERS),
        ("unknown_account", record.get("account") not in ACCOUNTS),
        ("bad_timestamp", ts is None),
        ("future_timestamp", ts is not None and ts.year >= 2099),
        ("missing_value", value is None or value == ""),
    ]
    for kind, failed in checks:
        if failed:
            return kind
    number = _number(value, from_csv)
    if number is None:
        return "non_numeric_value"
    if number < 0:
        return "negative_value"
    return None


def _body(record: dict, literal: str) -> tuple:
    return (
        record["account"],
        record["meter"],
        literal,
        record["ts"],
        orjson.dumps(record.get("properties") or {}, option=orjson.OPT_SORT_KEYS),
    )


def _csv_record(row: dict[str, str]) -> dict:
    record: dict = dict(row)
    record["properties"] = orjson.loads(row["properties"]) if row["properties"] else {}
    return record


def _read_rows(out_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(out_dir.glob("events_*.ndjson")):
        for line in path.read_text().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                rows.append(Row(path.name, None))
                continue
            match = VALUE_LITERAL.search(line)
            rows.append(Row(path.name, record, match.group(1) if match else None))
    for path in sorted(out_dir.glob("backfill_*.csv")):
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == CSV_HEADER
            rows += [Row(path.name, _csv_record(r), r["value"]) for r in reader]
    return rows


def _tally(out_dir: Path) -> Tally:
    tally = Tally()
    for row in _read_rows(out_dir):
        tally.total += 1
        tally.rows_by_file.setdefault(row.file, []).append(row)
        if row.record is None:
            tally.malformed["malformed_json"] += 1
            continue
        kind = _classify(row.record, row.file.endswith(".csv"))
        if kind is not None:
            tally.malformed[kind] += 1
            if row.record.get("uniqueId"):
                tally.malformed_ids.add(row.record["uniqueId"])
            continue
        uid = row.record["uniqueId"]
        first = tally.valid.get(uid)
        if first is None:
            tally.valid[uid] = row
        elif _body(first.record, first.value_literal) == _body(row.record, row.value_literal):
            tally.duplicates += 1
        else:
            tally.conflicts += 1
    return tally


def _file_day(name: str) -> date:
    return date.fromisoformat(name.removeprefix("events_").removesuffix(".ndjson"))


def _ts_day(row: Row) -> date:
    return date.fromisoformat(row.record["ts"][:10])


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out_dir = tmp_path_factory.mktemp("events")
    return out_dir, _generate(out_dir)


@pytest.fixture(scope="module")
def tally(generated: tuple[Path, GenerationSummary]) -> Tally:
    return _tally(generated[0])


def test_same_arguments_give_identical_bytes(
    generated: tuple[Path, GenerationSummary], tmp_path: Path
) -> None:
    out_dir, summary = generated
    again = _generate(tmp_path / "again")
    assert again == summary
    for name in summary.files:
        assert (out_dir / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_other_seed_gives_other_events(
    generated: tuple[Path, GenerationSummary], tmp_path: Path
) -> None:
    out_dir, summary = generated
    other = _generate(tmp_path, seed=8)
    name = summary.files[-1]
    assert (out_dir / name).read_bytes() != (tmp_path / name).read_bytes()
    assert other.total_rows == summary.total_rows


def test_files_cover_every_day_and_month(generated: tuple[Path, GenerationSummary]) -> None:
    out_dir, summary = generated
    days = [f"events_2026-01-{d:02d}.ndjson" for d in range(1, 32)]
    days += [f"events_2026-02-{d:02d}.ndjson" for d in range(1, 29)]
    expected = sorted([*days, "backfill_2026-01.csv", "backfill_2026-02.csv"])
    assert summary.files == expected
    assert sorted(p.name for p in out_dir.iterdir()) == expected


def test_summary_arithmetic(generated: tuple[Path, GenerationSummary]) -> None:
    _, summary = generated
    parts = (
        summary.valid_events
        + summary.duplicates
        + summary.conflicting_duplicates
        + sum(summary.malformed.values())
    )
    assert summary.total_rows == parts
    assert abs(summary.total_rows - EVENTS) <= 0.03 * EVENTS
    assert summary.to_dict()["malformed"] == summary.malformed


def test_summary_matches_file_contents(
    generated: tuple[Path, GenerationSummary], tally: Tally
) -> None:
    _, summary = generated
    assert tally.total == summary.total_rows
    assert len(tally.valid) == summary.valid_events
    assert tally.duplicates == summary.duplicates
    assert tally.conflicts == summary.conflicting_duplicates
    assert dict(tally.malformed) == {k: v for k, v in summary.malformed.items() if v}
    assert not tally.malformed_ids & tally.valid.keys()


def test_rates_are_realistic(generated: tuple[Path, GenerationSummary]) -> None:
    _, summary = generated
    assert 0.008 * EVENTS <= summary.duplicates <= 0.012 * EVENTS
    assert 1 <= summary.conflicting_duplicates <= 0.001 * EVENTS
    assert 0.002 * EVENTS <= sum(summary.malformed.values()) <= 0.004 * EVENTS
    assert 0.003 * EVENTS <= summary.late_events <= 0.007 * EVENTS


def test_every_malformed_kind_appears(
    generated: tuple[Path, GenerationSummary], tally: Tally
) -> None:
    _, summary = generated
    assert list(summary.malformed) == list(MALFORMED_KINDS)
    for kind in MALFORMED_KINDS:
        assert summary.malformed[kind] >= 1, kind
        assert tally.malformed[kind] >= 1, kind


def test_every_meter_appears_with_exact_values(tally: Tally) -> None:
    seen = Counter()
    for row in tally.valid.values():
        meter = row.record["meter"]
        seen[meter] += 1
        literal = row.value_literal
        assert literal is not None and EXACT_DECIMAL.fullmatch(literal), literal
        decimals = len(literal.partition(".")[2])
        assert decimals == SCALES.get(meter, 0), (meter, literal)
        value = Decimal(literal)
        assert value > 0 and value.as_tuple().exponent == -decimals
        if row.file.endswith(".ndjson"):
            assert float(value) == row.record["value"]
    assert set(seen) == METERS
    assert seen["api.requests"] == max(seen.values())


def test_properties_follow_meter_shapes(tally: Tally) -> None:
    models = {"gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b"}
    regions = {"us-east-1", "eu-west-1", "ap-northeast-1"}
    for row in tally.valid.values():
        meter, props = row.record["meter"], row.record.get("properties") or {}
        if meter == "tokens.generated":
            assert props["model"] in models
        elif meter == "compute.gpu_seconds":
            assert props["region"] in regions
        elif meter == "seats.active":
            assert props["user_id"].startswith("u_")
            assert row.value_literal == "1"
        else:
            assert props == {}
        if meter in {"messages.delivered", "builds.completed"}:
            assert row.value_literal == "1"


def test_late_events_exist_and_cross_a_month(
    generated: tuple[Path, GenerationSummary], tally: Tally
) -> None:
    _, summary = generated
    late = [
        row
        for row in tally.valid.values()
        if row.file.endswith(".ndjson") and _file_day(row.file) > _ts_day(row)
    ]
    assert len(late) == summary.late_events > 0
    assert all((_file_day(r.file) - _ts_day(r)).days <= 5 for r in late)
    assert any(_file_day(r.file).month != _ts_day(r).month for r in late)


def test_on_time_rows_are_sorted_and_none_arrive_early(tally: Tally) -> None:
    for name, rows in tally.rows_by_file.items():
        if not name.endswith(".ndjson"):
            continue
        firsts = [
            r
            for r in rows
            if r.record is not None and tally.valid.get(r.record.get("uniqueId")) is r
        ]
        assert all(_ts_day(r) <= _file_day(name) for r in firsts), name
        on_time = [r for r in firsts if _ts_day(r) == _file_day(name)]
        assert on_time, name
        keys = [(r.record["ts"], r.record["uniqueId"]) for r in on_time]
        assert keys == sorted(keys), name


def test_unique_ids_are_uuid7s_of_the_event_time_as_the_sdk_makes_them(tally: Tally) -> None:
    for uid, row in tally.valid.items():
        parsed = uuid.UUID(hex=uid)
        assert (uid, parsed.version, parsed.variant) == (parsed.hex, 7, uuid.RFC_4122)
        event_ms = int(_parse_ts(row.record["ts"]).timestamp() * 1000)
        assert parsed.int >> 80 == event_ms, (uid, row.record["ts"])


def test_random_ids_are_the_tokens_in_hex_and_the_rows_are_the_same(tmp_path: Path) -> None:
    def rows(ids: str) -> list[tuple[str, str]]:
        summary = _generate(tmp_path / ids, events=2_000, days=5, ids=ids)
        return [
            (name, line)
            for name in summary.files
            for line in (tmp_path / ids / name).read_text().splitlines()
        ]

    ordered, random = rows("time-ordered"), rows("random")
    assert [name for name, _ in ordered] == [name for name, _ in random]
    ids: dict[str, str] = {}
    for (_, line), (_, random_line) in zip(ordered, random, strict=True):
        # both kinds of id whole on the line (a malformed line may be cut inside its id)
        found = re.findall(r"\b019[0-9a-f]{29}\b", line)
        random_found = re.findall(r"\bevt_[0-9a-f]{16}\b", random_line)
        if found and random_found:
            # the token's 64 bits: the UUID's rand_a (12 bits) and the low 52 of rand_b
            token = (int(found[0][13:16], 16) << 52) | (int(found[0][16:], 16) & (1 << 52) - 1)
            assert random_found[0] == f"evt_{token:016x}"
            assert ids.setdefault(found[0], random_found[0]) == random_found[0]
    assert len(ids) > 0.9 * len(ordered)  # re-sends share an id; a few lines have none
    assert len(set(ids.values())) == len(ids)


def test_backfill_share_goes_to_csv(tally: Tally) -> None:
    csv_rows = sum(len(rows) for name, rows in tally.rows_by_file.items() if name.endswith(".csv"))
    assert 0.03 * EVENTS <= csv_rows <= 0.07 * EVENTS


def test_without_csv_share_only_ndjson_is_written(tmp_path: Path) -> None:
    summary = _generate(tmp_path, events=2_000, csv_share=0.0, days=10)
    assert all(name.endswith(".ndjson") for name in summary.files)
    assert len(summary.files) == 10
    assert _tally(tmp_path).total == summary.total_rows


@pytest.mark.parametrize(
    "overrides", [{"events": 10}, {"days": 0}, {"csv_share": 1.0}, {"csv_share": -0.1}]
)
def test_rejects_bad_arguments(tmp_path: Path, overrides: dict) -> None:
    with pytest.raises(ValueError):
        _generate(tmp_path, **overrides)
