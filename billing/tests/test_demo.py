"""The demo's money (billing/demo.py, loaded by seed_demo for every test
session): made through the services with the clock moved back, at both pools."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from billing import selectors
from billing.models import Invoice, LedgerEntry, Order
from enrollments.models import Location
from families.models import Family
from portal import clock

pytestmark = pytest.mark.django_db


def test_orders_are_at_both_pools_and_each_pools_statement_owes_its_own(in_aquakids):
    novak = Family.objects.get(name="Novak")
    for pool, owed in (("Tivoli Pool", Decimal("180.00")), ("Kodeljevo Pool", Decimal("100.00"))):
        location = Location.objects.get(name=pool)
        lines = selectors.statement_lines(novak, location=location)
        assert sum(o.owed for o in lines) == owed, pool
        assert {o.location_id for o in lines} == {location.pk}
    assert selectors.financials(novak).outstanding == Decimal("280.00")


def test_every_status_a_parent_can_see_is_there(in_aquakids):
    orders = selectors.with_status(
        selectors.with_balances(Order.objects.filter(family__name="Novak"))
    )
    states = {order.title: order.status for order in orders}
    assert {s.state for s in states.values()} == {"unpaid", "partly_paid", "paid", "refunded"}
    leo = states["Autumn term: Swim Level 1"]
    assert (leo.paid, leo.due, leo.overdue) == (50, 100, True)


def test_histories_are_dated_as_they_would_have_happened(in_aquakids):
    now = clock.now()
    entries = list(LedgerEntry.objects.filter(family__name="Novak").order_by("at"))
    assert entries[0].at < now - timedelta(weeks=9)  # ordered before the term started
    payments = [e for e in entries if e.kind == "payment"]
    assert payments and all(e.at < now - timedelta(weeks=7) for e in payments)
    for entry in entries:
        if entry.order_id and entry.kind != "charge":
            charge = next(e for e in entries if e.order_id == entry.order_id and e.kind == "charge")
            assert charge.at < entry.at  # paid after it was ordered
    # Each invoice was issued the day its order was made.
    for invoice in Invoice.objects.filter(order__family__name="Novak").select_related("order"):
        assert clock.local(invoice.issued_at).date() == clock.local(invoice.order.created_at).date()
        assert invoice.snapshot["issued_on"] == clock.local(invoice.issued_at).date().isoformat()


def test_leaps_orders_are_at_its_hall(in_leaps):
    hall = Location.objects.get(name="Leaps Hall")
    assert set(Order.objects.values_list("location", flat=True)) == {hall.pk}
    assert connection.tenant.charges_vat is False
