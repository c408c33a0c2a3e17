"""Numbers, money and dates for people, in the reader's locale (babel), from exact values.

The locale is the first one of the browser's Accept-Language that babel knows (en_US without
one). Money goes through lib.money.format_currency_amount, which refuses an amount that is not
already rounded to the currency's minor unit: the portal never rounds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_interval
from babel.numbers import format_percent, get_currency_precision

from dagster_billing.lib.money import format_currency_amount, format_quantity

DEFAULT_LOCALE = "en_US"
MAX_LANGUAGES = 8


def negotiate_locale(accept_language: str | None) -> str:
    """The best locale babel knows from an Accept-Language header ("de-CH,de;q=0.9,en;q=0.8")."""
    ranked = []
    for position, item in enumerate((accept_language or "").split(",")[:MAX_LANGUAGES]):
        tag, _, parameters = item.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        try:
            return str(Locale.parse(tag, sep="-"))
        except (ValueError, UnknownLocaleError):
            continue
    return DEFAULT_LOCALE


class Formatter:
    """The template's formatting functions for one request's locale. The babel Locale is parsed
    once (babel parses a locale string again on every call) and dates are formatted once each."""

    def __init__(self, locale: str, minor_units: dict[str, int] | None = None) -> None:
        self.locale = locale
        self._locale = Locale.parse(locale)
        self.minor_units = minor_units or {}
        self._dates: dict[date, str] = {}

    def money(self, amount: Decimal | None, currency: str, minor_units: int | None = None) -> str:
        if amount is None:
            return ""
        if minor_units is None:
            minor_units = self.minor_units.get(currency, get_currency_precision(currency))
        return format_currency_amount(amount, currency, minor_units, self._locale)

    def quantity(self, value: Decimal | int | None) -> str:
        if value is None:
            return ""
        return format_quantity(Decimal(value), self._locale)

    def percent(self, percent: Decimal | None) -> str:
        """48.3 (per cent) -> "48.3%", every digit kept."""
        if percent is None:
            return ""
        return format_percent(
            Decimal(percent) / 100, locale=self._locale, decimal_quantization=False
        )

    def date(self, value: date | None) -> str:
        if value is None:
            return ""
        if value not in self._dates:
            self._dates[value] = format_date(value, "medium", locale=self._locale)
        return self._dates[value]

    def datetime(self, value: datetime | None) -> str:
        """A UTC timestamp of the data (as_of, crossed_hour), labelled UTC."""
        if value is None:
            return ""
        return format_datetime(value, "medium", tzinfo=None, locale=self._locale) + " UTC"

    def period(self, start: date, end: date) -> str:
        """A billing period [start, end) as people write it: "Feb 1 - 28, 2026"."""
        return format_interval(start, end - timedelta(days=1), "yMMMd", locale=self._locale)

    def month(self, value: date) -> str:
        return format_date(value, "MMMM y", locale=self._locale)
