"""Webhooks: signature checked, each event stored once, routed to its provider,
acted on by re-reading Stripe; duplicates and late events change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal
from functools import partial

import pytest
from django.conf import settings
from django.db import connection, connections
from django_tenants.utils import tenant_context

from billing import services
from billing.models import LedgerEntry, Payment, StripeEvent
from billing.services import BillingError
from conftest import client_for
from providers.models import Provider

from .helpers import authenticate_3ds, card, new_order, payer, stuck_payment


def signed(payload: dict, secret: str | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    signature = hmac.new(
        (secret or settings.STRIPE_WEBHOOK_SECRET).encode(),
        b"%d.%s" % (stamp, body),
        hashlib.sha256,
    ).hexdigest()
    return body, f"t={stamp},v1={signature}"


def event(kind: str, intent_id: str, schema: str, event_id: str) -> dict:
    return {
        "id": event_id,
        "type": kind,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "metadata": {"provider": schema},
            }
        },
    }


def post(body: bytes, signature: str):
    return client_for("public").post(
        "/stripe/webhook/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


@pytest.fixture
def pending(in_aquakids):
    """A 3-D Secure payment the parent has just completed at Stripe."""
    order = new_order()
    guardian = payer(order.family, email="w1@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="w",
    )
    authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret)
    return payment


@pytest.mark.django_db
def test_bad_signature_is_refused_and_nothing_recorded(pending, aquakids):
    body, _ = signed(
        event("payment_intent.succeeded", pending.stripe_payment_intent_id, "aquakids", "evt_bad")
    )
    _, wrong = signed({"other": 1})
    assert post(body, wrong).status_code == 400
    _, foreign = signed(json.loads(body), secret="whsec_someone_else")
    assert post(body, foreign).status_code == 400
    connection.set_tenant(aquakids)
    assert not StripeEvent.objects.exists()
    assert Payment.objects.get(pk=pending.pk).status == "requires_action"


@pytest.mark.django_db
def test_event_is_acted_on_once_and_late_events_change_nothing(pending, aquakids):
    succeeded = event(
        "payment_intent.succeeded", pending.stripe_payment_intent_id, "aquakids", "evt_1"
    )
    for _ in range(2):  # delivered twice
        assert post(*signed(succeeded)).status_code == 200
    connection.set_tenant(aquakids)
    assert StripeEvent.objects.filter(event_id="evt_1").count() == 1
    assert Payment.objects.get(pk=pending.pk).status == "succeeded"
    assert LedgerEntry.objects.filter(payment=pending).count() == 1
    # An older "failed" event arriving late: Stripe says succeeded, the payment stays paid.
    late = event(
        "payment_intent.payment_failed", pending.stripe_payment_intent_id, "aquakids", "evt_0"
    )
    assert post(*signed(late)).status_code == 200
    connection.set_tenant(aquakids)
    assert Payment.objects.get(pk=pending.pk).status == "succeeded"
    assert LedgerEntry.objects.filter(payment=pending).count() == 1


@pytest.mark.django_db
def test_events_of_another_provider_do_not_touch_this_one(pending, aquakids):
    foreign = event("payment_intent.succeeded", pending.stripe_payment_intent_id, "leaps", "evt_x")
    assert post(*signed(foreign)).status_code == 200
    connection.set_tenant(aquakids)
    assert not StripeEvent.objects.filter(event_id="evt_x").exists()
    assert Payment.objects.get(pk=pending.pk).status == "requires_action"


def test_two_tabs_paying_the_same_order_charge_once(committed, race_provider):
    from providers.models import Provider

    Provider.objects.filter(pk=race_provider.pk).update(online_payments=True)
    race_provider.refresh_from_db()
    with tenant_context(race_provider):
        order = new_order(amount="60.00")
        guardian = payer(order.family, email="tabs@example.com")
        methods = [card(), card()]
    barrier, outcomes, crashes = threading.Barrier(2), [], []

    def tab(n):
        try:
            with tenant_context(race_provider):
                barrier.wait(timeout=30)
                p = services.payment_start(
                    order=order,
                    payer=guardian,
                    stripe_payment_method_id=methods[n],
                    attempt_key=f"tab-{n}",
                )
                outcomes.append(p.status)
        except BillingError as error:
            outcomes.append(str(error))
        except BaseException as error:  # reported, never swallowed
            crashes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not crashes, crashes
    assert not any(t.is_alive() for t in threads)
    # One tab paid; the other was told why it could not.
    assert sorted(outcomes) == sorted(
        ["succeeded", "A payment for this order is in progress already."]
    ) or sorted(outcomes) == sorted(["succeeded", "This order is paid."]), outcomes
    with tenant_context(race_provider):
        assert Payment.objects.filter(order=order, status="succeeded").count() == 1
        assert services.order_outstanding(order) == Decimal("0.00")
        assert LedgerEntry.objects.filter(order=order, kind="payment").count() == 1


@pytest.mark.django_db
def test_a_payment_whose_create_call_got_no_answer_is_found_by_its_metadata(in_aquakids, aquakids):
    from billing import gateway

    order = new_order(amount="20.00")
    guardian = payer(order.family, email="timeout@example.com")
    payment = stuck_payment(order, guardian)
    assert payment.status == "processing" and not payment.stripe_payment_intent_id
    # The request did reach Stripe: Stripe charged, our side never heard back.
    intent = gateway.payment_intent_create(
        params=payment.stripe_request, idempotency_key=payment.stripe_idempotency_key
    )
    assert intent.status == "succeeded"
    assert (
        post(*signed(event("payment_intent.succeeded", intent.id, "aquakids", "evt_t"))).status_code
        == 200
    )
    connection.set_tenant(aquakids)
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.stripe_payment_intent_id == intent.id
    assert LedgerEntry.objects.filter(payment=payment).count() == 1
    assert services.order_outstanding(order) == 0


def at_once(provider, *jobs) -> list[str]:
    """Run each job in its own thread, released together; what any of them
    raised (or a thread that never finished) is returned, never swallowed."""
    barrier, crashes = threading.Barrier(len(jobs)), []

    def run(job):
        try:
            with tenant_context(provider):
                barrier.wait(timeout=30)
                job()
        except BaseException as error:
            crashes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return crashes + [f"{t.name} did not finish" for t in threads if t.is_alive()]


def test_a_webhook_and_reconciliation_on_one_payment_at_once_book_it_once(committed, race_provider):
    """The event's task and the beat's reconciliation read the same answer from
    Stripe at the same moment, in two threads: one payment, booked once."""
    from datetime import timedelta

    from portal import clock

    Provider.objects.filter(pk=race_provider.pk).update(online_payments=True)
    race_provider.refresh_from_db()
    for round_ in range(3):
        with tenant_context(race_provider):
            order = new_order(amount="33.00")
            guardian = payer(order.family, email=f"race-{round_}-{order.pk}@example.com")
            payment = services.payment_start(
                order=order,
                payer=guardian,
                stripe_payment_method_id=card("4000002500003155"),
                attempt_key="race",
            )
            authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret)
            event = services.stripe_event_store(
                event_id=f"evt_race_{race_provider.pk}_{payment.pk}",
                type="payment_intent.succeeded",
                object_id=payment.stripe_payment_intent_id,
            )
        clock.advance(timedelta(minutes=3))
        crashes = at_once(
            race_provider,
            partial(services.stripe_event_process, event_id=event.pk),
            services.payments_reconcile,
        )
        assert not crashes, crashes
        with tenant_context(race_provider):
            assert Payment.objects.get(pk=payment.pk).status == "succeeded"
            assert LedgerEntry.objects.filter(payment=payment).count() == 1
            assert services.order_outstanding(order) == Decimal("0.00")
            assert StripeEvent.objects.get(pk=event.pk).processed_at
