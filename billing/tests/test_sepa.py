"""Bank account payments (SEPA Direct Debit) where the provider enables
them and charges in euros: once or as a saved method, processing for days
until Stripe settles or fails the debit; refused where switched off."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from billing import services
from billing.models import LedgerEntry, Order, Payment, PaymentMethod
from families.models import Guardian
from portal import clock
from providers.models import Provider

pytestmark = pytest.mark.django_db

IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture
def bank_on(aquakids):
    provider = Provider.objects.get(pk=aquakids.pk)
    provider.currency, provider.echecks_enabled = "EUR", True
    provider.save(update_fields=["currency", "echecks_enabled"])  # forgets the cached host
    connection.set_tenant(provider)
    return provider


def novak_order():
    return Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 2")


def pay(client, order, **fields):
    page = client.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    attempt = page.split('name="attempt" value="')[1].split('"')[0]
    data = {"attempt": attempt, "payment_method": "bank", "holder": "Ana Novak", "iban": IBAN}
    data["mandate"] = "on"
    data.update(fields)
    return client.post(f"/billing/orders/{order.pk}/pay/", data, HTTP_ACCEPT="application/json")


def stand_in(path: str) -> None:
    request = urllib.request.Request(
        f"{settings.STRIPE_API_BASE}{path}", data=json.dumps({}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


def reconcile_later() -> None:
    clock.advance(services.SETTLE_AFTER + timedelta(minutes=1))
    services.payments_reconcile()


def test_a_bank_payment_stays_processing_until_the_bank_settles_it(bank_on, ana):
    order = novak_order()
    owed = services.order_outstanding(order)
    answer = pay(ana, order)
    assert answer.status_code == 200, answer.content
    payment = Payment.objects.get(order=order)
    assert payment.method == Payment.Method.SEPA and payment.status == Payment.Status.PROCESSING
    assert payment.stripe_request["payment_method_types"] == ["sepa_debit"]
    assert payment.stripe_request["mandate_data"]["customer_acceptance"]["type"] == "online"
    page = ana.get(f"/billing/payments/{payment.pk}/").content.decode()
    assert "Your bank payment is on its way" in page and "hx-get" not in page
    # Days pass: still processing, and it blocks a second charge.
    reconcile_later()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PROCESSING
    second = pay(ana, order)
    assert second.status_code == 409 and "in progress" in second.json()["message"]
    assert services.order_outstanding(order) == owed
    # The bank confirms: Stripe's answer books it once.
    stand_in(f"/_test/payment_intents/{payment.stripe_payment_intent_id}/settle")
    reconcile_later()
    reconcile_later()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert LedgerEntry.objects.filter(payment=payment, kind="payment").count() == 1
    assert services.order_outstanding(order) == 0


def test_a_failed_debit_fails_the_payment_and_the_order_is_payable_again(bank_on, ana):
    order = novak_order()
    assert pay(ana, order).status_code == 200
    payment = Payment.objects.get(order=order)
    stand_in(f"/_test/payment_intents/{payment.stripe_payment_intent_id}/fail")
    reconcile_later()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED and payment.failure_message
    assert not LedgerEntry.objects.filter(payment=payment).exists()
    again = pay(ana, order)
    assert again.status_code == 200
    assert Payment.objects.filter(order=order).count() == 2


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"iban": "DE89 3704 0044 0532 0130 01"}, "iban", "not a valid IBAN"),
        ({"iban": "US12 3456"}, "iban", "not a valid IBAN"),
        ({"iban": "BR1800360305000010009795493C1"}, "iban", "outside the SEPA area"),
        ({"mandate": ""}, "mandate", "Accept the mandate"),
        ({"holder": ""}, "holder", "name on the bank account"),
    ],
)
def test_bad_bank_details_are_said_next_to_the_field(bank_on, ana, fields, field, message):
    order = novak_order()
    answer = pay(ana, order, **fields)
    assert answer.status_code == 400
    assert answer.json()["field"] == field and message in answer.json()["message"]
    assert not Payment.objects.filter(order=order).exists()
    # Without JavaScript: the page again, the message under the field, the IBAN kept.
    page = ana.post(
        f"/billing/orders/{order.pk}/pay/",
        {"payment_method": "bank", "holder": "Ana", "iban": IBAN, "mandate": "on", **fields},
    ).content.decode()
    box = page.split(f'id="{field}-error"')[1].split("</ul>")[0]
    assert message in box and "hidden" not in box.split(">")[0]


def test_a_saved_bank_account_pays_later(bank_on, ana):
    guardian = Guardian.objects.get(user__email="ana@aquakids.test")
    page = ana.get("/billing/methods/add/").content.decode()
    assert "A bank account (SEPA Direct Debit)" in page
    bad = ana.post("/billing/methods/add/", {"kind": "bank", "holder": "Ana", "iban": IBAN})
    assert bad.status_code == 400 and "Accept the mandate" in bad.content.decode()
    saved = ana.post(
        "/billing/methods/add/", {"kind": "bank", "holder": "Ana", "iban": IBAN, "mandate": "on"}
    )
    assert saved.status_code == 302
    method = PaymentMethod.objects.get(guardian=guardian, kind=PaymentMethod.Kind.BANK)
    assert method.last4 == "3000"
    order = novak_order()
    answer = pay(ana, order, payment_method=str(method.pk), iban="", holder="")
    assert answer.status_code == 200, answer.content
    payment = Payment.objects.get(order=order)
    assert payment.method == Payment.Method.SEPA
    assert payment.stripe_request["payment_method"] == method.stripe_payment_method_id


def test_switched_off_the_bank_option_is_hidden_and_refused(aquakids, ana):
    provider = Provider.objects.get(pk=aquakids.pk)
    provider.echecks_enabled = False
    provider.save(update_fields=["echecks_enabled"])
    connection.set_tenant(provider)
    order = novak_order()
    page = ana.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    assert 'value="bank"' not in page and "IBAN" not in page
    assert "IBAN" not in ana.get("/billing/methods/add/").content.decode()
    assert pay(ana, order).status_code == 404
    refused = ana.post(
        "/billing/methods/add/", {"kind": "bank", "holder": "Ana", "iban": IBAN, "mandate": "on"}
    )
    assert refused.status_code == 404
    assert not Payment.objects.filter(order=order).exists()
