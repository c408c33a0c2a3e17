"""Declarative price plans: YAML in plans/ -> validated models -> typed price tables (seed CSVs).

Layout of a plans directory:
  <code>.yaml or <code>/<version>.yaml   one plan version per file
  overrides/*.yaml                       per-account terms layered on a plan (PlanOverride)
  drafts/*.yaml                          draft versions for `billing simulate`; never compiled

Numbers are read as exact decimals (never floats), whether written as `0.0009` or `"0.0009"`.
Every price model compiles to the same three tables (price_plans, price_charges, price_tiers)
that the dbt rating models join against; the schema of each field is documented in
docs/plans.md and docs/plan.schema.json (`billing plans schema`).
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

PRICE_TABLES = ("price_plans", "price_charges", "price_tiers")
ALL_DIMENSIONS = "*"
OVERRIDES_DIR = "overrides"
DRAFTS_DIR = "drafts"
OVERRIDE_SEPARATOR = "@"
MAX_DECIMAL_PLACES = 10
MAX_MONEY_PLACES = 4

Price = Annotated[
    Decimal, Field(ge=0, lt=10**18, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Quantity = Annotated[
    Decimal, Field(ge=0, lt=10**18, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
PositiveQuantity = Annotated[
    Decimal, Field(gt=0, lt=10**18, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Money = Annotated[
    Decimal, Field(ge=0, lt=10**18, decimal_places=MAX_MONEY_PLACES, allow_inf_nan=False)
]
Percent = Annotated[
    Decimal, Field(gt=0, le=100, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Rate = Annotated[
    Decimal, Field(ge=0, le=100, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
DimensionValue = Annotated[str, Field(min_length=1, max_length=255)]


class PlanError(ValueError):
    """A plan file that cannot be used, with the file, the path inside it and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    up_to: Quantity | None = Field(
        description="Inclusive, cumulative upper bound of the tier; null = unbounded (last tier)."
    )
    unit_price: Price = Field(description="Price of one unit in this tier.")
    flat_fee: Price = Field(
        default=Decimal(0),
        description="Charged once when the quantity enters the tier (the first tier's even at zero).",
    )


def _check_tiers(tiers: list[Tier]) -> list[Tier]:
    if not tiers:
        raise ValueError("tiers must not be empty")
    bounds = [tier.up_to for tier in tiers]
    if any(bound is None for bound in bounds[:-1]):
        raise ValueError("only the last tier may have up_to: null")
    if bounds[-1] is not None:
        raise ValueError("the last tier must have up_to: null (unbounded)")
    finite = [bound for bound in bounds if bound is not None]
    if any(b <= a for a, b in itertools.pairwise(finite)) or (finite and finite[0] <= 0):
        raise ValueError("tier up_to bounds must be positive and strictly ascending")
    return tiers


class _ChargeBase(_Strict):
    id: Code = Field(description="Unique within the plan; names the invoice line.")
    description: str | None = Field(default=None, description="Text of the invoice line.")
    discount_percent: Percent | None = Field(
        default=None,
        description="Discount on this charge in percent (10 = -10 %), applied before the maximum.",
    )


class _MeteredCharge(_ChargeBase):
    meter: str = Field(description="Meter code from seeds/meters.csv, e.g. api.requests.")
    aggregation: (
        Literal["sum", "count", "max", "unique_count", "latest", "time_weighted_sum"] | None
    ) = Field(
        default=None,
        description="Optional; must equal the meter's aggregation (meters aggregate one way).",
    )
    filter: dict[str, DimensionValue] | None = Field(
        default=None,
        description="Price only usage with this dimension value, e.g. {model: gpt-4o}.",
    )
    group_by: str | None = Field(
        default=None,
        description="Dimension key (e.g. model): one line per value found in usage, each priced "
        "on its own.",
    )
    minimum_spend: Money | None = Field(
        default=None,
        description="Per billing period, prorated by billable days; a `minimum` line tops up.",
    )
    maximum_spend: Money | None = Field(
        default=None,
        description="Per billing period, prorated by billable days; a `maximum` line caps the "
        "charge after its discount.",
    )

    @field_validator("filter")
    @classmethod
    def _one_dimension(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and len(value) != 1:
            raise ValueError("filter takes exactly one dimension key and value")
        return value

    @model_validator(mode="after")
    def _filter_or_group(self) -> _MeteredCharge:
        if self.filter is not None and self.group_by is not None:
            raise ValueError("use either filter or group_by, not both")
        if (
            self.minimum_spend is not None
            and self.maximum_spend is not None
            and self.minimum_spend > self.maximum_spend
        ):
            raise ValueError("minimum_spend must not exceed maximum_spend")
        return self

    @property
    def dimension_key(self) -> str | None:
        if self.filter:
            return next(iter(self.filter))
        return self.group_by


class PerUnitCharge(_MeteredCharge):
    """Every unit at one price."""

    model: Literal["per_unit"]
    unit_price: Price
    free_units: Quantity = Field(
        default=Decimal(0), description="Units per period that are not charged."
    )


class _TieredCharge(_MeteredCharge):
    tiers: list[Tier] = Field(description="Ascending; the last has up_to: null.")
    free_units: Quantity = Field(
        default=Decimal(0), description="Units subtracted before the tiers apply."
    )

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: list[Tier]) -> list[Tier]:
        return _check_tiers(tiers)


class GraduatedCharge(_TieredCharge):
    """Each unit priced in its own tier; a tier's flat fee once the quantity enters it."""

    model: Literal["graduated"]


class VolumeCharge(_TieredCharge):
    """Every unit at the price of the tier the total falls in, plus that tier's flat fee."""

    model: Literal["volume"]


class PackageCharge(_MeteredCharge):
    """A price per block of package_size units; free units first, a started block in full."""

    model: Literal["package"]
    package_size: PositiveQuantity
    package_price: Price
    free_units: Quantity = Field(default=Decimal(0))
    rounding: Literal["up", "down"] = Field(
        default="up", description="up: a started package is charged; down: only full packages."
    )


class PercentageCharge(_MeteredCharge):
    """A percentage of each transaction's value plus a fixed fee, rated event by event."""

    model: Literal["percentage"]
    rate: Rate = Field(description="Percent of the transaction value (1.3 = 1.3 %).")
    fixed_fee: Price = Field(default=Decimal(0), description="Per charged transaction.")
    free_transactions: int | None = Field(
        default=None, ge=1, description="The period's first N transactions cost nothing."
    )
    free_amount: PositiveQuantity | None = Field(
        default=None, description="The period's first X of transaction value costs nothing."
    )
    transaction_minimum: Price | None = Field(
        default=None, description="Fee of a charged transaction is at least this."
    )
    transaction_maximum: Price | None = Field(
        default=None, description="Fee of a charged transaction is at most this."
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> PercentageCharge:
        if (
            self.transaction_minimum is not None
            and self.transaction_maximum is not None
            and self.transaction_minimum > self.transaction_maximum
        ):
            raise ValueError("transaction_minimum must not exceed transaction_maximum")
        return self


class MatrixCharge(_MeteredCharge):
    """A unit price per value of one dimension (e.g. per model); each value is its own line."""

    model: Literal["matrix"]
    dimension: str = Field(description="The meter's dimension key, e.g. model or region.")
    prices: dict[DimensionValue, Price] = Field(
        min_length=1, description="Unit price per dimension value."
    )
    default_unit_price: Price | None = Field(
        default=None,
        description="Unit price of values not listed (each its own line); without it, usage "
        "of unlisted values is not priced by this charge.",
    )

    @model_validator(mode="after")
    def _no_filter(self) -> MatrixCharge:
        if self.filter is not None or self.group_by is not None:
            raise ValueError("a matrix charge takes `dimension`, not filter or group_by")
        return self

    @property
    def dimension_key(self) -> str | None:
        return self.dimension


class SeatCharge(_MeteredCharge):
    """A price per seat of a unique-count meter, optionally prorated by seat-days."""

    model: Literal["seat"]
    unit_price: Price = Field(description="Price of one seat for a whole billing period.")
    included_seats: Quantity = Field(default=Decimal(0), description="Seats not charged.")
    proration: Literal["none", "daily"] = Field(
        default="none",
        description="A seat is added by an event with value > 0, removed by one with value 0, "
        "and carries over between periods. none: seats held on any day of the period; daily: "
        "seat-days (calendar days held at any moment) / days in the period, rounded up at 5 "
        "decimal places.",
    )


class FlatCharge(_ChargeBase):
    """A recurring fee per billing period, in advance or in arrears, prorated by days."""

    model: Literal["flat"]
    amount: Money
    billing: Literal["in_advance", "in_arrears"] = Field(
        default="in_arrears",
        description="in_advance: billed on the invoice of the previous period (or the first "
        "invoice); in_arrears: on the invoice of its own period.",
    )
    prorate: bool = Field(
        default=True, description="Prorate partial periods by billable days (trial excluded)."
    )


Charge = Annotated[
    PerUnitCharge
    | GraduatedCharge
    | VolumeCharge
    | PackageCharge
    | PercentageCharge
    | MatrixCharge
    | SeatCharge
    | FlatCharge,
    Field(discriminator="model"),
]
PRICE_MODELS = (
    "per_unit",
    "graduated",
    "volume",
    "package",
    "percentage",
    "matrix",
    "seat",
    "flat",
)
MONEY_FIELDS = ("amount", "minimum_spend", "maximum_spend")


class Commitment(_Strict):
    minimum: Money | None = Field(
        default=None,
        description="Minimum spend per billing period (prorated by billable days); a "
        "`commitment_true_up` line makes up the difference, never negative.",
    )
    discount_percent: Percent | None = Field(
        default=None,
        description="Committed-spend discount in percent on the usage lines (18 = -18 %).",
    )

    @model_validator(mode="after")
    def _something(self) -> Commitment:
        if self.minimum is None and self.discount_percent is None:
            raise ValueError("a commitment needs a minimum, a discount_percent or both")
        return self


class PlanVersion(_Strict):
    """One version of a price plan (one YAML file)."""

    code: Code
    version: int = Field(ge=1)
    name: str
    effective_from: date = Field(description="First day the version is in force.")
    effective_to: date | None = Field(
        default=None,
        description="Exclusive end; defaults to the next version's effective_from (open-ended).",
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    billing_interval: Literal["month"] = Field(
        default="month", description="Billing periods are calendar months (UTC)."
    )
    commitment: Commitment | None = None
    charges: list[Charge] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PlanVersion:
        seen: set[str] = set()
        for charge in self.charges:
            if charge.id in seen:
                raise ValueError(f"charge id {charge.id!r} is used twice")
            seen.add(charge.id)
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self


class PlanOverride(_Strict):
    """Custom terms for one account, layered on every version of a plan in its window."""

    account: str = Field(min_length=1, description="Account id from accounts.csv.")
    plan: Code = Field(description="Code of the plan the terms apply to.")
    name: str | None = Field(default=None, description="Replaces the plan name on invoices.")
    effective_from: date | None = Field(
        default=None, description="First day of the terms; default: as the plan."
    )
    effective_to: date | None = Field(default=None, description="Exclusive end; default: open.")
    commitment: Commitment | None = Field(
        default=None,
        description="Replaces the plan's commitment (null removes it; absent keeps it).",
    )
    charges: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per charge id: fields replacing the plan's (a new `model` replaces the "
        "whole price); an unknown id adds a charge.",
        json_schema_extra={"items": {"type": "object", "required": ["id"]}},
    )
    remove_charges: list[Code] = Field(default_factory=list)

    @model_validator(mode="after")
    def _window(self) -> PlanOverride:
        if (
            self.effective_from is not None
            and self.effective_to is not None
            and self.effective_to <= self.effective_from
        ):
            raise ValueError("effective_to must be after effective_from")
        for index, charge in enumerate(self.charges):
            if "id" not in charge:
                raise ValueError(f"charges[{index}] needs an id")
        return self


@dataclass(frozen=True)
class CompiledVersion:
    """A plan version as it is priced: its window, and for overrides the account."""

    plan: PlanVersion
    effective_to: date | None
    base_code: str
    account_id: str | None = None

    @property
    def plan_code(self) -> str:
        if self.account_id is None:
            return self.base_code
        return f"{self.base_code}{OVERRIDE_SEPARATOR}{self.account_id}"


@dataclass(frozen=True)
class Reference:
    """The reference data plans are checked against."""

    meters: dict[str, dict[str, str]]
    currencies: dict[str, int]
    accounts: set[str] | None = None

    @classmethod
    def from_seeds(cls, seeds_dir: Path) -> Reference:
        meters = {row["meter_code"]: row for row in _read_rows(seeds_dir / "meters.csv")}
        currencies = {
            row["currency_code"]: int(row["minor_units"])
            for row in _read_rows(seeds_dir / "currencies.csv")
        }
        accounts_path = seeds_dir / "accounts.csv"
        accounts = (
            {row["account_id"] for row in _read_rows(accounts_path)}
            if accounts_path.exists()
            else None
        )
        return cls(meters=meters, currencies=currencies, accounts=accounts)


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads floats as Decimal from their source text."""


_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node))
)


def _format_location(loc: tuple, charge_ids: list[str] | None = None) -> str:
    path = ""
    parts = list(loc)
    for position, part in enumerate(parts):
        previous = parts[position - 1] if position else None
        if isinstance(part, str) and part in PRICE_MODELS and isinstance(previous, int):
            continue  # pydantic's union tag, not a field of the file
        if isinstance(part, int):
            if previous == "charges" and charge_ids is not None and part < len(charge_ids):
                path += f"[{charge_ids[part]}]"
            else:
                path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _error_message(error: dict) -> str:
    if error["type"] == "union_tag_invalid":
        return f"model: unknown price model {error['ctx']['tag']!r}; expected one of " + ", ".join(
            PRICE_MODELS
        )
    if error["type"] == "union_tag_not_found":
        return "model: Field required (one of " + ", ".join(PRICE_MODELS) + ")"
    return error["msg"]


def describe_validation_error(error: ValidationError, charge_ids: list[str] | None = None) -> str:
    """A pydantic error as `path: reason; ...` with the paths of the plan file."""
    problems = []
    for item in error.errors(include_url=False):
        location = _format_location(item["loc"], charge_ids)
        message = _error_message(item)
        if message.startswith("model: ") and location != "(top level)":
            problems.append(f"{location}.{message}")
        else:
            problems.append(f"{location}: {message}")
    return "; ".join(problems)


def load_yaml_exact(text: str) -> Any:
    """YAML with every float read as an exact Decimal from its source text."""
    return yaml.load(text, Loader=_DecimalLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml_exact(path.read_text())
    except yaml.YAMLError as error:
        raise PlanError(f"{path}: not valid YAML: {error}") from None


def load_plan_file(path: Path) -> PlanVersion:
    return _validate_plan(_read_yaml(path), path)


def _validate_plan(raw: Any, path: Path, charge_ids: list[str] | None = None) -> PlanVersion:
    try:
        return PlanVersion.model_validate(raw)
    except ValidationError as error:
        raise PlanError(f"{path}: {describe_validation_error(error, charge_ids)}") from None


def check_plan_file(path: Path, reference: Reference) -> PlanVersion:
    """A plan file validated on its own and against the reference data."""
    plan = load_plan_file(path)
    _check_reference(plan, path, reference)
    return plan


def load_override_file(path: Path) -> PlanOverride:
    raw = _read_yaml(path)
    try:
        return PlanOverride.model_validate(raw)
    except ValidationError as error:
        raise PlanError(f"{path}: {describe_validation_error(error)}") from None


def plan_files(plans_dir: Path) -> list[Path]:
    """Plan version files: every *.yaml/*.yml under plans_dir except overrides/ and drafts/."""
    skipped = {plans_dir / OVERRIDES_DIR, plans_dir / DRAFTS_DIR}
    files = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in plans_dir.rglob(pattern)
        if not any(parent in skipped for parent in path.parents)
    ]
    return sorted(files)


def override_files(plans_dir: Path) -> list[Path]:
    directory = plans_dir / OVERRIDES_DIR
    if not directory.is_dir():
        return []
    return sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])


def _check_reference(plan: PlanVersion, path: Path, reference: Reference, where: str = "") -> None:
    """Meters, currencies, dimensions and money precision against the reference data."""
    if plan.currency not in reference.currencies:
        raise PlanError(f"{path}: {where}currency: unknown currency {plan.currency!r}")
    minor_units = reference.currencies[plan.currency]
    amounts: list[tuple[str, Decimal | None]] = []
    if plan.commitment is not None:
        amounts.append(("commitment.minimum", plan.commitment.minimum))
    for index, charge in enumerate(plan.charges):
        at = f"{where}charges[{index}]"
        for field in MONEY_FIELDS:
            amounts.append((f"{at}.{field}", getattr(charge, field, None)))
        if isinstance(charge, FlatCharge):
            continue
        meter = reference.meters.get(charge.meter)
        if meter is None:
            raise PlanError(f"{path}: {at}.meter: unknown meter {charge.meter!r}")
        if charge.aggregation is not None and charge.aggregation != meter["aggregation"]:
            raise PlanError(
                f"{path}: {at}.aggregation: meter {charge.meter!r} aggregates by "
                f"{meter['aggregation']!r}, not {charge.aggregation!r}"
            )
        key = charge.dimension_key
        if key is not None and key != (meter.get("dimension_key") or None):
            known = meter.get("dimension_key") or "no dimension"
            raise PlanError(
                f"{path}: {at}: meter {charge.meter!r} has {known}; cannot price by {key!r}"
            )
        if isinstance(charge, PercentageCharge) and meter["aggregation"] != "sum":
            raise PlanError(
                f"{path}: {at}.meter: a percentage charge needs a sum meter (transaction "
                f"values); {charge.meter!r} aggregates by {meter['aggregation']!r}"
            )
        if isinstance(charge, SeatCharge) and meter["aggregation"] != "unique_count":
            raise PlanError(
                f"{path}: {at}.meter: a seat charge needs a unique_count meter; "
                f"{charge.meter!r} aggregates by {meter['aggregation']!r}"
            )
    for location, amount in amounts:
        if amount is not None and amount != amount.quantize(Decimal(1).scaleb(-minor_units)):
            raise PlanError(
                f"{path}: {location}: {amount} has more decimal places than {plan.currency} "
                f"allows ({minor_units})"
            )


def _windows(ordered: list[tuple[PlanVersion, Path]]) -> list[date | None]:
    """Exclusive end of each version: its effective_to, else the next version's start."""
    ends: list[date | None] = []
    for index, (plan, path) in enumerate(ordered):
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        end = plan.effective_to
        if following is not None:
            next_plan, next_path = following
            if next_plan.version == plan.version:
                raise PlanError(
                    f"{next_path}: version: plan {plan.code!r} version {plan.version} "
                    f"is also defined in {path}"
                )
            if next_plan.effective_from <= plan.effective_from:
                raise PlanError(
                    f"{next_path}: effective_from: version {next_plan.version} of {plan.code!r} "
                    f"must start after version {plan.version} ({plan.effective_from})"
                )
            if end is not None and end > next_plan.effective_from:
                raise PlanError(
                    f"{path}: effective_to: version {plan.version} of {plan.code!r} overlaps "
                    f"version {next_plan.version}, which starts {next_plan.effective_from}"
                )
            if next_plan.currency != plan.currency:
                raise PlanError(
                    f"{next_path}: currency: versions of {plan.code!r} must keep one currency "
                    f"({plan.currency})"
                )
            end = end or next_plan.effective_from
        ends.append(end)
    return ends


def _merge_charges(base: list[dict], override: PlanOverride) -> list[dict]:
    by_id = {charge["id"]: index for index, charge in enumerate(base)}
    merged = [copy.deepcopy(charge) for charge in base]
    for change in override.charges:
        index = by_id.get(change["id"])
        if index is None:
            merged.append(copy.deepcopy(change))
            continue
        current = merged[index]
        if "model" in change and change["model"] != current.get("model"):
            keep = {
                "id",
                "meter",
                "description",
                "filter",
                "group_by",
                "aggregation",
                "discount_percent",
                "minimum_spend",
                "maximum_spend",
            }
            current = {key: value for key, value in current.items() if key in keep}
        current.update(copy.deepcopy(change))
        merged[index] = current
    removed = set(override.remove_charges)
    unknown = removed - set(by_id)
    if unknown:
        raise ValueError(f"remove_charges: unknown charge ids {sorted(unknown)}")
    return [charge for charge in merged if charge["id"] not in removed]


def _apply_override(
    raw_base: dict, override: PlanOverride, path: Path, reference: Reference
) -> PlanVersion:
    merged = copy.deepcopy(raw_base)
    if override.name is not None:
        merged["name"] = override.name
    if "commitment" in override.model_fields_set:
        merged["commitment"] = (
            None
            if override.commitment is None
            else override.commitment.model_dump(exclude_none=True)
        )
    try:
        merged["charges"] = _merge_charges(raw_base.get("charges", []), override)
    except ValueError as error:
        raise PlanError(f"{path}: {error}") from None
    where = f"(on {override.plan} v{raw_base.get('version')}) "
    charge_ids = [str(charge.get("id")) for charge in merged["charges"]]
    try:
        plan = PlanVersion.model_validate(merged)
    except ValidationError as error:
        raise PlanError(f"{path}: {where}{describe_validation_error(error, charge_ids)}") from None
    _check_reference(plan, path, reference, where=where)
    return plan


def load_plans(plans_dir: Path, reference: Reference) -> list[CompiledVersion]:
    """Every plan version (and account override) under plans_dir, validated, with its window."""
    files = plan_files(plans_dir)
    if not files:
        raise PlanError(f"{plans_dir}: no plan files (*.yaml)")
    versions: dict[str, list[tuple[PlanVersion, Path]]] = defaultdict(list)
    raw_by_version: dict[tuple[str, int], dict] = {}
    for path in files:
        raw = _read_yaml(path)
        plan = _validate_plan(raw, path)
        _check_reference(plan, path, reference)
        versions[plan.code].append((plan, path))
        raw_by_version[(plan.code, plan.version)] = raw

    compiled: list[CompiledVersion] = []
    for code in sorted(versions):
        ordered = sorted(versions[code], key=lambda item: (item[0].version, str(item[1])))
        for (plan, _), end in zip(ordered, _windows(ordered), strict=True):
            compiled.append(CompiledVersion(plan=plan, effective_to=end, base_code=code))

    windows_by_target: dict[tuple[str, str], list[tuple[date, date | None, Path]]] = defaultdict(
        list
    )
    for path in override_files(plans_dir):
        override = load_override_file(path)
        if override.plan not in versions:
            raise PlanError(f"{path}: plan: unknown plan {override.plan!r}")
        if reference.accounts is not None and override.account not in reference.accounts:
            raise PlanError(f"{path}: account: unknown account {override.account!r}")
        start = override.effective_from or date.min
        for other_start, other_end, other_path in windows_by_target[
            (override.account, override.plan)
        ]:
            if start < (other_end or date.max) and other_start < (
                override.effective_to or date.max
            ):
                raise PlanError(
                    f"{path}: overrides {override.plan!r} for {override.account!r} in a window "
                    f"that overlaps {other_path}"
                )
        windows_by_target[(override.account, override.plan)].append(
            (start, override.effective_to, path)
        )
        for base in [item for item in compiled if item.base_code == override.plan]:
            window_start = max(base.plan.effective_from, start)
            window_end = _earliest(base.effective_to, override.effective_to)
            if window_end is not None and window_end <= window_start:
                continue
            plan = _apply_override(
                raw_by_version[(base.base_code, base.plan.version)], override, path, reference
            )
            plan = plan.model_copy(update={"effective_from": window_start})
            compiled.append(
                CompiledVersion(
                    plan=plan,
                    effective_to=window_end,
                    base_code=base.base_code,
                    account_id=override.account,
                )
            )
    return compiled


def _earliest(first: date | None, second: date | None) -> date | None:
    candidates = [value for value in (first, second) if value is not None]
    return min(candidates) if candidates else None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return (
            format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
        )
    return str(value)


CHARGE_COLUMNS = (
    "plan_code",
    "plan_version",
    "charge_id",
    "dimension_value",
    "charge_order",
    "dimension_match",
    "meter_code",
    "pricing_model",
    "description",
    "free_units",
    "package_size",
    "package_price",
    "package_rounding",
    "percentage_rate",
    "fixed_fee",
    "free_transactions",
    "free_amount",
    "transaction_minimum",
    "transaction_maximum",
    "flat_amount",
    "billing_timing",
    "prorate",
    "seat_proration",
    "minimum_spend",
    "maximum_spend",
    "discount_percent",
)


def _components(charge: Any) -> list[tuple[str, str, list[Tier]]]:
    """(dimension_value, dimension_match, tiers) for each priced component of a charge.

    dimension_match: all = the meter's total ('*'); value = one dimension value; each = every
    value found in usage that no `value` component of the charge claims (one line each).
    """
    if isinstance(charge, MatrixCharge):
        components = [
            (value, "value", [Tier(up_to=None, unit_price=price)])
            for value, price in sorted(charge.prices.items())
        ]
        if charge.default_unit_price is not None:
            components.append(
                (ALL_DIMENSIONS, "each", [Tier(up_to=None, unit_price=charge.default_unit_price)])
            )
        return components
    if isinstance(charge, PerUnitCharge | SeatCharge):
        tiers = [Tier(up_to=None, unit_price=charge.unit_price)]
    elif isinstance(charge, GraduatedCharge | VolumeCharge):
        tiers = list(charge.tiers)
    else:
        tiers = []
    if isinstance(charge, FlatCharge):
        return [(ALL_DIMENSIONS, "all", tiers)]
    if charge.filter:
        return [(next(iter(charge.filter.values())), "value", tiers)]
    if charge.group_by:
        return [(ALL_DIMENSIONS, "each", tiers)]
    return [(ALL_DIMENSIONS, "all", tiers)]


def _charge_row(version: CompiledVersion, charge: Any, order: int, value: str, match: str) -> dict:
    row = dict.fromkeys(CHARGE_COLUMNS)
    row.update(
        plan_code=version.plan_code,
        plan_version=version.plan.version,
        charge_id=charge.id,
        dimension_value=value,
        charge_order=order,
        dimension_match=match,
        meter_code=getattr(charge, "meter", None),
        pricing_model=charge.model,
        description=charge.description or getattr(charge, "meter", None) or charge.id,
        discount_percent=charge.discount_percent,
        minimum_spend=getattr(charge, "minimum_spend", None),
        maximum_spend=getattr(charge, "maximum_spend", None),
    )
    if isinstance(charge, PerUnitCharge | GraduatedCharge | VolumeCharge):
        row["free_units"] = charge.free_units
    elif isinstance(charge, PackageCharge):
        row.update(
            free_units=charge.free_units,
            package_size=charge.package_size,
            package_price=charge.package_price,
            package_rounding=charge.rounding,
        )
    elif isinstance(charge, PercentageCharge):
        row.update(
            percentage_rate=charge.rate,
            fixed_fee=charge.fixed_fee,
            free_transactions=charge.free_transactions,
            free_amount=charge.free_amount,
            transaction_minimum=charge.transaction_minimum,
            transaction_maximum=charge.transaction_maximum,
        )
    elif isinstance(charge, SeatCharge):
        row.update(free_units=charge.included_seats, seat_proration=charge.proration)
    elif isinstance(charge, FlatCharge):
        row.update(flat_amount=charge.amount, billing_timing=charge.billing, prorate=charge.prorate)
    return row


def price_table_rows(versions: list[CompiledVersion]) -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {name: [] for name in PRICE_TABLES}
    for version in versions:
        plan = version.plan
        commitment = plan.commitment
        tables["price_plans"].append(
            {
                "plan_code": version.plan_code,
                "plan_version": plan.version,
                "base_plan_code": version.base_code,
                "account_id": version.account_id,
                "plan_name": plan.name,
                "currency": plan.currency,
                "billing_interval": plan.billing_interval,
                "effective_from": plan.effective_from.isoformat(),
                "effective_to": version.effective_to.isoformat() if version.effective_to else None,
                "commitment_minimum": commitment.minimum if commitment else None,
                "commitment_discount_percent": commitment.discount_percent if commitment else None,
            }
        )
        for order, charge in enumerate(plan.charges, start=1):
            for value, match, tiers in _components(charge):
                tables["price_charges"].append(_charge_row(version, charge, order, value, match))
                lower = Decimal(0)
                for number, tier in enumerate(tiers, start=1):
                    tables["price_tiers"].append(
                        {
                            "plan_code": version.plan_code,
                            "plan_version": plan.version,
                            "charge_id": charge.id,
                            "dimension_value": value,
                            "tier_number": number,
                            "lower_bound": lower,
                            "upper_bound": tier.up_to,
                            "unit_price": tier.unit_price,
                            "flat_fee": tier.flat_fee,
                        }
                    )
                    lower = tier.up_to if tier.up_to is not None else lower
    return tables


TABLE_COLUMNS = {
    "price_plans": (
        "plan_code",
        "plan_version",
        "base_plan_code",
        "account_id",
        "plan_name",
        "currency",
        "billing_interval",
        "effective_from",
        "effective_to",
        "commitment_minimum",
        "commitment_discount_percent",
    ),
    "price_charges": CHARGE_COLUMNS,
    "price_tiers": (
        "plan_code",
        "plan_version",
        "charge_id",
        "dimension_value",
        "tier_number",
        "lower_bound",
        "upper_bound",
        "unit_price",
        "flat_fee",
    ),
}


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def compile_plans(plans_dir: Path, seeds_dir: Path) -> dict[str, int]:
    """Validate plans_dir and write the price tables as seed CSVs into seeds_dir.

    Meters, currencies and (for overrides) accounts are checked against seeds_dir/meters.csv,
    currencies.csv and accounts.csv. Returns the number of rows written per table. Output is
    byte-stable for the same input.
    """
    versions = load_plans(plans_dir, Reference.from_seeds(seeds_dir))
    counts: dict[str, int] = {}
    for table, rows in price_table_rows(versions).items():
        path = seeds_dir / f"{table}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS[table], lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: _text(value) for key, value in row.items()} for row in rows)
        counts[table] = len(rows)
    return counts


def plan_json_schema() -> dict:
    """JSON Schema of a plan file and of an override file (docs/plan.schema.json)."""
    plan_schema = TypeAdapter(PlanVersion).json_schema()
    override_schema = TypeAdapter(PlanOverride).json_schema()
    definitions = {**plan_schema.pop("$defs", {}), **override_schema.pop("$defs", {})}
    definitions["PlanVersion"] = plan_schema
    definitions["PlanOverride"] = override_schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dagster-billing price plan",
        "description": "A plan version (plans/*.yaml) or an account override "
        "(plans/overrides/*.yaml). Generated by `billing plans schema`; see docs/plans.md.",
        "oneOf": [{"$ref": "#/$defs/PlanVersion"}, {"$ref": "#/$defs/PlanOverride"}],
        "$defs": dict(sorted(definitions.items())),
    }


def plan_json_schema_text() -> str:
    return json.dumps(plan_json_schema(), indent=2, sort_keys=False) + "\n"
