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
