"""Money in Python: exact Decimals, rounded by the same rule as the dbt macro round_money.

The rule: half-up (a tie rounds away from zero) to the currency's minor unit, once per invoice
line. Amounts are computed in dbt; Python only formats them and re-checks sums.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel import Locale


def round_money(amount: Decimal, minor_units: int) -> Decimal:
    """Round half-up to `minor_units` decimal places: 10.125 -> 10.13, JPY 100.5 -> 101."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(amount).__name__}")
    return amount.quantize(Decimal(1).scaleb(-minor_units), rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, minor_units: int) -> str:
    """An exact decimal string with exactly `minor_units` places ("130.00", JPY "101").

    Refuses amounts that are not already rounded: formatting must never round silently.
    """
    rounded = round_money(amount, minor_units)
    if rounded != amount:
        raise ValueError(f"{amount} is not rounded to {minor_units} decimal places")
    return f"{rounded:f}"


def format_decimal(value: Decimal | None) -> str:
    """A quantity or unit price as a plain decimal string without exponent or trailing zeros."""
    if value is None:
        return ""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def format_currency_amount(
    amount: Decimal, currency: str, minor_units: int, locale: str | Locale
) -> str:
    """A rounded amount for people, in `locale` (babel): "$1,234.50", "1.234,50 €", "¥1,235".

    The amount must already be rounded to `minor_units` (format_money checks it): babel rounds
    half-even, so it is given the exact digits and told not to quantize them."""
    from babel.numbers import format_currency

    exact = Decimal(format_money(amount, minor_units))
    return format_currency(exact, currency, locale=locale, decimal_quantization=False)


def format_quantity(value: Decimal | None, locale: str | Locale) -> str:
    """A quantity or unit price for people, every digit kept: "1,234.5", "0.00001"."""
    from babel.numbers import format_decimal as babel_decimal

    if value is None:
        return ""
    return babel_decimal(Decimal(format_decimal(value)), locale=locale, decimal_quantization=False)
