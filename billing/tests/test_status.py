"""One status per order, computed once (billing.selectors.order_status) and
read the same on the dashboard, the orders list, the order page and the admin;
payment attempts are history, not the current state."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date, format_skeleton
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import selectors, services
from billing.models import Order
from conftest import client_for, login
from families.models import Guardian
from portal import clock
from portal.tenancy import use_provider

from .helpers import card, new_order, payer

pytestmark = pytest.mark.django_db

NBSP = "\xa0"


def text_of(page: bytes) -> str:
    """The page's text, tags dropped and white space collapsed."""
    plain = htmllib.unescape(re.sub(r"<[^>]+>", " ", page.decode()))
    return re.sub(r"[ \t\r\n]+", " ", plain.replace(NBSP, " "))


def leos_order(aquakids) -> Order:
    use_provider(aquakids)
    return Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 1")


def test_a_partly_paid_overdue_order_reads_the_same_everywhere(aquakids, ana):
    order = leos_order(aquakids)
    due = (
        format_skeleton("dMMM", order.due_date, locale="en_SI")
        if order.due_date.year == clock.today().year
        else format_date(order.due_date, "medium", locale="en_SI")  # in another year: said
    )
    expected = f"Partly paid: 50,00 € of 150,00 €, 100,00 € due {due} (overdue)"
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    pages = {
        "dashboard": ana.get("/"),
        "orders list": ana.get("/sections/orders/"),
        "payments page": ana.get("/billing/"),
        "order page": ana.get(f"/billing/orders/{order.pk}/"),
        "admin list": staff.get("/admin/billing/order/", {"q": "Swim Level 1"}),
        "admin page": staff.get(f"/admin/billing/order/{order.pk}/change/"),
    }
    for where, response in pages.items():
        assert response.status_code == 200, where
        assert expected in text_of(response.content), where


def test_the_status_follows_each_step(in_aquakids):
    order = new_order(amount="150.00")
    Order.objects.filter(pk=order.pk).update(due_date=clock.today() + timedelta(days=3))

    def status():
        return selectors.order_in_family(order.family, order.pk).status

    def text(status):
        return status.text.replace(NBSP, " ")

    first = status()
    assert (first.state, first.total, first.paid, first.due) == ("unpaid", 150, 0, 150)
    assert text(first).startswith("Unpaid: 150,00 € due") and not first.overdue
    services.payment_record_offline(
        order=order, amount=Decimal("50"), method="offline", key="s1", actor_user=None
    )
    part = status()
    assert (part.state, part.paid, part.due) == ("partly_paid", 50, 100)
    assert text(part).startswith("Partly paid: 50,00 € of 150,00 €, 100,00 € due")
    clock.advance(timedelta(days=4))
    assert status().overdue and text(status()).endswith("(overdue)")
    services.payment_record_offline(
        order=order, amount=Decimal("100"), method="bank", key="s2", actor_user=None
    )
    paid = status()
    assert (paid.state, paid.due, paid.overdue, paid.paid_on) == ("paid", 0, False, clock.today())
    assert text(paid).startswith("Paid: 150,00 € on ")
    # An adjustment changes what the order costs; it is not a payment.
    other = new_order(family=order.family, amount="80.00")
    services.adjustment_create(
        family=order.family, amount=Decimal("-30"), reason="Goodwill", actor_user=None, order=other
    )
    adjusted = selectors.order_in_family(order.family, other.pk).status
    assert (adjusted.state, adjusted.total, adjusted.paid, adjusted.due) == ("unpaid", 50, 0, 50)


def test_the_refunded_demo_order_reads_refunded(aquakids, ana):
    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Novak", title="Pool party: end of summer")
    status = selectors.order_in_family(order.family, order.pk).status
    assert (status.state, status.total, status.due, status.refunded) == ("refunded", 0, 0, 20)
    assert "Refunded: 20,00 €" in text_of(ana.get(f"/billing/orders/{order.pk}/").content)


def test_a_paid_order_shows_its_declined_attempt_as_history_only(in_aquakids, aquakids):
    order = new_order(amount="40.00")
    guardian = payer(order.family, email="history@example.com")
    declined = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000000000000341"),
        attempt_key="declined",
    )
    assert declined.status == "failed" and declined.failure_message
    services.payment_record_offline(
        order=order, amount=None, method="offline", key="desk", actor_user=None
    )
    client = login(client_for("aquakids"), aquakids, "history@example.com")
    page = text_of(client.get(f"/billing/orders/{order.pk}/").content)
    current, history = page.split("Payment history", 1)
    assert "Paid: 40,00 €" in current
    assert declined.failure_message not in current and "failed" not in current.lower()
    assert declined.failure_message in history and "Failed" in history
    assert "Pay 40" not in page  # nothing left to pay


def test_the_orders_list_and_payments_read_a_fixed_number_of_queries(aquakids, ana):
    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert ana.get(url).status_code == 200
        return len(queries)

    urls = ["/sections/orders/", "/sections/payments/", "/billing/", "/billing/?invoices=1"]
    before = {url: count(url) for url in urls}
    connection.set_tenant(aquakids)
    family = Guardian.objects.get(user__email="ana@aquakids.test").family
    for n in range(12):
        order = new_order(family=family, title=f"More {n}", amount="30.00")
        services.invoice_issue(order=order)
        if n % 4 == 0:  # credit notes join the list of invoices
            services.credit_note_issue(
                order=order, amount=Decimal("5.00"), reason="Goggles returned", actor_user=None
            )
        if n % 3:
            services.payment_record_offline(
                order=order,
                amount=Decimal(10 * (n % 3)),
                method="bank",
                key=f"q{n}",
                actor_user=None,
            )
    assert {url: count(url) for url in urls} == before
