from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from billing import services
from billing.models import LedgerEntry, Order, Payment
from conftest import client_for, login

from .helpers import card, new_order, payer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


def test_record_an_offline_payment_twice_records_once(staff, aquakids):
    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Okafor")
    for _ in range(2):
        staff.post(
            "/admin/billing/order/",
            {"action": "record_offline_payment", "_selected_action": [order.pk]},
        )
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == 0
    assert Payment.objects.filter(order=order, method="offline").count() == 1


def test_adjustment_with_a_reason_and_refund_through_stripe(
    staff, in_aquakids, django_capture_on_commit_callbacks
):
    order = new_order(amount="40")
    guardian = payer(order.family, email="adm@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        paid = services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="adm"
        )
    assert (
        mail.outbox
        and "Receipt" in mail.outbox[-1].subject
        and mail.outbox[-1].to == ["adm@example.com"]
    )
    staff.post(
        f"/admin/billing/payment/{paid.pk}/refund/",
        {
            "meaning": "still_owed",
            "amount": "15",
            "method": "card",
            "reason": "Pool closed",
            "key": "k-adm",
        },
    )
    connection.set_tenant(in_aquakids)
    assert paid.refunds.get().stripe_refund_id.startswith("re_")
    assert services.order_outstanding(order) == Decimal("15.00")
    staff.post(
        "/admin/billing/ledgerentry/add/",
        {
            "family": order.family.pk,
            "order": order.pk,
            "amount": "-15",
            "description": "Goodwill write-off",
        },
    )
    connection.set_tenant(in_aquakids)
    entry = LedgerEntry.objects.get(description="Goodwill write-off")
    assert entry.kind == "adjustment" and services.order_outstanding(order) == 0


def test_an_adjustment_cannot_mix_families(staff, in_aquakids):
    from enrollments.tests.factories import FamilyFactory

    order = new_order()
    other = FamilyFactory()
    response = staff.post(
        "/admin/billing/ledgerentry/add/",
        {"family": other.pk, "order": order.pk, "amount": "-5", "description": "Mixed up"},
    )
    assert "That order belongs to another family." in response.content.decode()
    connection.set_tenant(in_aquakids)
    assert not LedgerEntry.objects.filter(description="Mixed up").exists()
