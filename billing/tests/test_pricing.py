"""The discount rules (billing/pricing.py): examples, then properties over
random orders and discounts. No database."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.pricing import (
    MULTI_CLASS,
    PROMOTIONAL,
    SIBLING,
    Line,
    Offer,
    Tuition,
    reductions,
)

D = Decimal


def taken(found, *, line=None, offer=None) -> Decimal:
    return sum(
        (
            r.amount
            for r in found
            if (line is None or r.line.key == line) and (offer is None or r.offer.id == offer)
        ),
        D("0"),
    )


def test_the_sibling_discount_spares_the_child_with_the_highest_tuition():
    lines = [Line(1, D("180.00"), student=10), Line(2, D("150.00"), student=11)]
    found = reductions(lines, [Offer(1, SIBLING, percent=D("10"))])
    assert [(r.line.key, r.amount) for r in found] == [(2, D("15.00"))]


def test_the_sibling_discount_counts_the_familys_other_current_classes():
    # Leo's class alone on this order, Mia's dearer one charged on another.
    found = reductions(
        [Line(1, D("150.00"), student=11)],
        [Offer(1, SIBLING, percent=D("10"))],
        [Tuition(student=10, amount=D("180.00"))],
    )
    assert taken(found) == D("15.00")
    # Mia's order when Leo's cheaper class is charged elsewhere: nothing off.
    found = reductions(
        [Line(1, D("180.00"), student=10)],
        [Offer(1, SIBLING, percent=D("10"))],
        [Tuition(student=11, amount=D("150.00"))],
    )
    assert found == []


def test_a_tie_spares_the_child_registered_first():
    lines = [Line(1, D("100.00"), student=7), Line(2, D("100.00"), student=3)]
    found = reductions(lines, [Offer(1, SIBLING, percent=D("10"))])
    assert [r.line.student for r in found] == [7]


def test_multi_class_reduces_every_class_of_a_child_but_its_dearest():
    lines = [
        Line(1, D("80.00"), student=5),
        Line(2, D("100.00"), student=5),
        Line(3, D("60.00"), student=6),
    ]
    found = reductions(lines, [Offer(1, MULTI_CLASS, amount=D("5.00"))])
    assert [(r.line.key, r.amount) for r in found] == [(1, D("5.00"))]
    # Its first (dearer) class was charged on another order: both are further classes.
    found = reductions(
        lines[:2], [Offer(1, MULTI_CLASS, amount=D("5.00"))], [Tuition(5, D("120.00"))]
    )
    assert [r.line.key for r in found] == [1, 2]


def test_percentages_add_up_on_the_undiscounted_line_then_fixed_amounts():
    line = Line(1, D("100.00"), student=1)
    offers = [
        Offer(1, PROMOTIONAL, percent=D("10")),
        Offer(2, PROMOTIONAL, percent=D("15")),
        Offer(3, PROMOTIONAL, amount=D("5.00")),
    ]
    found = reductions([line], offers)
    # 15 % of 100, not of the 90 left after 10 %; the fixed amount after both.
    assert [(r.offer.id, r.amount) for r in found] == [
        (1, D("10.00")),
        (2, D("15.00")),
        (3, D("5.00")),
    ]


def test_a_discount_never_takes_a_line_below_zero():
    line = Line(1, D("40.00"), student=1)
    offers = [Offer(1, PROMOTIONAL, percent=D("60")), Offer(2, MULTI_CLASS, amount=D("30.00"))]
    found = reductions([line, Line(2, D("50.00"), student=1)], offers)
    assert taken(found, line=1) == D("40.00")
    assert taken(found, line=2) <= D("50.00")


def test_each_reduction_is_rounded_half_up_to_cents():
    found = reductions([Line(1, D("33.33"))], [Offer(1, PROMOTIONAL, percent=D("12.5"))])
    assert found[0].amount == D("4.17")  # 4.16625
    found = reductions([Line(1, D("0.05"))], [Offer(1, PROMOTIONAL, percent=D("50"))])
    assert found[0].amount == D("0.03")  # 0.025


def test_a_fixed_promotion_is_for_the_order_taken_from_its_lines_in_order():
    lines = [Line(1, D("8.00"), kind="other"), Line(2, D("20.00"))]
    found = reductions(lines, [Offer(1, PROMOTIONAL, amount=D("10.00"))])
    assert [(r.line.key, r.amount) for r in found] == [(1, D("8.00")), (2, D("2.00"))]


def test_a_discount_for_one_child_reduces_only_that_childs_lines():
    lines = [Line(1, D("50.00"), student=1), Line(2, D("50.00"), student=2)]
    found = reductions(lines, [Offer(1, PROMOTIONAL, percent=D("10"), student=2)])
    assert [r.line.key for r in found] == [2]


def test_a_reduction_carries_the_vat_rate_of_its_line():
    lines = [Line(1, D("50.00"), vat_rate=D("20.00")), Line(2, D("50.00"), vat_rate=D("10.00"))]
    found = reductions(lines, [Offer(1, PROMOTIONAL, percent=D("10"))])
    assert [(r.line.key, r.vat_rate) for r in found] == [(1, D("20.00")), (2, D("10.00"))]


def test_a_code_applied_later_takes_only_what_is_left_of_the_line():
    line = Line(1, D("100.00"), reduced=D("95.00"))
    found = reductions([line], [Offer(1, PROMOTIONAL, percent=D("10"))])
    assert taken(found) == D("5.00")


# --- Properties --------------------------------------------------------------------------

money = st.decimals(min_value=D("0.00"), max_value=D("900.00"), places=2)
percents = st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)
lines_strategy = st.lists(
    st.tuples(money, st.sampled_from(["enrollment", "other"]), st.integers(1, 4)),
    min_size=1,
    max_size=6,
)
offers_strategy = st.lists(
    st.tuples(
        st.sampled_from([SIBLING, MULTI_CLASS, PROMOTIONAL]),
        st.one_of(percents.map(lambda p: ("percent", p)), money.map(lambda a: ("amount", a))),
        st.one_of(st.none(), st.integers(1, 4)),
    ),
    max_size=5,
)
others_strategy = st.lists(st.tuples(st.integers(1, 4), money), max_size=4)


def build(raw_lines, raw_offers, raw_others):
    lines = [
        Line(key=n, amount=amount, kind=kind, student=child)
        for n, (amount, kind, child) in enumerate(raw_lines, start=1)
    ]
    offers = [
        Offer(id=n, kind=kind, student=child, **{how: value})
        for n, (kind, (how, value), child) in enumerate(raw_offers, start=1)
    ]
    others = [Tuition(student=child, amount=amount) for child, amount in raw_others]
    return lines, offers, others


@settings(max_examples=300, deadline=None)
@given(lines_strategy, offers_strategy, others_strategy)
def test_no_line_goes_below_zero_and_every_reduction_is_in_cents(raw_lines, raw_offers, others):
    lines, offers, others = build(raw_lines, raw_offers, others)
    found = reductions(lines, offers, others)
    for line in lines:
        assert D("0") <= taken(found, line=line.key) <= line.amount
    for r in found:
        assert r.amount > 0 and r.amount == r.amount.quantize(D("0.01"))
        assert r.vat_rate == r.line.vat_rate


@settings(max_examples=300, deadline=None)
@given(lines_strategy, st.lists(percents, min_size=1, max_size=3), others_strategy)
def test_percentages_are_each_taken_from_the_undiscounted_line(raw_lines, rates, others):
    """While they add up to no more than the line, each percentage takes
    exactly its share of the undiscounted line, whatever order they come in."""
    lines, _, others = build(raw_lines, [], others)
    if sum(rates) > 100:
        rates = [D("100") / len(rates) / 2 for _ in rates]
    offers = [Offer(n, PROMOTIONAL, percent=rate) for n, rate in enumerate(rates, 1)]
    found = reductions(lines, offers, others)
    for line in lines:
        for offer in offers:
            share = (line.amount * offer.percent / 100).quantize(D("0.01"), ROUND_HALF_UP)
            assert taken(found, line=line.key, offer=offer.id) == share
    assert sorted((r.line.key, r.offer.id, r.amount) for r in found) == sorted(
        (r.line.key, r.offer.id, r.amount)
        for r in reductions(lines, list(reversed(offers)), others)
    )


@settings(max_examples=300, deadline=None)
@given(lines_strategy, percents, others_strategy)
def test_the_sibling_discount_reaches_every_child_but_the_one_with_the_highest_tuition(
    raw_lines, rate, raw_others
):
    lines, _, others = build(raw_lines, [], raw_others)
    found = reductions(lines, [Offer(1, SIBLING, percent=rate)], others)
    tuition: dict[int, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.kind == "enrollment" and line.amount > 0:
            tuition[line.student] += line.amount
    for other in others:
        tuition[other.student] += other.amount
    if len(tuition) < 2:
        assert not found
        return
    top = max(tuition.values())
    spared = min(child for child, total in tuition.items() if total == top)  # registered first
    for line in lines:
        share = (line.amount * rate / 100).quantize(D("0.01"), ROUND_HALF_UP)
        if line.kind != "enrollment" or line.student == spared:
            assert taken(found, line=line.key) == 0
        else:
            assert taken(found, line=line.key) == share
