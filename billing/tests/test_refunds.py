"""Refunds: reserved under the locks, made at Stripe with no lock held, booked
once; what a refund means for the order; refunds made in Stripe's dashboard;
the staff's refund form."""

from __future__ import annotations

import http.server
import re
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django_tenants.utils import tenant_context

from billing import gateway, selectors, services
from billing.models import Finding, LedgerEntry, Order, Payment, Refund, RefundRequest
from billing.services import BillingError
from conftest import client_for, login
from portal import clock

from .helpers import card, new_order, payer
from .test_webhooks import post, signed


def owed(order):
    return services.order_outstanding(order)


def card_paid(amount: str, email: str) -> tuple[Order, Payment]:
    order = new_order(amount=amount)
    guardian = payer(order.family, email=email)
    paid = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="pay"
    )
    assert paid.status == "succeeded"
    return order, paid


def status(order) -> str:
    return selectors.order_in_family(order.family, order.pk).status.state


# --- What a refund means --------------------------------------------------------------------


@pytest.mark.django_db
def test_full_card_refund_reducing_the_charge_leaves_nothing_owed(in_aquakids):
    order, paid = card_paid("60.00", "full@example.com")
    done = services.refund_create(
        payment=paid,
        amount=Decimal("60"),
        reason="Course cancelled",
        actor_user=None,
        meaning="credit_note",
    )
    assert done.status == "succeeded" and done.meaning == "credit_note"
    assert gateway.refund_retrieve(done.stripe_refund_id).amount == 6000
    assert owed(order) == 0 and services.order_charge_left(order) == 0
    note = order.credit_notes.get()
    assert note.amount == Decimal("60.00") and note.invoice.order_id == order.pk
    assert note.snapshot["invoice"] == note.invoice.display_number
    assert note.entry.amount == Decimal("-60.00") and note.entry.kind == "credit_note"
    assert services.payment_refundable(paid) == 0
    with pytest.raises(BillingError, match="up to 0,00"):
        services.refund_create(payment=paid, amount=Decimal("1"), reason="x", actor_user=None)


@pytest.mark.django_db
def test_the_meaning_of_a_refund_decides_the_orders_status(in_aquakids):
    order, paid = card_paid("100.00", "meaning@example.com")
    assert status(order) == "paid"
    services.refund_create(
        payment=paid,
        amount=Decimal("30"),
        reason="Returned goggles",
        actor_user=None,
        meaning="credit_note",
    )
    assert status(order) == "paid" and owed(order) == 0  # the charge is 70 now
    services.refund_create(
        payment=paid,
        amount=Decimal("20"),
        reason="Paid back, pay later",
        actor_user=None,
        meaning="still_owed",
    )
    assert status(order) == "partly_paid" and owed(order) == Decimal("20.00")
    assert services.order_charge_left(order) == Decimal("70.00")
    assert [n.amount for n in order.credit_notes.all()] == [Decimal("30.00")]


@pytest.mark.django_db
def test_a_double_submit_refunds_once(in_aquakids):
    order, paid = card_paid("40.00", "twice@example.com")
    first = services.refund_create(
        payment=paid, amount=Decimal("10"), reason="x", actor_user=None, key="form-1"
    )
    again = services.refund_create(
        payment=paid, amount=Decimal("10"), reason="x", actor_user=None, key="form-1"
    )
    assert again.pk == first.pk and Refund.objects.filter(payment=paid).count() == 1
    assert len(gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)) == 1


# --- No lock while Stripe answers; the amount is held -------------------------------------


class HeldRefunds:
    """A slow network in front of the Stripe stand-in: refund creations wait
    there until released; every other call passes straight through."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.arrived = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "POST" and self.path.startswith("/v1/refunds"):
                    proxy.arrived.set()
                    proxy.release.wait(30)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body or None,
                    headers=headers,
                    method=self.command,
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        code, data, kind = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as error:
                    code, data, kind = error.code, error.read(), error.headers
                self.send_response(code)
                self.send_header("Content-Type", kind.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_stripe_is_asked_with_no_lock_held_and_the_amount_is_held(
    committed, race_provider, settings
):
    from providers.models import Provider

    Provider.objects.filter(pk=race_provider.pk).update(online_payments=True)
    race_provider.refresh_from_db()
    with tenant_context(race_provider):
        order, paid = card_paid("80.00", "held@example.com")
    network = HeldRefunds(settings.STRIPE_API_BASE)
    settings.STRIPE_API_BASE = network.url
    outcome: list = []

    def refund():
        try:
            with tenant_context(race_provider):
                outcome.append(
                    services.refund_create(
                        payment=paid,
                        amount=Decimal("50"),
                        reason="Returned",
                        actor_user=None,
                        meaning="credit_note",
                    )
                )
        except Exception as error:  # shown in the assertion below
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=refund)
    thread.start()
    try:
        assert network.arrived.wait(30), outcome
        with tenant_context(race_provider):
            # While Stripe is being asked, the order and the payment are not locked...
            with transaction.atomic():
                Order.objects.select_for_update(nowait=True).get(pk=order.pk)
                Payment.objects.select_for_update(nowait=True).get(pk=paid.pk)
            # ...and the 50 in flight is held: only 30 can be refunded besides.
            held = RefundRequest.objects.get(payment=paid)
            assert held.status == "pending" and services.payment_refundable(paid) == 30
            with pytest.raises(BillingError, match="up to 30,00"):
                services.refund_create(
                    payment=paid, amount=Decimal("31"), reason="Again", actor_user=None
                )
    finally:
        network.release.set()
        thread.join(60)
        network.close()
    assert [getattr(o, "status", o) for o in outcome] == ["succeeded"]
    with tenant_context(race_provider):
        assert owed(order) == 0 and services.payment_refundable(paid) == 30
        assert Refund.objects.filter(payment=paid).count() == 1


@pytest.mark.parametrize("racers", [2, 6])
def test_refunds_racing_never_give_back_more_than_was_paid(committed, race_provider, racers):
    from providers.models import Provider

    Provider.objects.filter(pk=race_provider.pk).update(online_payments=True)
    race_provider.refresh_from_db()
    with tenant_context(race_provider):
        order, paid = card_paid("80.00", f"race{racers}@example.com")
    barrier, outcomes = threading.Barrier(racers), []

    def refund(n):
        try:
            with tenant_context(race_provider):
                barrier.wait(timeout=30)
                done = services.refund_create(
                    payment=paid,
                    amount=Decimal("30"),
                    reason=f"Refund {n}",
                    actor_user=None,
                    meaning="still_owed",
                )
                outcomes.append(done.status)
        except BillingError as error:
            outcomes.append(str(error))
        except Exception as error:  # shown in the assertion below
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(outcomes) == sorted(
        ["succeeded"] * 2 + ["You can refund up to 20,00\xa0€."] * (racers - 2)
    ), outcomes
    with tenant_context(race_provider):
        assert sum(r.amount for r in Refund.objects.filter(payment=paid)) == Decimal("60.00")
        at_stripe = gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)
        assert sum(r.amount for r in at_stripe) == 6000
        assert owed(order) == Decimal("60.00")


# --- Refunds Stripe tells us of -------------------------------------------------------------


def refund_event(kind: str, obj: dict, event_id: str) -> dict:
    return {"id": event_id, "type": kind, "data": {"object": obj}}


@pytest.mark.django_db
def test_a_refund_made_in_stripes_dashboard_is_booked_once_and_staff_told(in_aquakids, aquakids):
    order, paid = card_paid("60.00", "dashboard@example.com")
    intent = gateway.payment_intent_retrieve(paid.stripe_payment_intent_id)
    charge = intent.latest_charge
    charge_id = charge if isinstance(charge, str) else charge.id
    stripe = gateway.client().v1.refunds
    # Made in the dashboard: no metadata of ours (one by the intent, one by the charge).
    by_intent = stripe.create(params={"payment_intent": intent.id, "amount": 2000})
    by_charge = stripe.create(params={"charge": charge_id, "amount": 500})
    deliveries = [
        refund_event("refund.created", by_intent.to_dict(), "evt_dash_1"),
        refund_event("refund.created", by_intent.to_dict(), "evt_dash_1"),  # delivered twice
        refund_event("refund.updated", by_intent.to_dict(), "evt_dash_2"),
        refund_event(
            "charge.refunded",
            {"id": charge_id, "object": "charge", "payment_intent": intent.id},
            "evt_dash_3",
        ),
        refund_event("refund.created", by_charge.to_dict(), "evt_dash_4"),
    ]
    for payload in deliveries:
        assert post(*signed(payload)).status_code == 200
    connection.set_tenant(aquakids)
    booked = Refund.objects.filter(payment=paid).order_by("amount")
    assert [(r.amount, r.stripe_refund_id) for r in booked] == [
        (Decimal("5.00"), by_charge.id),
        (Decimal("20.00"), by_intent.id),
    ]
    assert all(r.request is None for r in booked)
    assert LedgerEntry.objects.filter(refund__payment=paid).count() == 2
    assert owed(order) == Decimal("25.00")  # money back; staff decide if it reduces the charge
    told = Finding.objects.filter(payment=paid, code=services.REFUND_OUTSIDE_PORTAL)
    assert told.count() == 2 and "outside the portal" in told[0].message


@pytest.mark.django_db
def test_a_refund_whose_answer_was_lost_is_booked_from_its_event_and_never_sent_twice(
    in_aquakids, aquakids
):
    order, paid = card_paid("50.00", "lost@example.com")
    request, created = services._refund_reserve(
        payment=paid,
        amount=Decimal("20.00"),
        reason="Lost answer",
        meaning="credit_note",
        method="card",
        key="refund:lost",
        actor_user=None,
    )
    assert created and request.status == "pending"
    # Stripe made it; our side never heard back.
    made = gateway.refund_create(
        payment_intent_id=paid.stripe_payment_intent_id,
        amount=Decimal("20.00"),
        currency="EUR",
        key=f"lost-{request.pk}",
        metadata={"refund_request": str(request.pk)},
    )
    event = refund_event("refund.created", made.to_dict(), "evt_lost")
    assert post(*signed(event)).status_code == 200
    connection.set_tenant(aquakids)
    request.refresh_from_db()
    assert request.status == "succeeded" and request.refund.stripe_refund_id == made.id
    assert owed(order) == 0 and order.credit_notes.get().amount == Decimal("20.00")
    # Sending it again finds it at Stripe and makes nothing new.
    assert services.refund_request_send(request=request).status == "succeeded"
    assert len(gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)) == 1
    assert not Finding.objects.filter(payment=paid).exists()


@pytest.mark.django_db
def test_a_pending_refund_sent_again_finds_stripes_refund_first(in_aquakids):
    order, paid = card_paid("30.00", "again@example.com")
    request, _ = services._refund_reserve(
        payment=paid,
        amount=Decimal("10.00"),
        reason="Retry",
        meaning="still_owed",
        method="card",
        key="refund:again",
        actor_user=None,
    )
    gateway.refund_create(
        payment_intent_id=paid.stripe_payment_intent_id,
        amount=Decimal("10.00"),
        currency="EUR",
        key=f"again-{request.pk}",
        metadata={"refund_request": str(request.pk)},
    )
    done = services.refund_request_send(request=request)
    assert done.status == "succeeded" and owed(order) == Decimal("10.00")
    assert len(gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)) == 1


# --- The staff's refund form ------------------------------------------------------------------


@pytest.fixture
def staff(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


def form_key(html: str) -> str:
    found = re.search(r'name="key" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.django_db
def test_staff_refund_from_the_payment_page(staff, in_aquakids):
    order, paid = card_paid("45.00", "form@example.com")
    change = staff.get(f"/admin/billing/payment/{paid.pk}/change/").content.decode()
    assert f"/admin/billing/payment/{paid.pk}/refund/" in change
    url = f"/admin/billing/payment/{paid.pk}/refund/"
    page = staff.get(url).content.decode()
    assert (
        "Reduce the charge (credit note)" in page and "Money back, the amount is still owed" in page
    )
    assert re.search(r'value="credit_note"[^>]*checked', page)  # the default
    assert "Back to the card" in page and "Up to 45,00" in page
    key = form_key(page)
    too_much = {"meaning": "credit_note", "amount": "50", "method": "card", "reason": "Ill"}
    refused = staff.post(url, {**too_much, "key": key})
    text = refused.content.decode()
    assert refused.status_code == 200 and "You can refund up to 45,00" in text
    assert 'value="50"' in text and 'value="Ill"' in text  # nothing typed is lost
    connection.set_tenant(in_aquakids)
    assert not RefundRequest.objects.filter(payment=paid).exists()
    for _ in range(2):  # a double submit
        done = staff.post(url, {**too_much, "amount": "45", "key": key})
        assert done.status_code == 302
    connection.set_tenant(in_aquakids)
    assert Refund.objects.filter(payment=paid).count() == 1
    assert owed(order) == 0 and order.credit_notes.get().amount == Decimal("45.00")
    assert len(gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)) == 1


@pytest.mark.django_db
def test_the_front_desk_cannot_refund(aquakids, in_aquakids):
    order, paid = card_paid("20.00", "desk-refund@example.com")
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    assert desk.get(f"/admin/billing/payment/{paid.pk}/refund/").status_code == 403
    response = desk.post(
        f"/admin/billing/payment/{paid.pk}/refund/",
        {"meaning": "credit_note", "amount": "5", "method": "card", "reason": "x", "key": "k"},
    )
    assert response.status_code == 403
    connection.set_tenant(in_aquakids)
    assert not RefundRequest.objects.filter(payment=paid).exists()


@pytest.mark.django_db
def test_refund_rows_are_read_only_in_the_admin(staff, in_aquakids):
    order, paid = card_paid("20.00", "ro@example.com")
    done = services.refund_create(payment=paid, amount=Decimal("5"), reason="x", actor_user=None)
    assert staff.get("/admin/billing/refund/add/").status_code == 403
    assert staff.post(f"/admin/billing/refund/{done.refund.pk}/delete/").status_code == 403
    assert staff.get("/admin/billing/refundrequest/add/").status_code == 403
    change = staff.get(f"/admin/billing/payment/{paid.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()


@pytest.mark.django_db
def test_stripe_unreachable_holds_the_refund_until_it_is_sent_again(staff, in_aquakids, settings):
    order, paid = card_paid("40.00", "unreachable@example.com")
    reachable = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    waiting = services.refund_create(
        payment=paid, amount=Decimal("15"), reason="Pool closed", actor_user=None
    )
    assert waiting.status == "pending" and "not answered" in waiting.failure_message
    assert services.payment_refundable(paid) == Decimal("25.00")  # the 15 is held
    assert owed(order) == 0 and not Refund.objects.filter(payment=paid).exists()
    settings.STRIPE_API_BASE = reachable
    url = f"/admin/billing/refundrequest/{waiting.pk}/send-again/"
    assert "Ask Stripe again" in staff.get(url).content.decode()  # asks first
    connection.set_tenant(in_aquakids)
    assert RefundRequest.objects.get(pk=waiting.pk).status == "pending"
    response = staff.post(url)
    assert response.status_code == 302
    connection.set_tenant(in_aquakids)
    waiting.refresh_from_db()
    assert waiting.status == "succeeded" and owed(order) == Decimal("15.00")
    assert len(gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)) == 1


def test_reconciliation_asks_stripe_again_for_a_refund_it_did_not_answer(in_aquakids, settings):
    order, paid = card_paid("40.00", "unanswered-refund@example.com")
    reachable = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    waiting = services.refund_create(
        payment=paid, amount=Decimal("12"), reason="Pool closed", actor_user=None
    )
    settings.STRIPE_API_BASE = reachable
    assert waiting.status == "pending"
    services.payments_reconcile()  # too young: still being answered
    assert RefundRequest.objects.get(pk=waiting.pk).status == "pending"
    clock.advance(services.SETTLE_AFTER + timedelta(minutes=1))
    assert services.payments_reconcile()["refunds"] == 1
    waiting.refresh_from_db()
    assert waiting.status == "succeeded" and owed(order) == Decimal("12.00")
    assert Refund.objects.filter(payment=paid).count() == 1
    services.payments_reconcile()  # nothing left to ask
    assert len(gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)) == 1
