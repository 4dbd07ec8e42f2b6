"""VAT on an order's lines: net, VAT per rate and gross, one way for the
order's charge, its page and its invoice.

Each line carries its rate (a percentage copied from the programme, or the
provider's standard rate). Lines are summed per rate and the VAT of each rate
is rounded once, half up (the EU's per-rate rounding on an invoice): prices
that include VAT split into net and VAT, prices without it get VAT added.
A provider that does not charge VAT has no tax lines: gross is the sum."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from portal.money import TWO_PLACES

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RateTotal:
    rate: Decimal  # 22.00 (%)
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class TaxSummary:
    charged: bool  # the provider charges VAT: show the tax lines
    prices_include_vat: bool
    net: Decimal
    vat: Decimal
    gross: Decimal
    rates: list[RateTotal] = field(default_factory=list)

    def as_snapshot(self) -> dict[str, Any]:
        """For an invoice's frozen body (amounts as strings)."""
        return {
            "charges_vat": self.charged,
            "prices_include_vat": self.prices_include_vat,
            "net": str(self.net),
            "vat": str(self.vat),
            "total": str(self.gross),
            "tax": [
                {"rate": str(r.rate), "net": str(r.net), "vat": str(r.vat), "gross": str(r.gross)}
                for r in self.rates
            ],
        }


def _round(value: Decimal) -> Decimal:
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def tax_summary(
    lines: Iterable[tuple[Decimal, Decimal]], *, charges_vat: bool, prices_include_vat: bool
) -> TaxSummary:
    """`lines`: (amount, VAT rate in %) of each line, as priced."""
    by_rate: dict[Decimal, Decimal] = {}
    for amount, rate in lines:
        key = Decimal(rate or 0).quantize(TWO_PLACES)
        by_rate[key] = by_rate.get(key, ZERO) + Decimal(amount)
    if not charges_vat:
        total = _round(sum(by_rate.values(), ZERO))
        return TaxSummary(
            charged=False, prices_include_vat=prices_include_vat, net=total, vat=ZERO, gross=total
        )
    rates = []
    for rate, amount in sorted(by_rate.items()):
        amount = _round(amount)
        if prices_include_vat:
            vat = _round(amount * rate / (HUNDRED + rate))
            rates.append(RateTotal(rate=rate, net=amount - vat, vat=vat, gross=amount))
        else:
            vat = _round(amount * rate / HUNDRED)
            rates.append(RateTotal(rate=rate, net=amount, vat=vat, gross=amount + vat))
    return TaxSummary(
        charged=True,
        prices_include_vat=prices_include_vat,
        net=sum((r.net for r in rates), ZERO),
        vat=sum((r.vat for r in rates), ZERO),
        gross=sum((r.gross for r in rates), ZERO),
        rates=rates,
    )
