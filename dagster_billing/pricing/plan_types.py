"""The vocabulary of plan files: exact numeric types with their limits, and the base model."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PRICE_TABLES = ("price_plans", "price_charges", "price_tiers")
ALL_DIMENSIONS = "*"
OVERRIDES_DIR = "overrides"
DRAFTS_DIR = "drafts"
OVERRIDE_SEPARATOR = "@"
MAX_DECIMAL_PLACES = 10
# Every price and amount a plan states is below 10^12 and every quantity below 10^18: rating
# multiplies and sums them in DECIMAL(38,10) (below 10^28), the run-rate multiplies a period's
# subtotal by its seconds (3.2 x 10^7 in a year), and amounts leave as BIGINT minor units
# (below 9.2 x 10^18): the limits keep every derived amount of a plan inside those types
# (decision 53).
MAX_AMOUNT = 10**12
MAX_QUANTITY = 10**18

Price = Annotated[
    Decimal,
    Field(ge=0, lt=MAX_AMOUNT, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False),
]
Quantity = Annotated[
    Decimal,
    Field(ge=0, lt=MAX_QUANTITY, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False),
]
PositiveQuantity = Annotated[
    Decimal,
    Field(gt=0, lt=MAX_QUANTITY, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False),
]
# An amount as the plan states it (a flat fee, a minimum, a commitment), with up to 10 decimal
# places whatever the currency (20.005 USD, 250.5 JPY): it is rounded once, on its invoice line.
Money = Annotated[
    Decimal, Field(ge=0, lt=MAX_AMOUNT, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Percent = Annotated[
    Decimal, Field(gt=0, le=100, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Rate = Annotated[
    Decimal, Field(ge=0, le=100, decimal_places=MAX_DECIMAL_PLACES, allow_inf_nan=False)
]
Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
DimensionValue = Annotated[str, Field(min_length=1, max_length=255)]

# Multi-dimensional meters (decision 81): meters.csv's dimension_key lists a meter's keys separated
# by `|` (model|region). An event's dimension value is then the canonical combination
# `model=gpt-4o|region=eu`, keys in declared order, `*` for a missing key, each value with `%`,
# `|` and `*` percent-encoded (the same in SQL: macro event_dimension_value); "*" when every key is
# missing. A meter with one key keeps the bare value (gpt-4o), so nothing single-key changes.
DIMENSION_SEPARATOR = "|"
MAX_DIMENSION_KEYS = 4


def dimension_keys(dimension_key: str | None) -> list[str]:
    """The keys a meter declares (meters.csv's dimension_key), in order; [] for none."""
    return [key for key in (dimension_key or "").split(DIMENSION_SEPARATOR) if key]


def encode_dimension_value(value: str) -> str:
    return value.replace("%", "%25").replace(DIMENSION_SEPARATOR, "%7C").replace("*", "%2A")


def dimension_combination(keys: list[str], values: dict[str, str]) -> str:
    """The dimension value of usage (or of a filter) with these values on a meter with these
    keys: the bare value for one key, else `k1=v1|k2=v2` with `*` for a key without a value."""
    if len(keys) == 1:
        return values.get(keys[0], ALL_DIMENSIONS)
    if not any(key in values for key in keys):
        return ALL_DIMENSIONS
    return DIMENSION_SEPARATOR.join(
        f"{key}={encode_dimension_value(values[key]) if key in values else ALL_DIMENSIONS}"
        for key in keys
    )


class PlanError(ValueError):
    """A plan file that cannot be used, with the file, the path inside it and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
