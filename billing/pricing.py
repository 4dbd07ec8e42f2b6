"""What discounts take off an order: a pure function of the order's lines,
the discounts that apply and the family's other classes. No database, no
clock: the rules read in one place and are proven by properties
(billing/tests/test_pricing.py).

The rules:
- Percentages are taken from the undiscounted line and added together (10 %
  and 15 % take 25 %, never 15 % of what 10 % left); fixed amounts come after.
- A discount never takes a line below zero: what would go beyond is dropped.
- Each reduction is rounded half-up to cents, per line.
- A reduction carries the VAT rate of the line it reduces.
- Sibling: each child's tuition, except the child with the highest tuition
  (this order's and the family's other current classes together; a tie goes
  to the child registered first, i.e. the lowest id).
- Multi-class: a child's classes except its dearest one (again counting the
  child's other current classes; the dearest already charged elsewhere means
  every class on this order is a further one).
- Promotion: every line of the order. A fixed promotional amount is for the
  order as a whole, taken from its lines in order; the other fixed amounts
  are per line they apply to.
- A discount for one child (`Offer.student`) reduces only that child's lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

TUITION = "enrollment"  # OrderLine.Kind.ENROLLMENT
SIBLING = "sibling"  # benefits.Discount.Kind
MULTI_CLASS = "multi_class"
PROMOTIONAL = "promotional"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    key: int  # its place in the order
    amount: Decimal  # undiscounted: unit price x quantity
    kind: str = TUITION
    student: int | None = None  # the child it is for
    vat_rate: Decimal | None = None
    reduced: Decimal = ZERO  # taken off already (a promo code applied later)


@dataclass(frozen=True)
class Offer:
    """A discount that may reduce the order: a percentage or a fixed amount."""

    id: int
    kind: str
    percent: Decimal | None = None
    amount: Decimal | None = None
    student: int | None = None  # for this child only


@dataclass(frozen=True)
class Tuition:
    """One of the family's current classes already charged on another order."""

    student: int
    amount: Decimal


@dataclass(frozen=True)
class Reduction:
    offer: Offer
    line: Line
    amount: Decimal  # above zero, what is taken off

    @property
    def vat_rate(self) -> Decimal | None:
        return self.line.vat_rate


def _tuition(lines: Iterable[Line]) -> list[Line]:
    return [x for x in lines if x.kind == TUITION and x.student is not None and x.amount > 0]


def sibling_lines(lines: Sequence[Line], others: Sequence[Tuition] = ()) -> list[Line]:
    """Tuition lines of every child but the one with the highest tuition."""
    tuition = _tuition(lines)
    per_child: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line in tuition:
        per_child[line.student] += line.amount  # type: ignore[index]
    for other in others:
        per_child[other.student] += other.amount
    if len(per_child) < 2:
        return []
    top = max(per_child, key=lambda child: (per_child[child], -child))
    return [x for x in tuition if x.student != top]


def multi_class_lines(lines: Sequence[Line], others: Sequence[Tuition] = ()) -> list[Line]:
    """Each child's classes but its dearest (the first class pays in full)."""
    by_child: dict[int, list[Line]] = defaultdict(list)
    for line in _tuition(lines):
        by_child[line.student].append(line)  # type: ignore[index]
    eligible: list[Line] = []
    for child, own in by_child.items():
        own.sort(key=lambda x: (-x.amount, x.key))
        elsewhere = [o.amount for o in others if o.student == child]
        if elsewhere and max(elsewhere) >= own[0].amount:
            eligible += own  # the first class was charged on another order
        else:
            eligible += own[1:]
    return eligible


def eligible_lines(offer: Offer, lines: Sequence[Line], others: Sequence[Tuition]) -> list[Line]:
    if offer.kind == SIBLING:
        found = sibling_lines(lines, others)
    elif offer.kind == MULTI_CLASS:
        found = multi_class_lines(lines, others)
    else:
        found = [x for x in lines if x.amount > 0]
    if offer.student is not None:
        found = [x for x in found if x.student == offer.student]
    return sorted(found, key=lambda x: x.key)


def reductions(
    lines: Sequence[Line], offers: Sequence[Offer], others: Sequence[Tuition] = ()
) -> list[Reduction]:
    """What each offer takes off each line, by the rules above, in the order
    the lines come (percentages first, then fixed amounts)."""
    left = {x.key: max(x.amount - x.reduced, ZERO) for x in lines}
    found: list[Reduction] = []
    eligible = {o.id: {x.key for x in eligible_lines(o, lines, others)} for o in offers}
    ordered = sorted(lines, key=lambda x: x.key)

    def take(offer: Offer, line: Line, wanted: Decimal) -> Decimal:
        got = min(cents(wanted), left[line.key])
        if got > 0:
            left[line.key] -= got
            found.append(Reduction(offer=offer, line=line, amount=got))
            return got
        return ZERO

    percents = sorted((o for o in offers if o.percent), key=lambda o: o.id)
    per_line = sorted(
        (o for o in offers if o.amount and not o.percent and o.kind != PROMOTIONAL),
        key=lambda o: o.id,
    )
    per_order = sorted(
        (o for o in offers if o.amount and not o.percent and o.kind == PROMOTIONAL),
        key=lambda o: o.id,
    )
    for line in ordered:
        for offer in percents:
            if line.key in eligible[offer.id]:
                take(offer, line, line.amount * offer.percent / 100)  # type: ignore[operator]
    for line in ordered:
        for offer in per_line:
            if line.key in eligible[offer.id]:
                take(offer, line, offer.amount)  # type: ignore[arg-type]
    for offer in per_order:
        budget = cents(offer.amount)  # type: ignore[arg-type]
        for line in ordered:
            if budget <= 0:
                break
            if line.key in eligible[offer.id]:
                budget -= take(offer, line, budget)
    return found
