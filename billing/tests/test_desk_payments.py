"""Payments taken at the desk: by method, partial, what is owed worked out
under the order lock, once per form, with a receipt to the family and the
staff member's name on the ledger entry."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, connections
from django_tenants.utils import tenant_context

from accounts.models import User
from benefits.models import Voucher
from billing import services
from billing.models import LedgerEntry, Order, Payment
from billing.services import BillingError
from conftest import client_for, login
from enrollments.tests.factories import FamilyFactory
from portal.tenancy import use_provider
from tests.htmlforms import form_data

from .helpers import new_order, payer

D = Decimal


def okafor_order(aquakids) -> Order:
    use_provider(aquakids)
    return Order.objects.get(family__name="Okafor")


def payment_page(staff, order):
    return f"/admin/billing/order/{order.pk}/record-payment/"


@pytest.mark.django_db
def test_a_desk_payment_submitted_twice_records_once(aquakids, django_capture_on_commit_callbacks):
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    order = okafor_order(aquakids)
    html = desk.get(payment_page(desk, order)).content.decode()
    data = form_data(html.split('id="content-main"')[1])
    assert data["amount"] == ["150.00"]  # what is owed, by default
    data |= {"amount": ["40.00"], "method": ["cash"], "note": ["Receipt 17"]}
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):  # a double click: the same form, the same key
            assert desk.post(payment_page(desk, order), data).status_code == 302
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == D("110.00")
    payment = Payment.objects.get(order=order)
    assert (payment.method, payment.amount, payment.note) == ("cash", D("40.00"), "Receipt 17")
    entry = LedgerEntry.objects.get(payment=payment)
    assert entry.description == "Cash at the desk · Receipt 17"
    assert entry.actor.email == "desk@aquakids.test"
    assert entry.actor_name == f"{entry.actor.full_name or entry.actor.email} (staff)"
    receipts = [m for m in mail.outbox if "Receipt" in m.subject]
    assert [m.to for m in receipts] == [["ben@aquakids.test"]]  # the primary guardian, once
    assert "Cash at the desk" in receipts[0].body

    # A new form (a new key) records the next part; more than is owed is refused.
    again = form_data(
        desk.get(payment_page(desk, order)).content.decode().split('id="content-main"')[1]
    )
    assert again["key"] != data["key"] and again["amount"] == ["110.00"]
    refused = desk.post(
        payment_page(desk, order), again | {"amount": ["110.01"], "method": ["bank"]}
    )
    html = refused.content.decode()
    assert refused.status_code == 200
    field = html.split('name="amount"')[1].split('name="method"')[0]
    assert "more than the" in field and "still owed" in field
    assert 'value="110.01"' in html
    assert (
        desk.post(payment_page(desk, order), again | {"method": ["desk_card"]}).status_code == 302
    )
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == 0
    assert list(order.payments.order_by("created_at").values_list("method", flat=True)) == [
        "cash",
        "desk_card",
    ]


@pytest.mark.django_db
def test_desk_payments_need_the_change_order_permission(aquakids):
    order = okafor_order(aquakids)
    nobody = User.objects.create_user("no-perms@aquakids.test", "long-enough-pass")
    User.objects.filter(pk=nobody.pk).update(is_staff=True)
    client = login(client_for("aquakids"), aquakids, "no-perms@aquakids.test")
    assert client.get(payment_page(client, order)).status_code == 403
    assert client.post(payment_page(client, order), {"amount": "1"}).status_code == 403
    connection.set_tenant(aquakids)
    assert not order.payments.exists()


@pytest.mark.django_db
def test_the_family_picture_offers_a_payment_and_a_new_order(aquakids):
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    order = okafor_order(aquakids)
    html = desk.get(f"/staff/families/{order.family_id}/").content.decode()
    assert f"/admin/billing/order/{order.pk}/record-payment/?next=" in html
    assert f"/admin/billing/order/add/?family={order.family_id}" in html


@pytest.mark.django_db
def test_the_list_action_records_what_each_order_owes_under_the_lock(aquakids):
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    order = okafor_order(aquakids)
    shown = staff.post(
        "/admin/billing/order/",
        {"action": "record_offline_payment", "_selected_action": [order.pk]},
    ).content.decode()
    data = form_data(shown.split('id="content-main"')[1])
    data |= {"method": ["bank"], "apply": ["Record payments"]}
    for _ in range(2):
        assert staff.post("/admin/billing/order/", data).status_code == 302
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == 0
    assert order.payments.get().method == "bank"


@pytest.mark.django_db
def test_the_service_refuses_what_the_desk_must_not_do(in_aquakids):
    order = new_order(amount="50.00")
    with pytest.raises(BillingError, match="how the money was paid"):
        services.payment_record_offline(
            order=order, amount=D("5"), method="card", key="k", actor_user=None
        )
    with pytest.raises(BillingError, match="above zero"):
        services.payment_record_offline(
            order=order, amount=D("0"), method="cash", key="k0", actor_user=None
        )
    Order.objects.filter(pk=order.pk).update(cancelled_at=order.created_at)
    with pytest.raises(BillingError, match="cancelled"):
        services.payment_record_offline(
            order=order, amount=None, method="cash", key="k1", actor_user=None
        )
    assert not order.payments.exists()


# --- Real threads against PostgreSQL -------------------------------------------------------


def race(provider, *calls):
    """Run the calls in threads released together; what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            with tenant_context(provider):
                barrier.wait()
                outcomes[index] = call()
        except Exception as error:  # noqa: BLE001  (compared below)
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def refused(outcome, text: str) -> bool:
    return isinstance(outcome, BillingError) and text in str(outcome)


def test_a_desk_payment_sent_twice_at_once_records_once(committed, race_provider):
    with tenant_context(race_provider):
        order = new_order(amount="150.00")
    outcomes = race(
        race_provider,
        *[
            lambda: services.payment_record_offline(
                order=order, amount=D("40"), method="cash", key="same-form", actor_user=None
            )
            for _ in range(2)
        ],
    )
    assert all(isinstance(o, Payment) for o in outcomes), outcomes
    assert outcomes[0].pk == outcomes[1].pk
    with tenant_context(race_provider):
        assert order.payments.count() == 1
        assert services.order_outstanding(order) == D("110.00")


def test_desk_payments_at_once_never_take_more_than_is_owed(committed, race_provider):
    """Four desks take 100 each on an order of 150, on a few orders in turn:
    one payment goes through on each, the others are told what is owed."""
    for _ in range(3):
        with tenant_context(race_provider):
            order = new_order(amount="150.00")
        outcomes = race(
            race_provider,
            *[
                lambda key=key, order=order: services.payment_record_offline(
                    order=order, amount=D("100"), method="cash", key=key, actor_user=None
                )
                for key in ("desk-a", "desk-b", "desk-c", "desk-d")
            ],
        )
        assert sum(isinstance(o, Payment) for o in outcomes) == 1, outcomes
        assert sum(refused(o, "more than the") for o in outcomes) == 3, outcomes
        with tenant_context(race_provider):
            assert services.order_outstanding(order) == D("50.00")


def test_a_single_use_code_is_spent_once_when_families_race_for_it(committed, race_provider):
    for _ in range(3):
        with tenant_context(race_provider):
            voucher = Voucher.objects.create(
                code=f"ONCE-{Voucher.objects.count()}",
                kind="promo",
                description="Once",
                discount_percent=D("10"),
            )
            families = [FamilyFactory() for _ in range(4)]
        outcomes = race(
            race_provider,
            *[
                lambda family=family, code=voucher.code: services.order_create(
                    family=family,
                    title="Term",
                    lines=[{"kind": "enrollment", "description": "Term", "unit_price": D("80")}],
                    promo_code=code,
                )
                for family in families
            ],
        )
        assert sum(isinstance(o, Order) for o in outcomes) == 1, outcomes
        assert sum(refused(o, "used up") for o in outcomes) == 3, outcomes
        with tenant_context(race_provider):
            assert voucher.redemptions.count() == 1
            assert Order.objects.filter(family__in=families).count() == 1


def test_a_held_single_use_code_reduces_one_of_two_orders_applied_at_once(committed, race_provider):
    with tenant_context(race_provider):
        voucher = Voucher.objects.create(
            code=f"HELD-{Voucher.objects.count()}",
            kind="promo",
            description="Held",
            discount_amount=D("5"),
            max_redemptions=10,
        )
        family = FamilyFactory()
        guardian = payer(family, email=f"held-{family.pk}@race.test")
        orders = [new_order(family=family, amount="50.00") for _ in range(2)]
    outcomes = race(
        race_provider,
        *[
            lambda order=order: services.order_promo_apply(
                order=order, code=voucher.code, actor=guardian
            )
            for order in orders
        ],
    )
    assert sorted(map(str, outcomes)) == ["5.00", "Your family has used this code already."], (
        outcomes
    )
    with tenant_context(race_provider):
        assert sorted(services.order_outstanding(o) for o in orders) == [D("45.00"), D("50.00")]
        assert voucher.discounts.get().uses.count() == 1
