"""Input files of `billing price` turned into the pipeline's own inputs: seed CSVs, plan overrides
and landing files. Nothing is priced here; the same Dagster assets and dbt models do that.

Formats (documented in docs/pricing-cli.md):
  accounts       CSV, JSON or YAML list: account_id, currency, [account_name], [billing_email]
  subscriptions  CSV, JSON or YAML list: account_id, plan_code, starts_on, [ends_on],
                 [trial_ends_on], [subscription_id]; JSON/YAML items may carry `overrides`
                 (the body of a plans/overrides file: name, commitment, charges, ...)
  usage          events (NDJSON or CSV, the landing format: uniqueId, account, meter, value, ts,
                 properties) or pre-aggregated quantities (NDJSON or CSV: account, meter,
                 period YYYY-MM, quantity, [dimension]), which become landing events
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dagster_billing.paths import SEEDS_DIR
from dagster_billing.pricing.plans import (
    OVERRIDES_DIR,
    PlanOverride,
    describe_validation_error,
    load_yaml_exact,
)

# Billing-lifecycle reference data that names accounts (prepaid credits, coupons, the issuer of
# an account, alert thresholds, anniversary cycles): a run for other accounts starts without any.
ACCOUNT_DATA_SEEDS = (
    "credit_grants.csv",
    "coupons.csv",
    "account_issuers.csv",
    "usage_thresholds.csv",
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
    """An input file that cannot be priced, with the file, the row and the reason."""


def _records(path: Path) -> list[dict[str, Any]]:
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value).strip()


def _date(path: Path, row: int, field: str, value: Any, *, required: bool) -> str:
    text = _text(value)
    if not text:
        if required:
            raise InputError(f"{path}: row {row}: {field} is required")
        return ""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InputError(
            f"{path}: row {row}: {field}: {text!r} is not a date (YYYY-MM-DD)"
        ) from None


def write_accounts(source: Path, target: Path) -> set[str]:
    """accounts.csv for the seeds; returns the account ids."""
    rows = []
    seen: set[str] = set()
    for number, record in enumerate(_records(source), start=1):
        account_id = _text(record.get("account_id"))
        currency = _text(record.get("currency")).upper()
        if not account_id or not currency:
            raise InputError(f"{source}: row {number}: account_id and currency are required")
        if account_id in seen:
            raise InputError(f"{source}: row {number}: account {account_id!r} is listed twice")
        seen.add(account_id)
        rows.append(
            {
                "account_id": account_id,
                "account_name": _text(record.get("account_name")) or account_id,
                "currency": currency,
                "billing_email": _text(record.get("billing_email")),
            }
        )
    _write_csv(target, ACCOUNT_COLUMNS, rows)
    return seen


def write_subscriptions(
    source: Path, target: Path, overrides_dir: Path, accounts: set[str], plan_codes: set[str]
) -> int:
    """subscriptions.csv for the seeds, and one override file per subscription with `overrides`."""
    rows = []
    for number, record in enumerate(_records(source), start=1):
        account_id = _text(record.get("account_id"))
        plan_code = _text(record.get("plan_code"))
        if not account_id or not plan_code:
            raise InputError(f"{source}: row {number}: account_id and plan_code are required")
        if account_id not in accounts:
            raise InputError(f"{source}: row {number}: unknown account {account_id!r}")
        if plan_code not in plan_codes:
            raise InputError(f"{source}: row {number}: unknown plan {plan_code!r}")
        row = {
            "subscription_id": _text(record.get("subscription_id")) or f"sub_{account_id}_{number}",
            "account_id": account_id,
            "plan_code": plan_code,
            "starts_on": _date(source, number, "starts_on", record.get("starts_on"), required=True),
            "ends_on": _date(source, number, "ends_on", record.get("ends_on"), required=False),
            "trial_ends_on": _date(
                source, number, "trial_ends_on", record.get("trial_ends_on"), required=False
            ),
        }
        rows.append(row)
        terms = record.get("overrides")
        if terms:
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
            (overrides_dir / f"{row['subscription_id']}.yaml").write_text(
                yaml.safe_dump(_plain(body), sort_keys=False)
            )
    _write_csv(target, SUBSCRIPTION_COLUMNS, rows)
    return len(rows)


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
        for row in _records(path)
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


def _quantity_events(
    path: Path, number: int, record: dict, meters: dict[str, Meter]
) -> Iterator[dict]:
    account = _text(record.get("account"))
    meter_code = _text(record.get("meter"))
    period = _text(record.get("period"))
    dimension = _text(record.get("dimension"))
    meter = meters.get(meter_code)
    if meter is None:
        raise InputError(f"{path}: row {number}: unknown meter {meter_code!r}")
    try:
        month = datetime.strptime(period, "%Y-%m")
    except ValueError:
        raise InputError(f"{path}: row {number}: period {period!r} is not YYYY-MM") from None
    try:
        quantity = Decimal(_text(record.get("quantity")))
    except InvalidOperation:
        raise InputError(f"{path}: row {number}: quantity is not a number") from None
    if quantity < 0 or not quantity.is_finite():
        raise InputError(f"{path}: row {number}: quantity must be a number >= 0")
    if dimension and not meter.dimension_key:
        raise InputError(f"{path}: row {number}: meter {meter_code!r} has no dimension")
    properties = {meter.dimension_key: dimension} if dimension else {}
    key = f"q:{account}:{meter_code}:{period}:{dimension or '*'}"
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


def write_usage(source: Path, landing_dir: Path, meters: dict[str, Meter]) -> tuple[str, int]:
    """Landing files for the usage file: events are copied as they are, quantities become events.

    Returns (kind, rows written)."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    kind = usage_kind(source)
    if kind == "events":
        if source.suffix.lower() not in (".ndjson", ".jsonl", ".csv"):
            raise InputError(f"{source}: usage events must be NDJSON or CSV")
        target = landing_dir / f"usage{source.suffix.lower()}"
        target.write_bytes(source.read_bytes())
        with source.open(encoding="utf-8") as handle:
            lines = sum(1 for line in handle if line.strip())
        return kind, lines - (1 if source.suffix.lower() == ".csv" else 0)
    count = 0
    with (landing_dir / "usage.ndjson").open("w", encoding="utf-8") as handle:
        for number, record in enumerate(_records(source), start=1):
            for event in _quantity_events(source, number, record, meters):
                handle.write(json.dumps(event, separators=(",", ":")) + "\n")
                count += 1
    return kind, count


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
    "read_meters",
    "usage_kind",
    "write_accounts",
    "write_subscriptions",
    "write_usage",
]
