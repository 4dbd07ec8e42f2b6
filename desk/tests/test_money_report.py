"""The staff money report: who owes what by days past due, payments by day
and method, refunds, each as CSV too; a clear message for a bad period; a
fixed number of queries; parents never see it."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from billing import services
from conftest import client_for, login
from enrollments.tests.factories import LocationFactory
from families.models import Family
from portal import clock

pytestmark = pytest.mark.django_db

# A quiet stretch of the calendar, before any demo money: the figures below
# are the only ones in it.
DAY = date(2025, 3, 12)


@pytest.fixture
def desk(aquakids):
    return login(client_for("aquakids"), aquakids, "desk@aquakids.test")


def _order(family, amount, *, due, location=None, title="Lessons"):
    return services.order_create(
        family=family,
        title=title,
        lines=[{"kind": "other", "description": title, "unit_price": Decimal(amount)}],
        due_date=due,
        location=location,
    )


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=clock.provider_zone())


@pytest.fixture
def books(in_aquakids):
    """One family's orders of every age on DAY, a part payment, payments by
    three methods over two days and a refund."""
    staff = User.objects.get(email="staff@aquakids.test")
    family = Family.objects.create(name="Report family")
    pool = LocationFactory(name="Report pool")
    with clock.moved_to(_at(DAY - timedelta(days=100))):
        _order(family, "50.00", due=DAY + timedelta(days=5), location=pool)  # not yet due
        _order(family, "30.00", due=DAY - timedelta(days=10))  # 0-30
        partly = _order(family, "40.00", due=DAY)  # due today: 0-30, 15 of 40 paid
        _order(family, "20.00", due=DAY - timedelta(days=45))  # 31-60
        _order(family, "10.00", due=DAY - timedelta(days=90))  # over 60
        paid = _order(family, "60.00", due=DAY - timedelta(days=20))
    with clock.moved_to(_at(DAY - timedelta(days=1))):
        services.payment_record_offline(
            order=partly, amount=Decimal("15.00"), method="offline", key="r1", actor_user=staff
        )
        cash = services.payment_record_offline(
            order=paid, amount=Decimal("35.00"), method="bank", key="r2", actor_user=staff
        )
    with clock.moved_to(_at(DAY, 18)):
        services.payment_record_offline(
            order=paid, amount=Decimal("25.00"), method="offline", key="r3", actor_user=staff
        )
        services.refund_create(
            payment=cash, amount=Decimal("5.00"), reason="Swim cap returned", actor_user=staff
        )
    return {"family": family, "pool": pool}


def _get(desk, **params):
    query = {"date_from": (DAY - timedelta(days=6)).isoformat(), "date_to": DAY.isoformat()}
    query.update(params)
    return desk.get("/staff/money/", query)


def test_who_owes_what_by_days_past_due(desk, books):
    with clock.moved_to(_at(DAY + timedelta(days=2))):
        page = _get(desk)
    assert page.status_code == 200
    row = next(r for r in page.context["aging"].rows if r.family_id == books["family"].pk)
    # 25 of 40 left on the order due that day, 30 ten days late; the refund
    # made 5 owed again on the paid order, due 20 days before.
    assert row.amounts() == [Decimal("50.00"), Decimal("60.00"), Decimal("20.00"), Decimal("10.00")]
    assert row.total == Decimal("140.00")
    assert "Report family" in page.content.decode()


def test_one_location_shows_only_what_is_owed_there(desk, books):
    with clock.moved_to(_at(DAY + timedelta(days=2))):
        page = _get(desk, location=books["pool"].pk)
    rows = [r for r in page.context["aging"].rows if r.family_id == books["family"].pk]
    assert [r.amounts() for r in rows] == [[Decimal("50.00"), 0, 0, 0]]


def test_payments_by_day_and_method_and_the_refunds(desk, books):
    with clock.moved_to(_at(DAY + timedelta(days=2))):
        page = _get(desk)
    payments = page.context["payments"]
    by_day = {d.day: d.by_method for d in payments.days}
    assert by_day == {
        DAY - timedelta(days=1): {"offline": Decimal("15.00"), "bank": Decimal("35.00")},
        DAY: {"offline": Decimal("25.00")},
    }
    assert payments.total == Decimal("75.00") and payments.count == 3
    assert [r.amount for r in page.context["refunds"]] == [Decimal("5.00")]
    body = page.content.decode()
    assert "Swim cap returned" in body and "Payments by day" in body


def test_each_part_downloads_as_csv_with_the_figures_shown(desk, books):
    with clock.moved_to(_at(DAY + timedelta(days=2))):
        aging = _get(desk, export="aging")
        payments = _get(desk, export="payments")
        refunds = _get(desk, export="refunds")
    assert aging["Content-Type"].startswith("text/csv")
    assert "aging-" in aging["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(aging.content.decode())))
    assert rows[0][0] == "Family" and rows[0][-1] == "Total"
    assert ["Report family", "50.00", "60.00", "20.00", "10.00", "140.00"] in rows
    rows = list(csv.reader(io.StringIO(payments.content.decode())))
    assert rows[1:] == [
        [(DAY - timedelta(days=1)).isoformat(), "15.00", "35.00", "50.00", "2"],
        [DAY.isoformat(), "25.00", "", "25.00", "1"],
    ]
    rows = list(csv.reader(io.StringIO(refunds.content.decode())))
    assert (
        rows[1][1:4] == ["Report family", rows[1][2], "5.00"] and rows[1][4] == "Swim cap returned"
    )


def test_a_start_after_the_end_is_refused_next_to_the_field(desk, in_aquakids):
    page = _get(desk, date_from="2025-03-20", date_to="2025-03-01")
    assert page.status_code == 200
    assert "aging" not in page.context
    assert page.context["form"].errors["date_to"] == [
        "The end date must be on or after the start date."
    ]
    assert 'id="id_date_to_error"' in page.content.decode()
    bad = _get(desk, date_from="soon")
    assert "date_from" in bad.context["form"].errors


def test_the_report_reads_a_fixed_number_of_queries_however_many_families(desk, books, aquakids):
    def count():
        connection.set_tenant(aquakids)
        with CaptureQueriesContext(connection) as queries, clock.moved_to(_at(DAY)):
            assert _get(desk).status_code == 200
        return len(queries)

    before = count()
    staff = User.objects.get(email="staff@aquakids.test")
    for n in range(4):
        family = Family.objects.create(name=f"More {n}")
        with clock.moved_to(_at(DAY - timedelta(days=2))):
            order = _order(family, "12.00", due=DAY - timedelta(days=n * 30))
            payment = services.payment_record_offline(
                order=order, amount=Decimal("2.00"), method="bank", key=f"m{n}", actor_user=staff
            )
            services.refund_create(
                payment=payment, amount=Decimal("1.00"), reason="Part", actor_user=staff
            )
    assert count() == before


def test_parents_never_see_the_report(aquakids):
    parent = login(client_for("aquakids"), aquakids, "ana@aquakids.test")
    assert parent.get("/staff/money/").status_code == 404
    assert parent.get("/staff/money/", {"export": "aging"}).status_code == 404
