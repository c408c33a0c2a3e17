"""Price models of a plan's charges: one pydantic model per model, discriminated by `model`."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dagster_billing.pricing.plan_types import (
    Code,
    DimensionValue,
    Money,
    Percent,
    PositiveQuantity,
    Price,
    Quantity,
    Rate,
    _Strict,
)


class Tier(_Strict):
    up_to: Quantity | None = Field(
        description="Inclusive, cumulative upper bound of the tier; null = unbounded (last tier)."
    )
    unit_price: Price = Field(description="Price of one unit in this tier.")
    flat_fee: Price = Field(
        default=Decimal(0),
        description="Charged once when the quantity enters the tier (the first tier's even at zero).",
    )


class PercentTier(_Strict):
    up_to: Quantity | None = Field(
        description="Inclusive, cumulative upper bound of the tier (in transaction value); "
        "null = unbounded (last tier)."
    )
    rate: Rate = Field(description="Percent of the value in this tier (1.5 = 1.5 %).")
    flat_fee: Price = Field(
        default=Decimal(0),
        description="Charged once when the value enters the tier (the first tier's even at zero).",
    )


class Block(_Strict):
    block_size: PositiveQuantity = Field(description="Units in one block.")
    max_blocks: int | None = Field(
        ge=1,
        description="Blocks in this tier before the next tier applies; null = unlimited (last "
        "tier only).",
    )
    block_price: Price = Field(description="Price of one block; a started block costs in full.")


def _check_tiers(tiers: list[Tier] | list[PercentTier]) -> list:
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
        description="Price only usage with these dimension values, e.g. {model: gpt-4o}; on a "
        "meter with several keys any of them ({region: eu}: every model in eu).",
    )
    group_by: str | list[str] | None = Field(
        default=None,
        description="Dimension key (e.g. model): one line per value found in usage, each priced "
        "on its own; on a meter with several keys, all of them ([model, region]): one line per "
        "combination.",
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
    def _some_dimension(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("filter takes at least one dimension key and value")
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
    def dimension_filters(self) -> list[dict[str, str]]:
        """The filters of the charge's priced components (a matrix has one per price)."""
        return [self.filter] if self.filter else []

    @property
    def group_keys(self) -> list[str]:
        if self.group_by is None:
            return []
        return [self.group_by] if isinstance(self.group_by, str) else list(self.group_by)


PAY_IN_ADVANCE = Field(
    default=False,
    description="Each event pays at once what it adds: cost(quantity after it) - cost(quantity "
    "before it) in the period, on its own instant line (sum and count meters; Lago's pay in "
    "advance).",
)


class PerUnitCharge(_MeteredCharge):
    """Every unit at one price."""

    model: Literal["per_unit"]
    pay_in_advance: bool = PAY_IN_ADVANCE
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
    pay_in_advance: bool = PAY_IN_ADVANCE
    proration: Literal["none", "daily"] = Field(
        default="none",
        description="daily (unique_count meters): each seat is a full unit that chooses the tier "
        "and is priced on its held days / days of the period; flat fees are not prorated "
        "(Lago's prorated graduated charge).",
    )


class VolumeCharge(_TieredCharge):
    """Every unit at the price of the tier the total falls in, plus that tier's flat fee."""

    model: Literal["volume"]


class PackageCharge(_MeteredCharge):
    """A price per block of package_size units; free units first, a started block in full."""

    model: Literal["package"]
    pay_in_advance: bool = PAY_IN_ADVANCE
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
        default=None, ge=0, description="The period's first N transactions cost nothing (0: none)."
    )
    free_amount: Quantity | None = Field(
        default=None,
        description="The period's first X of transaction value costs nothing (0: none).",
    )
    transaction_minimum: Price | None = Field(
        default=None, description="Fee of a charged transaction is at least this."
    )
    transaction_maximum: Price | None = Field(
        default=None, description="Fee of a charged transaction is at most this."
    )

    @field_validator("free_transactions", "free_amount")
    @classmethod
    def _zero_is_none(cls, value: int | Decimal | None) -> int | Decimal | None:
        return None if value == 0 else value

    @model_validator(mode="after")
    def _min_below_max(self) -> PercentageCharge:
        if (
            self.transaction_minimum is not None
            and self.transaction_maximum is not None
            and self.transaction_minimum > self.transaction_maximum
        ):
            raise ValueError("transaction_minimum must not exceed transaction_maximum")
        return self


class MatrixPrice(_Strict):
    filter: dict[str, DimensionValue] = Field(
        min_length=1,
        description="Dimension values this price applies to: every key of the meter (one "
        "combination) or some of them ({region: eu}: any model in eu).",
    )
    unit_price: Price


class MatrixCharge(_MeteredCharge):
    """A unit price per value of one dimension (e.g. per model), or per combination or partial
    filter of several (model x region); each value, combination or filter is its own line."""

    model: Literal["matrix"]
    dimension: str | None = Field(
        default=None,
        description="The meter's dimension key, e.g. model or region (with `prices` by value).",
    )
    prices: dict[DimensionValue, Price] | list[MatrixPrice] = Field(
        min_length=1,
        description="Unit price per dimension value ({gpt-4o: 0.00001}, with `dimension`), or a "
        "list of {filter, unit_price}: usage matching several filters is priced by the most "
        "specific (most keys); two filters with as many keys that both match a combination "
        "must have that combination listed too.",
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
        if isinstance(self.prices, dict) and self.dimension is None:
            raise ValueError("prices by value need `dimension` (or list {filter, unit_price})")
        if isinstance(self.prices, list):
            if self.dimension is not None:
                raise ValueError("prices as a list of filters take no `dimension`")
            check_filter_precedence([price.filter for price in self.prices])
        return self

    @property
    def priced_filters(self) -> list[tuple[dict[str, str], Decimal]]:
        """(filter, unit price) of every listed price."""
        if isinstance(self.prices, dict):
            return [({self.dimension: value}, price) for value, price in self.prices.items()]
        return [(price.filter, price.unit_price) for price in self.prices]

    @property
    def dimension_filters(self) -> list[dict[str, str]]:
        return [filter_ for filter_, _ in self.priced_filters]


def _describe(filter_: dict[str, str]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in filter_.items()) + "}"


def check_filter_precedence(filters: list[dict[str, str]]) -> None:
    """The most specific filter (most keys) prices a combination; refuse a tie: two filters with
    as many keys that can match one combination, unless that combination (both merged) is
    listed too and so wins for it (decision 81)."""
    listed = [dict(sorted(filter_.items())) for filter_ in filters]
    for (i, first), (j, second) in itertools.combinations(enumerate(listed), 2):
        if first == second:
            raise ValueError(f"prices[{i}] and prices[{j}] have the same filter {_describe(first)}")
        if len(first) != len(second):
            continue
        if any(first[key] != second[key] for key in first.keys() & second.keys()):
            continue  # they cannot match the same usage
        merged = dict(sorted({**first, **second}.items()))
        if merged not in listed:
            raise ValueError(
                f"prices[{i}] {_describe(first)} and prices[{j}] {_describe(second)} are "
                f"ambiguous: both match {_describe(merged)} with {len(first)} key(s) each; "
                "list that filter too (the most specific filter wins) or remove one"
            )


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


class GraduatedPercentageCharge(_MeteredCharge):
    """A percentage of the period's transaction value, each part at the rate of its tier, plus a
    tier's flat fee once the value enters it (Lago's graduated percentage)."""

    model: Literal["graduated_percentage"]
    tiers: list[PercentTier] = Field(description="Ascending; the last has up_to: null.")

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: list[PercentTier]) -> list[PercentTier]:
        return _check_tiers(tiers)


class TieredBlocksCharge(_MeteredCharge):
    """Units counted in blocks, tier by tier: each tier holds up to max_blocks blocks of its
    block_size at its block_price, a started block costs in full (Kill Bill's tiered blocks)."""

    model: Literal["tiered_blocks"]
    tiers: list[Block] = Field(description="In order; only the last has max_blocks: null.")
    policy: Literal["all_tiers", "top_tier"] = Field(
        default="all_tiers",
        description="all_tiers: the blocks of every tier the quantity reaches, each at its tier's "
        "price; top_tier: the whole quantity in blocks of the tier it ends in, at that tier's "
        "price (Kill Bill's TierBlockPolicy).",
    )

    @field_validator("tiers")
    @classmethod
    def _unlimited_last(cls, tiers: list[Block]) -> list[Block]:
        if not tiers:
            raise ValueError("tiers must not be empty")
        if any(tier.max_blocks is None for tier in tiers[:-1]):
            raise ValueError("only the last tier may have max_blocks: null")
        if tiers[-1].max_blocks is not None:
            raise ValueError("the last tier must have max_blocks: null (unlimited)")
        return tiers


class DynamicCharge(_MeteredCharge):
    """The event carries the amount: the charge is the sum of the period's event amounts,
    times an optional mark-up multiplier."""

    model: Literal["dynamic"]
    amount_property: str | None = Field(
        default=None,
        description="Event property with the amount (e.g. cost); the event value stays the "
        "quantity, and a period whose values sum to 0 costs nothing (Lago). Unset: the event "
        "value is the amount (OpenMeter).",
    )
    multiplier: Annotated[
        Decimal, Field(gt=0, lt=10**6, decimal_places=10, allow_inf_nan=False)
    ] = Field(default=Decimal(1), description="Mark-up applied to the amounts (1.2 = +20 %).")


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
    | GraduatedPercentageCharge
    | TieredBlocksCharge
    | DynamicCharge
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
    "graduated_percentage",
    "tiered_blocks",
    "dynamic",
    "flat",
)
# Models rated on the transactions (event values) of a sum meter.
SUM_METER_MODELS = ("percentage", "graduated_percentage", "dynamic")
