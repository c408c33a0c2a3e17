"""Declarative price plans: YAML in plans/ -> validated models -> typed price tables (seed CSVs).

One YAML file is one plan version. Numbers are read as exact decimals (never floats), whether
written as `0.0009` or `"0.0009"`. A per-unit price compiles to one unbounded tier, so rating in
SQL knows only tiers (see dbt_project/models/intermediate/int_usage_rated.sql).
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PRICE_TABLES = ("price_plans", "price_charges", "price_tiers")
ALL_DIMENSIONS = "*"

NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]


class PlanError(ValueError):
    """A plan file that cannot be used, with the file, the path inside it and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    up_to: NonNegativeDecimal | None = Field(
        description="Inclusive, cumulative upper bound of the tier; null = unbounded (last tier)."
    )
    unit_price: NonNegativeDecimal = Field(description="Price of one unit in this tier.")
    flat_fee: NonNegativeDecimal = Field(
        default=Decimal(0), description="Charged once when the quantity enters the tier."
    )


class Charge(_Strict):
    id: Code
    meter: str = Field(description="Meter code from seeds/meters.csv, e.g. api.requests.")
    description: str | None = None
    dimension: str = Field(
        default=ALL_DIMENSIONS,
        description="Price only usage with this dimension value (e.g. a model); '*' = all.",
    )
    model: Literal["per_unit", "graduated", "volume"]
    unit_price: NonNegativeDecimal | None = Field(default=None, description="per_unit only.")
    tiers: list[Tier] | None = Field(default=None, description="graduated and volume only.")

    @model_validator(mode="after")
    def _price_matches_model(self) -> Charge:
        if self.model == "per_unit":
            if self.unit_price is None or self.tiers is not None:
                raise ValueError("a per_unit charge takes unit_price and no tiers")
            return self
        if self.tiers is None or self.unit_price is not None:
            raise ValueError(f"a {self.model} charge takes tiers and no unit_price")
        if not self.tiers:
            raise ValueError("tiers must not be empty")
        bounds = [tier.up_to for tier in self.tiers]
        if any(bound is None for bound in bounds[:-1]):
            raise ValueError("only the last tier may have up_to: null")
        if bounds[-1] is not None:
            raise ValueError("the last tier must have up_to: null (unbounded)")
        finite = [bound for bound in bounds if bound is not None]
        if any(b <= a for a, b in itertools.pairwise(finite)) or (finite and finite[0] <= 0):
            raise ValueError("tier up_to bounds must be positive and strictly ascending")
        return self

    def price_tiers(self) -> list[Tier]:
        if self.model == "per_unit":
            return [Tier(up_to=None, unit_price=self.unit_price)]
        return list(self.tiers or [])


class PlanVersion(_Strict):
    code: Code
    version: int = Field(ge=1)
    name: str
    effective_from: date
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    billing_interval: Literal["month"] = "month"
    charges: list[Charge] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_charge_ids(self) -> PlanVersion:
        seen: set[str] = set()
        for charge in self.charges:
            if charge.id in seen:
                raise ValueError(f"charge id {charge.id!r} is used twice")
            seen.add(charge.id)
        return self


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads floats as Decimal from their source text."""


_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node))
)


def _format_location(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def load_plan_file(path: Path) -> PlanVersion:
    try:
        raw = yaml.load(path.read_text(), Loader=_DecimalLoader)
    except yaml.YAMLError as error:
        raise PlanError(f"{path}: not valid YAML: {error}") from None
    try:
        return PlanVersion.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{_format_location(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise PlanError(f"{path}: {problems}") from None


def load_plans(
    plans_dir: Path, *, known_meters: set[str], known_currencies: set[str]
) -> list[tuple[PlanVersion, date | None]]:
    """Every plan version under plans_dir, validated, with its exclusive effective_to."""
    files = sorted(plans_dir.rglob("*.yaml")) + sorted(plans_dir.rglob("*.yml"))
    if not files:
        raise PlanError(f"{plans_dir}: no plan files (*.yaml)")
    versions: dict[str, list[tuple[PlanVersion, Path]]] = defaultdict(list)
    for path in files:
        plan = load_plan_file(path)
        if plan.currency not in known_currencies:
            raise PlanError(f"{path}: currency: unknown currency {plan.currency!r}")
        for index, charge in enumerate(plan.charges):
            if charge.meter not in known_meters:
                raise PlanError(f"{path}: charges[{index}].meter: unknown meter {charge.meter!r}")
        versions[plan.code].append((plan, path))

    compiled: list[tuple[PlanVersion, date | None]] = []
    for code in sorted(versions):
        ordered = sorted(versions[code], key=lambda item: item[0].version)
        for (previous, previous_path), (current, current_path) in itertools.pairwise(ordered):
            if current.version == previous.version:
                raise PlanError(
                    f"{current_path}: version: plan {code!r} version {current.version} "
                    f"is also defined in {previous_path}"
                )
            if current.effective_from <= previous.effective_from:
                raise PlanError(
                    f"{current_path}: effective_from: version {current.version} of {code!r} must "
                    f"start after version {previous.version} ({previous.effective_from})"
                )
        for index, (plan, _) in enumerate(ordered):
            next_start = ordered[index + 1][0].effective_from if index + 1 < len(ordered) else None
            compiled.append((plan, next_start))
    return compiled


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return (
            format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
        )
    return str(value)


def price_table_rows(plans: list[tuple[PlanVersion, date | None]]) -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {name: [] for name in PRICE_TABLES}
    for plan, effective_to in plans:
        tables["price_plans"].append(
            {
                "plan_code": plan.code,
                "plan_version": plan.version,
                "plan_name": plan.name,
                "currency": plan.currency,
                "billing_interval": plan.billing_interval,
                "effective_from": plan.effective_from.isoformat(),
                "effective_to": effective_to.isoformat() if effective_to else None,
            }
        )
        for charge in plan.charges:
            tables["price_charges"].append(
                {
                    "plan_code": plan.code,
                    "plan_version": plan.version,
                    "charge_id": charge.id,
                    "meter_code": charge.meter,
                    "pricing_model": charge.model,
                    "dimension_value": charge.dimension,
                    "description": charge.description or charge.meter,
                }
            )
            lower = Decimal(0)
            for number, tier in enumerate(charge.price_tiers(), start=1):
                tables["price_tiers"].append(
                    {
                        "plan_code": plan.code,
                        "plan_version": plan.version,
                        "charge_id": charge.id,
                        "tier_number": number,
                        "lower_bound": lower,
                        "upper_bound": tier.up_to,
                        "unit_price": tier.unit_price,
                        "flat_fee": tier.flat_fee,
                    }
                )
                lower = tier.up_to if tier.up_to is not None else lower
    return tables


def _read_column(path: Path, column: str) -> set[str]:
    with path.open(newline="") as handle:
        return {row[column] for row in csv.DictReader(handle)}


def compile_plans(plans_dir: Path, seeds_dir: Path) -> dict[str, int]:
    """Validate plans_dir and write the price tables as seed CSVs into seeds_dir.

    Meters and currencies are checked against seeds_dir/meters.csv and currencies.csv.
    Returns the number of rows written per table. Output is byte-stable for the same input.
    """
    plans = load_plans(
        plans_dir,
        known_meters=_read_column(seeds_dir / "meters.csv", "meter_code"),
        known_currencies=_read_column(seeds_dir / "currencies.csv", "currency_code"),
    )
    counts: dict[str, int] = {}
    for table, rows in price_table_rows(plans).items():
        path = seeds_dir / f"{table}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: _text(value) for key, value in row.items()} for row in rows)
        counts[table] = len(rows)
    return counts
