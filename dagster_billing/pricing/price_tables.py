"""The compiler: validated plan versions -> the price tables (seed CSVs) dbt rating joins."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from dagster_billing.pricing.plan_charges import (
    DynamicCharge,
    FlatCharge,
    GraduatedCharge,
    GraduatedPercentageCharge,
    MatrixCharge,
    PackageCharge,
    PercentageCharge,
    PerUnitCharge,
    SeatCharge,
    TieredBlocksCharge,
    VolumeCharge,
)
from dagster_billing.pricing.plan_loader import CompiledVersion, Reference, load_plans
from dagster_billing.pricing.plan_types import (
    ALL_DIMENSIONS,
    PRICE_TABLES,
    dimension_combination,
    dimension_keys,
)


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
    "block_policy",
    "amount_property",
    "multiplier",
    "pay_in_advance",
)


@dataclass(frozen=True)
class TierRow:
    """One row of price_tiers: an upper bound (None: unbounded), the price of a unit (or of a
    block), a flat fee, and for display the block size or the rate in percent."""

    upper_bound: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = Decimal(0)
    block_size: Decimal | None = None
    rate_percent: Decimal | None = None


def _tier_rows(charge: Any) -> list[TierRow]:
    if isinstance(charge, PerUnitCharge | SeatCharge):
        return [TierRow(None, charge.unit_price)]
    if isinstance(charge, GraduatedCharge | VolumeCharge):
        return [TierRow(tier.up_to, tier.unit_price, tier.flat_fee) for tier in charge.tiers]
    if isinstance(charge, GraduatedPercentageCharge):
        return [
            TierRow(tier.up_to, tier.rate / 100, tier.flat_fee, rate_percent=tier.rate)
            for tier in charge.tiers
        ]
    if isinstance(charge, TieredBlocksCharge):
        rows, bound = [], Decimal(0)
        for tier in charge.tiers:
            bound = None if tier.max_blocks is None else bound + tier.max_blocks * tier.block_size
            rows.append(TierRow(bound, tier.block_price, block_size=tier.block_size))
        return rows
    return []


def _filter_component(filter_: dict[str, str], keys: list[str]) -> tuple[str, str]:
    """(dimension_value, dimension_match) of a filter: `value` for one value or a whole
    combination, `filter` for some keys of a multi-key meter (`model=*|region=eu`)."""
    if len(keys) < 2:
        return next(iter(filter_.values())), "value"
    match = "value" if len(filter_) == len(keys) else "filter"
    return dimension_combination(keys, filter_), match


def _components(charge: Any, keys: list[str]) -> list[tuple[str, str, list[TierRow]]]:
    """(dimension_value, dimension_match, tiers) for each priced component of a charge.

    dimension_match: all = the meter's total ('*'); value = one dimension value (or one whole
    combination of a multi-key meter); filter = the combinations matching some keys, that no
    more specific component of the charge claims; each = every value found in usage that no
    `value` or `filter` component of the charge claims (one line each).
    """
    if isinstance(charge, MatrixCharge):
        components = sorted(
            (*_filter_component(filter_, keys), [TierRow(None, price)])
            for filter_, price in charge.priced_filters
        )
        if charge.default_unit_price is not None:
            components.append((ALL_DIMENSIONS, "each", [TierRow(None, charge.default_unit_price)]))
        return components
    tiers = _tier_rows(charge)
    if isinstance(charge, FlatCharge):
        return [(ALL_DIMENSIONS, "all", tiers)]
    if charge.filter:
        return [(*_filter_component(charge.filter, keys), tiers)]
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
        pay_in_advance=getattr(charge, "pay_in_advance", False),
    )
    if isinstance(charge, PerUnitCharge | GraduatedCharge | VolumeCharge):
        row["free_units"] = charge.free_units
        if isinstance(charge, GraduatedCharge) and charge.proration == "daily":
            row["seat_proration"] = "daily"
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
    elif isinstance(charge, TieredBlocksCharge):
        row.update(block_policy=charge.policy)
    elif isinstance(charge, DynamicCharge):
        row.update(amount_property=charge.amount_property, multiplier=charge.multiplier)
    return row


def price_table_rows(
    versions: list[CompiledVersion], meters: dict[str, dict[str, str]] | None = None
) -> dict[str, list[dict]]:
    """The price tables of the versions; `meters` (meters.csv rows by code) gives the dimension
    keys of multi-key meters (without it every meter has at most one)."""
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
            meter = (meters or {}).get(getattr(charge, "meter", None)) or {}
            keys = dimension_keys(meter.get("dimension_key"))
            for value, match, tiers in _components(charge, keys):
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
                            "upper_bound": tier.upper_bound,
                            "unit_price": tier.unit_price,
                            "flat_fee": tier.flat_fee,
                            "block_size": tier.block_size,
                            "rate_percent": tier.rate_percent,
                        }
                    )
                    lower = tier.upper_bound if tier.upper_bound is not None else lower
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
        "block_size",
        "rate_percent",
    ),
}


def compile_plans(plans_dir: Path, seeds_dir: Path) -> dict[str, int]:
    """Validate plans_dir and write the price tables as seed CSVs into seeds_dir.

    Meters, currencies and (for overrides) accounts are checked against seeds_dir/meters.csv,
    currencies.csv and accounts.csv. Returns the number of rows written per table. Output is
    byte-stable for the same input.
    """
    reference = Reference.from_seeds(seeds_dir)
    versions = load_plans(plans_dir, reference)
    counts: dict[str, int] = {}
    for table, rows in price_table_rows(versions, reference.meters).items():
        path = seeds_dir / f"{table}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS[table], lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: _text(value) for key, value in row.items()} for row in rows)
        counts[table] = len(rows)
    return counts
