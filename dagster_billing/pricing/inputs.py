"""Input files of `billing price` turned into the pipeline's own inputs: seed CSVs, plan overrides
and landing files. Nothing is priced here; the same Dagster assets and dbt models do that.

Formats (documented in docs/pricing-cli.md):
  accounts       CSV, JSON or YAML list: account_id, currency, [account_name], [billing_email]
  subscriptions  CSV, JSON or YAML list: account_id, plan_code, starts_on, [ends_on],
                 [trial_ends_on], [subscription_id]; JSON/YAML items may carry `overrides`
                 (the body of a plans/overrides file: name, commitment, charges, ...)
  usage          events (NDJSON or CSV, the landing format: uniqueId, account, meter, value, ts,
                 properties) or pre-aggregated quantities (NDJSON or CSV: account, meter,
                 period YYYY-MM, quantity, [dimension]: a value, or model=gpt-4o|region=eu
                 for a meter with several keys), which become landing events
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dagster_billing.paths import SEEDS_DIR
from dagster_billing.pricing.plan_types import (
    ALL_DIMENSIONS,
    DIMENSION_SEPARATOR,
    dimension_combination,
    dimension_keys,
)
from dagster_billing.pricing.plans import (
    OVERRIDES_DIR,
    CompiledVersion,
    PlanOverride,
    describe_validation_error,
    load_yaml_exact,
)

# Billing-lifecycle reference data that names accounts (prepaid credits, coupons, the issuer of
# an account, alert thresholds, quotas, anniversary cycles): a run for other accounts starts
# without any.
ACCOUNT_DATA_SEEDS = (
    "credit_grants.csv",
    "coupons.csv",
    "account_issuers.csv",
    "usage_thresholds.csv",
    "usage_quotas.csv",
    "billing_cycles.csv",
    "account_billing_profiles.csv",
)
# Issuer-level reference data (no account names): copied as they are.
ISSUER_SEEDS = ("issuers.csv", "tax_rates.csv")


def write_empty_account_data(seeds_dir: Path) -> None:
    """The account data seeds with their header only, and the issuers and tax rates of seeds/
    (dbt refs every seed, so a seed directory needs them all)."""
    for name in ACCOUNT_DATA_SEEDS:
        header = (SEEDS_DIR / name).read_text().splitlines()[0]
        (seeds_dir / name).write_text(header + "\n")
    for name in ISSUER_SEEDS:
        (seeds_dir / name).write_text((SEEDS_DIR / name).read_text())


ACCOUNT_COLUMNS = ("account_id", "account_name", "currency", "billing_email")
SUBSCRIPTION_COLUMNS = (
    "subscription_id",
    "account_id",
    "plan_code",
    "starts_on",
    "ends_on",
    "trial_ends_on",
)
QUANTITY_FIELDS = ("account", "meter", "period", "quantity")
EVENT_FIELDS = ("uniqueId", "account", "meter", "value", "ts", "properties")
MAX_EXPANDED_EVENTS = 10_000_000


class InputError(ValueError):
    """An input file that cannot be read at all, with the file and the reason."""


@dataclass(frozen=True)
class InputProblem:
    """A row, plan or account that cannot be priced: the rest of the batch still is."""

    message: str
    account_id: str | None = None
    plan_code: str | None = None

    def to_dict(self) -> dict[str, str]:
        found = {"account": self.account_id, "plan": self.plan_code, "error": self.message}
        return {key: value for key, value in found.items() if value is not None}


def records(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV, JSON (list), YAML (list) or NDJSON file, as dicts."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return [dict(row) for row in csv.DictReader(handle)]
        if suffix in (".ndjson", ".jsonl"):
            with path.open(encoding="utf-8") as handle:
                return [json.loads(line, parse_float=Decimal) for line in handle if line.strip()]
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        elif suffix in (".yaml", ".yml"):
            data = load_yaml_exact(path.read_text(encoding="utf-8"))
        else:
            raise InputError(f"{path}: unsupported file type (csv, json, ndjson, yaml)")
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {error}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InputError(f"{path}: expected a list of objects")
    return data


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value).strip()


def _date(path: Path, row: int, field: str, value: Any, *, required: bool) -> str:
    written = text(value)
    if not written:
        if required:
            raise InputError(f"{path}: row {row}: {field} is required")
        return ""
    try:
        return date.fromisoformat(written).isoformat()
    except ValueError:
        raise InputError(
            f"{path}: row {row}: {field}: {written!r} is not a date (YYYY-MM-DD)"
        ) from None


def write_accounts(
    source: Path, target: Path, currencies: set[str]
) -> tuple[dict[str, str], list[InputProblem]]:
    """accounts.csv for the seeds: the accounts that can be priced (id -> currency), and a
    problem for every row that cannot (an account listed twice is left out whole)."""
    rows: dict[str, dict] = {}
    problems: list[InputProblem] = []
    repeated: set[str] = set()
    for number, record in enumerate(records(source), start=1):
        account_id = text(record.get("account_id"))
        currency = text(record.get("currency")).upper()
        where = f"{source}: row {number}"
        if not account_id:
            problems.append(InputProblem(f"{where}: account_id is required"))
        elif account_id in rows or account_id in repeated:
            problems.append(
                InputProblem(f"{where}: account {account_id!r} is listed twice", account_id)
            )
            rows.pop(account_id, None)
            repeated.add(account_id)
        elif not currency:
            problems.append(InputProblem(f"{where}: currency is required", account_id))
        elif currency not in currencies:
            problems.append(
                InputProblem(
                    f"{where}: unknown currency {currency!r} (see currencies.csv)", account_id
                )
            )
        else:
            rows[account_id] = {
                "account_id": account_id,
                "account_name": text(record.get("account_name")) or account_id,
                "currency": currency,
                "billing_email": text(record.get("billing_email")),
            }
    _write_csv(target, ACCOUNT_COLUMNS, list(rows.values()))
    return {account: row["currency"] for account, row in rows.items()}, problems


@dataclass(frozen=True)
class Subscription:
    row: dict[str, str]
    override_file: Path | None

    @property
    def account_id(self) -> str:
        return self.row["account_id"]

    @property
    def plan_code(self) -> str:
        return self.row["plan_code"]


def read_subscriptions(
    source: Path,
    overrides_dir: Path,
    accounts: dict[str, str],
    failed_accounts: frozenset[str] = frozenset(),
) -> tuple[list[Subscription], list[InputProblem]]:
    """The subscriptions file's rows, with one override file per subscription with `overrides`,
    and a problem for every row that cannot be read (the account is left out). Rows of
    failed_accounts (already reported) are left out without another problem."""
    subscriptions: list[Subscription] = []
    problems: list[InputProblem] = []
    for number, record in enumerate(records(source), start=1):
        account_id = text(record.get("account_id")) or None
        if account_id in failed_accounts:
            continue
        try:
            subscriptions.append(_subscription(source, number, record, overrides_dir, accounts))
        except InputError as error:
            problems.append(
                InputProblem(str(error), account_id, text(record.get("plan_code")) or None)
            )
    return subscriptions, problems


def _subscription(
    source: Path, number: int, record: dict, overrides_dir: Path, accounts: dict[str, str]
) -> Subscription:
    account_id = text(record.get("account_id"))
    plan_code = text(record.get("plan_code"))
    if not account_id or not plan_code:
        raise InputError(f"{source}: row {number}: account_id and plan_code are required")
    if account_id not in accounts:
        raise InputError(f"{source}: row {number}: unknown account {account_id!r}")
    row = {
        "subscription_id": text(record.get("subscription_id")) or f"sub_{account_id}_{number}",
        "account_id": account_id,
        "plan_code": plan_code,
        "starts_on": _date(source, number, "starts_on", record.get("starts_on"), required=True),
        "ends_on": _date(source, number, "ends_on", record.get("ends_on"), required=False),
        "trial_ends_on": _date(
            source, number, "trial_ends_on", record.get("trial_ends_on"), required=False
        ),
    }
    if row["ends_on"] and row["ends_on"] <= row["starts_on"]:
        raise InputError(f"{source}: row {number}: ends_on must be after starts_on")
    terms = record.get("overrides")
    if not terms:
        return Subscription(row, None)
    if not isinstance(terms, dict):
        raise InputError(f"{source}: row {number}: overrides must be an object")
    body = {"account": account_id, "plan": plan_code, **terms}
    if "effective_from" not in terms:
        body["effective_from"] = row["starts_on"]
    if "effective_to" not in terms and row["ends_on"]:
        body["effective_to"] = row["ends_on"]
    try:
        PlanOverride.model_validate(body)
    except ValidationError as error:
        raise InputError(
            f"{source}: row {number}: overrides: {describe_validation_error(error)}"
        ) from None
    overrides_dir.mkdir(parents=True, exist_ok=True)
    path = overrides_dir / f"{row['subscription_id']}.yaml"
    path.write_text(yaml.safe_dump(_plain(body), sort_keys=False))
    return Subscription(row, path)


def subscription_problems(
    subscriptions: list[Subscription],
    accounts: dict[str, str],
    versions: list[CompiledVersion],
    failed_plans: set[str],
    source: Path,
) -> list[InputProblem]:
    """What the pipeline's tests would refuse, per account, before it runs: an unknown or invalid
    plan, a plan in another currency than the account, subscribed days before the plan's first
    version or between its versions, overlapping subscriptions."""
    windows: dict[str, list[tuple[date, date | None, str]]] = defaultdict(list)
    for version in versions:
        if version.account_id is None:
            windows[version.base_code].append(
                (version.plan.effective_from, version.effective_to, version.plan.currency)
            )
    problems = []
    by_account: dict[str, list[Subscription]] = defaultdict(list)
    for subscription in subscriptions:
        by_account[subscription.account_id].append(subscription)
        where = f"{source}: subscription {subscription.row['subscription_id']}"
        code = subscription.plan_code
        problem = None
        if code in failed_plans:
            problem = f"{where}: plan {code!r} cannot be priced (see its error)"
        elif code not in windows:
            problem = f"{where}: unknown plan {code!r}"
        else:
            ordered = sorted(windows[code])
            currency = ordered[0][2]
            gap = _uncovered_day(
                ordered, subscription.row["starts_on"], subscription.row["ends_on"]
            )
            if currency != accounts[subscription.account_id]:
                problem = (
                    f"{where}: plan {code!r} is priced in {currency}, account "
                    f"{subscription.account_id!r} in {accounts[subscription.account_id]}"
                )
            elif gap is not None:
                problem = f"{where}: plan {code!r} has no version in force on {gap}"
        if problem:
            problems.append(InputProblem(problem, subscription.account_id, code))
    for account_id, items in by_account.items():
        items.sort(key=lambda item: item.row["starts_on"])
        for first, second in itertools.pairwise(items):
            if not first.row["ends_on"] or first.row["ends_on"] > second.row["starts_on"]:
                problems.append(
                    InputProblem(
                        f"{source}: subscriptions {first.row['subscription_id']} and "
                        f"{second.row['subscription_id']} of {account_id!r} overlap (an "
                        "account is on one subscription at a time)",
                        account_id,
                    )
                )
    return problems


def _uncovered_day(
    windows: list[tuple[date, date | None, str]], starts_on: str, ends_on: str
) -> date | None:
    """The first subscribed day no version covers, up to ends_on or the last version's end."""
    day = date.fromisoformat(starts_on)
    end = date.fromisoformat(ends_on) if ends_on else None
    for start, stop, _ in windows:
        if end is not None and day >= end:
            return None
        if start > day:
            return day
        if stop is None:
            return None
        day = max(day, stop)
    return None if end is None or day >= end else day


def write_subscriptions(target: Path, subscriptions: list[Subscription]) -> None:
    _write_csv(target, SUBSCRIPTION_COLUMNS, [subscription.row for subscription in subscriptions])


def _plain(value: Any) -> Any:
    """Decimals as strings, which plan loading reads back as the same exact Decimals."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Meter:
    code: str
    aggregation: str
    dimension_key: str | None
    unique_property: str | None


def read_meters(path: Path) -> dict[str, Meter]:
    return {
        row["meter_code"]: Meter(
            code=row["meter_code"],
            aggregation=row["aggregation"],
            dimension_key=row.get("dimension_key") or None,
            unique_property=row.get("unique_property") or None,
        )
        for row in records(path)
    }


def usage_kind(path: Path) -> str:
    """'quantities' when the file has account/meter/period/quantity fields, else 'events'."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        fields = set(header)
    else:
        with path.open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "{}")
        try:
            fields = set(json.loads(first))
        except (json.JSONDecodeError, TypeError):
            fields = set()
    return "quantities" if set(QUANTITY_FIELDS) <= fields else "events"


def _dimension_properties(meter: Meter, dimension: str, where: str) -> dict[str, str]:
    """The event properties of a quantity row's dimension: the value of a one-key meter, or for
    a meter with several keys a combination `model=gpt-4o|region=eu` (some keys may be left out
    or `*`: no property; decision 81)."""
    keys = dimension_keys(meter.dimension_key)
    if not dimension:
        return {}
    if len(keys) < 2:
        return {keys[0]: dimension}
    properties = {}
    for part in dimension.split(DIMENSION_SEPARATOR):
        key, equals, value = part.partition("=")
        if not equals or key not in keys or key in properties:
            raise InputError(
                f"{where}: dimension {dimension!r} is not a combination of the keys of "
                f"{meter.code!r} ({meter.dimension_key}), e.g. "
                + DIMENSION_SEPARATOR.join(f"{key}=..." for key in keys)
            )
        if value != ALL_DIMENSIONS:
            properties[key] = value
    return properties


def _quantity_events(
    path: Path, number: int, record: dict, meters: dict[str, Meter]
) -> Iterator[dict]:
    account = text(record.get("account"))
    meter_code = text(record.get("meter"))
    period = text(record.get("period"))
    dimension = text(record.get("dimension"))
    meter = meters.get(meter_code)
    if meter is None:
        raise InputError(f"{path}: row {number}: unknown meter {meter_code!r}")
    try:
        month = datetime.strptime(period, "%Y-%m")
    except ValueError:
        raise InputError(f"{path}: row {number}: period {period!r} is not YYYY-MM") from None
    try:
        quantity = Decimal(text(record.get("quantity")))
    except InvalidOperation:
        raise InputError(f"{path}: row {number}: quantity is not a number") from None
    if quantity < 0 or not quantity.is_finite():
        raise InputError(f"{path}: row {number}: quantity must be a number >= 0")
    if dimension and not meter.dimension_key:
        raise InputError(f"{path}: row {number}: meter {meter_code!r} has no dimension")
    properties = _dimension_properties(meter, dimension, f"{path}: row {number}")
    combination = dimension_combination(dimension_keys(meter.dimension_key), properties)
    key = f"q:{account}:{meter_code}:{period}:{combination}"
    ts = month.strftime("%Y-%m-01T00:00:00Z")

    def event(suffix: str, value: Decimal, at: str, extra: dict | None = None) -> dict:
        props = {**properties, **(extra or {})}
        return {
            "uniqueId": f"{key}:{suffix}",
            "account": account,
            "meter": meter_code,
            "value": format(value, "f"),
            "ts": at,
            **({"properties": props} if props else {}),
        }

    if meter.aggregation in ("sum", "max", "latest"):
        yield event("1", quantity, ts)
    elif meter.aggregation == "time_weighted_sum":
        # value q held for one hour is q units x hours, exactly.
        yield event("1", quantity, ts)
        yield event("2", Decimal(0), month.strftime("%Y-%m-01T01:00:00Z"))
    elif meter.aggregation in ("count", "unique_count"):
        if quantity != quantity.to_integral():
            raise InputError(
                f"{path}: row {number}: a {meter.aggregation} meter needs a whole quantity"
            )
        if quantity > MAX_EXPANDED_EVENTS:
            raise InputError(
                f"{path}: row {number}: {quantity} {meter.aggregation} units would be "
                f"{quantity} events (at most {MAX_EXPANDED_EVENTS}); send events instead"
            )
        for index in range(1, int(quantity) + 1):
            extra = (
                {meter.unique_property: f"unit-{index}"}
                if meter.aggregation == "unique_count" and meter.unique_property
                else None
            )
            yield event(str(index), Decimal(1), ts, extra)
    else:
        raise InputError(f"{path}: row {number}: unsupported aggregation {meter.aggregation!r}")


def write_usage(
    source: Path, landing_dir: Path, meters: dict[str, Meter]
) -> tuple[str, int, list[InputProblem]]:
    """Landing files for the usage file: events are copied as they are (the landing quarantines
    bad ones), quantities become events; a quantity row that cannot be read is a problem of its
    account and is left out.

    Returns (kind, rows written, problems)."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    kind = usage_kind(source)
    if kind == "events":
        if source.suffix.lower() not in (".ndjson", ".jsonl", ".csv"):
            raise InputError(f"{source}: usage events must be NDJSON or CSV")
        target = landing_dir / f"usage{source.suffix.lower()}"
        target.write_bytes(source.read_bytes())
        with source.open(encoding="utf-8") as handle:
            lines = sum(1 for line in handle if line.strip())
        return kind, lines - (1 if source.suffix.lower() == ".csv" else 0), []
    count = 0
    problems: list[InputProblem] = []
    with (landing_dir / "usage.ndjson").open("w", encoding="utf-8") as handle:
        for number, record in enumerate(records(source), start=1):
            try:
                events = list(_quantity_events(source, number, record, meters))
            except InputError as error:
                problems.append(InputProblem(str(error), text(record.get("account")) or None))
                continue
            for event in events:
                handle.write(json.dumps(event, separators=(",", ":")) + "\n")
                count += 1
    return kind, count, problems


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


__all__ = [
    "EVENT_FIELDS",
    "OVERRIDES_DIR",
    "InputError",
    "InputProblem",
    "Subscription",
    "read_meters",
    "read_subscriptions",
    "records",
    "subscription_problems",
    "text",
    "usage_kind",
    "write_accounts",
    "write_subscriptions",
    "write_usage",
]
