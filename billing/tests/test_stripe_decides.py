"""Stripe's answer decides a payment's state: no answer leaves it processing
and reconciliation learns the answer with the same key; late successes are
booked once; an intent that does not match settles nothing; 3-D Secure left
undone is cancelled after 30 minutes. All against the Stripe stand-in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from billing import gateway, services, tasks
from billing.models import Finding, LedgerEntry, Payment, StripeEvent
from billing.services import BillingError
from portal import clock

from .helpers import (
    authenticate_3ds,
    card,
    new_order,
    payer,
    saved_card,
    stand_in_intents,
    stuck_payment,
)

pytestmark = pytest.mark.django_db


def booked(payment) -> int:
    return LedgerEntry.objects.filter(payment=payment, kind="payment").count()


def findings(payment, source: str) -> list[str]:
    return list(
        Finding.objects.filter(payment=payment, source=source).values_list("code", flat=True)
    )


def test_no_answer_leaves_it_processing_blocking_and_reconciliation_sends_the_same_create(
    in_aquakids,
):
    order = new_order(amount="64.00")
    guardian = payer(order.family, email="noanswer@example.com")
    payment = stuck_payment(order, guardian)
    # Not failed, not guessed: waiting for Stripe, and the parent is told not to pay again.
    assert payment.status == "processing" and "Do not pay again" in payment.failure_message
    assert payment.stripe_idempotency_key and payment.stripe_request["amount"] == 6400
    # It blocks a second charge, with no time limit.
    clock.advance(timedelta(hours=3))
    with pytest.raises(BillingError, match="in progress"):
        services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="second"
        )
    counts = services.payments_reconcile()
    assert counts["payments"] == 1 and counts["settled"] == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.failure_message == ""
    assert booked(payment) == 1 and services.order_outstanding(order) == 0
    assert "settled_succeeded" in findings(payment, "reconciliation")
    # Sent again once more with the same key: Stripe answers the same intent.
    again = gateway.payment_intent_create(
        params=payment.stripe_request, idempotency_key=payment.stripe_idempotency_key
    )
    assert again.id == payment.stripe_payment_intent_id
    assert [i.id for i in stand_in_intents(payment.pk)] == [payment.stripe_payment_intent_id]
    services.payments_reconcile()
    assert booked(payment) == 1


def test_a_declined_card_fails_at_once_with_stripes_message_and_code(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="declined@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000000000000002"),
        attempt_key="d",
    )
    assert payment.status == "failed" and "declined" in payment.failure_message.lower()
    assert payment.decline_code  # kept for staff
    assert booked(payment) == 0 and services.order_outstanding(order) == Decimal("100.00")


def test_a_late_success_after_a_failure_is_booked_once(in_aquakids, aquakids):
    order = new_order(amount="42.00")
    guardian = payer(order.family, email="late@example.com")
    payment = stuck_payment(order, guardian)
    # A day without any answer: Stripe has forgotten the key, so it is not sent
    # again; the payment fails and staff are told.
    clock.advance(timedelta(hours=24))
    services.payments_reconcile()
    payment.refresh_from_db()
    assert payment.status == "failed" and "never_answered" in findings(payment, "reconciliation")
    # ... but the request had reached Stripe, which charged: its event arrives late.
    intent = gateway.payment_intent_create(
        params=payment.stripe_request, idempotency_key=payment.stripe_idempotency_key
    )
    assert intent.status == "succeeded"
    for n in range(2):  # delivered twice
        event = services.stripe_event_store(
            event_id=f"evt_late_{payment.pk}_{n}",
            type="payment_intent.succeeded",
            object_id=intent.id,
        )
        services.stripe_event_process(event_id=event.pk)
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.stripe_payment_intent_id == intent.id
    assert booked(payment) == 1 and services.order_outstanding(order) == 0
    assert findings(payment, "webhook") == ["late_success"]
    services.payments_reconcile()
    assert booked(payment) == 1


def test_a_late_success_on_an_order_paid_meanwhile_becomes_family_credit(in_aquakids):
    from benefits.selectors import family_credit_balance

    order = new_order(amount="80.00")
    guardian = payer(order.family, email="twice@example.com")
    payment = stuck_payment(order, guardian)
    # The office takes the money at the desk meanwhile.
    services.payment_record_offline(
        order=order, amount=None, method="offline", key="desk", actor_user=None
    )
    assert services.order_outstanding(order) == 0
    clock.advance(timedelta(minutes=5))
    services.payments_reconcile()
    payment.refresh_from_db()
    assert payment.status == "succeeded" and booked(payment) == 1
    # Never below zero: the second 80 € is the family's credit, and staff may refund it.
    assert services.order_outstanding(order) == 0
    assert family_credit_balance(order.family) == Decimal("80.00")
    assert "overpaid" in findings(payment, "reconciliation")
    entries = LedgerEntry.objects.filter(order=order).order_by("pk")
    assert [(e.kind, e.amount) for e in entries] == [
        ("charge", Decimal("80.00")),
        ("payment", Decimal("-80.00")),
        ("payment", Decimal("-80.00")),
        ("to_credit", Decimal("80.00")),
    ]


@pytest.mark.parametrize("wrong", ["amount", "currency", "provider"])
def test_an_intent_that_does_not_match_settles_nothing(in_aquakids, wrong):
    order = new_order(amount="125.00")
    guardian = payer(order.family, email=f"mismatch-{wrong}@example.com")
    payment = stuck_payment(order, guardian)
    params = {**payment.stripe_request, "metadata": dict(payment.stripe_request["metadata"])}
    if wrong == "amount":
        params["amount"] = 100  # 1.00 EUR, linked by its metadata
    elif wrong == "currency":
        params["currency"] = "usd"
    else:
        params["metadata"]["provider"] = "leaps"
    intent = gateway.payment_intent_create(params=params, idempotency_key=f"other-{wrong}")
    assert intent.status == "succeeded"
    event = services.stripe_event_store(
        event_id=f"evt_mismatch_{wrong}", type="payment_intent.succeeded", object_id=intent.id
    )
    services.stripe_event_process(event_id=event.pk)
    payment.refresh_from_db()
    assert payment.status == "processing" and payment.stripe_payment_intent_id is None
    assert booked(payment) == 0 and services.order_outstanding(order) == Decimal("125.00")
    assert findings(payment, "webhook") == ["intent_mismatch"]
    assert StripeEvent.objects.get(pk=event.pk).processed_at  # acted on, once


def test_reconciliation_settles_a_payment_whose_webhook_never_came(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="nowebhook@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="3ds",
    )
    authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret)
    # Too young: left to the webhook.
    assert services.payments_reconcile()["payments"] == 0
    clock.advance(timedelta(minutes=3))
    assert services.payments_reconcile() == {
        "payments": 1,
        "settled": 1,
        "events": 0,
        "unanswered": 0,
        "refunds": 0,
    }
    payment.refresh_from_db()
    assert payment.status == "succeeded" and booked(payment) == 1
    assert Finding.objects.get(payment=payment).severity == "info"


def test_reconciliation_processes_an_event_never_processed(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="lostevent@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="3ds",
    )
    authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret)
    # Stored by the webhook; its task never ran (the worker died).
    event = services.stripe_event_store(
        event_id=f"evt_lost_{payment.pk}",
        type="payment_intent.succeeded",
        object_id=payment.stripe_payment_intent_id,
    )
    clock.advance(timedelta(minutes=1))
    assert services.payments_reconcile()["events"] == 0  # too young
    clock.advance(timedelta(minutes=2))
    counts = services.payments_reconcile()
    assert counts["events"] == 1
    assert StripeEvent.objects.get(pk=event.pk).processed_at
    payment.refresh_from_db()
    assert payment.status == "succeeded" and booked(payment) == 1


def test_3d_secure_left_undone_is_cancelled_after_30_minutes(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="abandoned@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="3ds",
    )
    assert payment.status == "requires_action"
    clock.advance(timedelta(minutes=20))
    services.payments_reconcile()
    payment.refresh_from_db()
    assert payment.status == "requires_action"  # the parent may still be at their bank
    with pytest.raises(BillingError, match="in progress"):
        services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="again"
        )
    clock.advance(timedelta(minutes=11))
    services.payments_reconcile()
    payment.refresh_from_db()
    assert payment.status == "failed" and "30 minutes" in payment.failure_message
    assert gateway.payment_intent_retrieve(payment.stripe_payment_intent_id).status == "canceled"
    assert "settled_failed" in findings(payment, "reconciliation")
    # The order is payable again.
    paid = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="again"
    )
    assert paid.status == "succeeded" and services.order_outstanding(order) == 0


def test_reconciliation_runs_only_where_the_set_up_is_complete(in_aquakids, aquakids):
    from django.db import connection

    from providers.models import Provider

    order = new_order()
    guardian = payer(order.family, email="setup@example.com")
    payment = stuck_payment(order, guardian)
    clock.advance(timedelta(minutes=3))
    Provider.objects.filter(pk=aquakids.pk).update(status=Provider.Status.CREATING)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    assert tasks.reconcile_payments() is None
    assert Payment.objects.get(pk=payment.pk).status == "processing"
    Provider.objects.filter(pk=aquakids.pk).update(status=Provider.Status.READY)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    assert tasks.reconcile_payments()["settled"] == 1
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_a_payment_method_stripe_does_not_know_fails_with_a_message(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="unknownpm@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id="pm_nobodyknowsthis",
        attempt_key="u",
    )
    assert payment.status == "failed" and "enter your card details again" in (
        payment.failure_message
    )
    assert not Payment.objects.filter(order=order, status="processing").exists()
    ok = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="u2"
    )
    assert ok.status == "succeeded"


def test_save_card_with_three_saved_is_refused_before_any_charge(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="threecards@example.com")
    for number in ("4242424242424242", "5555555555554444", "4000056655665556"):
        saved_card(guardian, number)
    with pytest.raises(BillingError, match="three saved cards") as refused:
        services.payment_start(
            order=order,
            payer=guardian,
            stripe_payment_method_id=card(),
            attempt_key="s",
            save_method=True,
        )
    assert refused.value.field == "save"
    assert not Payment.objects.filter(order=order).exists()
    assert services.order_outstanding(order) == Decimal("100.00")
    # Without saving, the same card pays.
    paid = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="s2"
    )
    assert paid.status == "succeeded" and guardian.payment_methods.count() == 3


# --- Faults at the Stripe stand-in: the answer lost after Stripe acted -------------------------


@pytest.fixture
def faults(settings):
    """Arm the stand-in's faults for this test (and clear them after)."""
    import json
    import urllib.request

    settings.STRIPE_TIMEOUT = 1.0  # an answer held longer is no answer

    def call(method: str, body: dict | None = None):
        request = urllib.request.Request(
            f"{settings.STRIPE_API_BASE}/_test/faults",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def arm(mode: str, *, times: int = 1, path_prefix: str = "/v1/payment_intents"):
        fault = {"method": "POST", "path_prefix": path_prefix, "mode": mode, "times": times}
        call("POST", {**fault, "delay": 3})

    yield arm
    call("DELETE")


@pytest.mark.parametrize(
    "mode", ["timeout_after", "500_after", "connection_reset_after", "500_before"]
)
def test_a_create_without_an_answer_is_sent_again_with_the_same_key(in_aquakids, faults, mode):
    order = new_order(amount="51.00")
    guardian = payer(order.family, email=f"fault-{mode}@example.com")
    pm = card()
    faults(mode)
    payment = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=pm, attempt_key="f"
    )
    # Sent again with the same key: one intent at Stripe, one payment, booked once.
    assert payment.status == "succeeded", payment.failure_message
    assert [i.id for i in stand_in_intents(payment.pk)] == [payment.stripe_payment_intent_id]
    assert Payment.objects.filter(order=order).count() == 1
    assert booked(payment) == 1 and services.order_outstanding(order) == 0


def test_5xx_on_every_try_leaves_it_processing_until_reconciliation(in_aquakids, faults):
    order = new_order(amount="77.00")
    guardian = payer(order.family, email="fault-5xx@example.com")
    pm = card()
    faults("500_after", times=3)  # the first try and both retries
    payment = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=pm, attempt_key="f"
    )
    assert payment.status == "processing" and "Do not pay again" in payment.failure_message
    assert payment.stripe_payment_intent_id is None
    # Stripe did act, once.
    assert len(stand_in_intents(payment.pk)) == 1
    with pytest.raises(BillingError, match="in progress"):
        services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="g"
        )
    clock.advance(timedelta(minutes=3))
    services.payments_reconcile()
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert [i.id for i in stand_in_intents(payment.pk)] == [payment.stripe_payment_intent_id]
    assert booked(payment) == 1 and services.order_outstanding(order) == 0
