"""One money representation: Decimal with two places in the provider's
currency. Conversion to Stripe's minor units lives here and nowhere else;
display goes through portal.formatting.money (the active language, the
provider's country and currency), which calls format_money."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_currency, get_currency_precision

TWO_PLACES = Decimal("0.01")


def to_decimal(value) -> Decimal:
    return Decimal(str(value)).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    exponent = get_currency_precision(currency.upper())
    return int((amount * (10**exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor_units(value: int, currency: str) -> Decimal:
    exponent = get_currency_precision(currency.upper())
    return to_decimal(Decimal(value) / (10**exponent))


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency.upper(), locale=locale)
