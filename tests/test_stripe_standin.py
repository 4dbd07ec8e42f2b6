"""The local Stripe stand-in (devtools.stripe_standin) answers as Stripe does
where our code depends on it. The tests talk to it over HTTP, with the official
`stripe` client and with raw requests where headers or broken connections
matter. They start a stand-in of their own (resets and faults must not touch
the one the rest of the suite uses), except the first, which checks that the
suite's stand-in is this one."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe
from django.conf import settings

from devtools.stripe_standin.idempotency import IdempotencyStore

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_standin_tests"


# --- the stand-in and its clients ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.stripe_standin", "--port", str(port), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        assert process.poll() is None, "the stand-in did not start"
        assert time.monotonic() < deadline, "the stand-in did not answer"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture(autouse=True)
def fresh(request):
    """Each test starts from an empty store (webhooks stay registered)."""
    if "base" in request.fixturenames:
        raw(request.getfixturevalue("base"), "POST", "/_test/reset")


def client(base: str, *, retries: int = 0, timeout: float = 10) -> stripe.StripeClient:
    return stripe.StripeClient(
        KEY,
        base_addresses={"api": base},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def raw(
    base: str,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    json_body: Any = None,
    timeout: float = 10,
) -> Answer:
    """One request with urllib: form-encoded parameters, API key, optional
    Idempotency-Key; any status is returned, not raised."""
    headers = {"Authorization": f"Bearer {KEY}"}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif params is not None:
        data = urllib.parse.urlencode(params).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def count(base: str, kind: str) -> int:
    return raw(base, "GET", f"/v1/{kind}?limit=100").json()["total_count"]


INTENT = {"amount": "1500", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true"}


def new_card(api: stripe.StripeClient, number: str) -> str:
    return api.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    ).id


# --- webhooks ---------------------------------------------------------------------


class Listener:
    """A tiny local endpoint the stand-in delivers its signed events to."""

    def __init__(self) -> None:
        received: queue.Queue[tuple[str, bytes]] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((self.headers.get("Stripe-Signature", ""), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, about: str, *, until: set[str], seconds: float = 10) -> list[dict[str, Any]]:
        """Verified events about an object (a PaymentIntent and its charge and
        refunds), as they arrive, until each type in `until` came. Events of
        earlier tests still on their way are left out."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while not until <= {e["type"] for e in events}:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"missing events: {until - {e['type'] for e in events}}"
            try:
                signature, body = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            event = stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET).to_dict()
            obj = event["data"]["object"]
            if about in (obj.get("id"), obj.get("payment_intent")):
                events.append(event)
        return events


@pytest.fixture
def listener(base):
    hooks = Listener()
    data = urllib.parse.urlencode({"url": hooks.url, "secret": WEBHOOK_SECRET}).encode()
    urllib.request.urlopen(f"{base}/_config/webhooks/tests", data=data, timeout=5).close()
    yield hooks
    hooks.server.shutdown()


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"]["object"] for e in events if e["type"] == kind]


# --- the suite's own stand-in -----------------------------------------------------------


def test_the_suite_runs_against_this_stand_in():
    """`make test` starts devtools.stripe_standin (not bare localstripe)."""
    assert settings.STRIPE_API_BASE, "the runner sets STRIPE_API_BASE"
    answer = raw(settings.STRIPE_API_BASE, "GET", "/_test/faults")
    assert answer.status == 200 and answer.json() == {"faults": []}


# --- 1. idempotency --------------------------------------------------------------------


def test_same_key_same_parameters_replays_the_stored_answer_without_acting_again(base):
    first = raw(base, "POST", "/v1/payment_intents", INTENT, key="order-1")
    again = raw(base, "POST", "/v1/payment_intents", INTENT, key="order-1")
    assert first.status == again.status == 200
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(base, "payment_intents") == 1
    assert count(base, "charges") == 1

    # Another key acts again.
    other = raw(base, "POST", "/v1/payment_intents", INTENT, key="order-2")
    assert other.json()["id"] != first.json()["id"]
    assert count(base, "payment_intents") == 2


def test_the_stripe_client_gets_the_same_object_for_the_same_key(base):
    api = client(base)
    params = {"email": "ana@example.com", "metadata": {"guardian": "7"}}
    one = api.v1.customers.create(params=params, options={"idempotency_key": "cus-7"})
    two = api.v1.customers.create(params=params, options={"idempotency_key": "cus-7"})
    assert one.id == two.id
    assert count(base, "customers") == 1


def test_a_declined_answer_is_replayed_too(base):
    declined = {**INTENT, "payment_method": "pm_card_visa_chargeDeclined"}
    first = raw(base, "POST", "/v1/payment_intents", declined, key="d-1")
    again = raw(base, "POST", "/v1/payment_intents", declined, key="d-1")
    assert first.status == again.status == 402
    assert again.body == first.body
    assert count(base, "payment_intents") == 1


def test_same_key_with_other_parameters_is_an_idempotency_error(base):
    api = client(base)
    api.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        api.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "k"})
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    assert "same parameters" in caught.value.json_body["error"]["message"]
    assert count(base, "customers") == 1

    # ... and on another endpoint.
    other = raw(base, "POST", "/v1/payment_intents", INTENT, key="k")
    assert other.status == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert count(base, "payment_intents") == 0


def test_refused_requests_are_not_stored_so_a_corrected_retry_goes_through(base):
    bad = raw(base, "POST", "/v1/payment_intents", {**INTENT, "amount": "-5"}, key="fix-me")
    assert bad.status == 400
    good = raw(base, "POST", "/v1/payment_intents", INTENT, key="fix-me")
    assert good.status == 200 and good.json()["status"] == "succeeded"


def test_keys_are_kept_for_the_ttl_then_forgotten():
    now = [1000.0]
    keys = IdempotencyStore(ttl=24 * 3600, clock=lambda: now[0])
    keys.begin("sk", "old", "POST /v1/refunds", "f1", "req_1").status = 200
    now[0] += 3600
    keys.begin("sk", "new", "POST /v1/refunds", "f2", "req_2").status = 200
    now[0] += 23 * 3600 - 1
    assert keys.get("sk", "old") is not None
    now[0] += 2
    assert keys.get("sk", "old") is None
    assert keys.get("sk", "new") is not None
    assert keys.get("other-account", "new") is None
    assert len(keys) == 1


# --- 2. 3-D Secure on-session and off-session ---------------------------------------------


@pytest.mark.parametrize("number", ["4000002760003184", "4000002500003155"])
def test_off_session_payment_needing_authentication_is_refused_with_402(base, number):
    api = client(base)
    customer = api.v1.customers.create(params={"email": "off@example.com"}).id
    pm = new_card(api, number)
    with pytest.raises(stripe.CardError) as caught:
        api.v1.payment_intents.create(
            params={
                "amount": 2000,
                "currency": "eur",
                "customer": customer,
                "payment_method": pm,
                "off_session": True,
                "confirm": True,
            }
        )
    error = caught.value
    assert error.http_status == 402
    assert error.code == "authentication_required"
    body = error.json_body["error"]
    assert body["type"] == "card_error"
    assert body["decline_code"] == "authentication_required"
    assert body["charge"].startswith("ch_")
    assert body["payment_method"]["id"] == pm
    intent = error.error.payment_intent
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "authentication_required"
    again = api.v1.payment_intents.retrieve(intent.id)
    assert again.status == "requires_payment_method"
    assert again.last_payment_error.decline_code == "authentication_required"


def test_off_session_rules_per_card(base):
    api = client(base)
    customer = api.v1.customers.create(params={"email": "rules@example.com"}).id

    def off_session(pm: str) -> str:
        try:
            return api.v1.payment_intents.create(
                params={
                    "amount": 500,
                    "currency": "eur",
                    "customer": customer,
                    "payment_method": pm,
                    "off_session": True,
                    "confirm": True,
                }
            ).status
        except stripe.CardError as error:
            return error.code or ""

    def set_up(number: str) -> str:
        pm = new_card(api, number)
        setup = api.v1.setup_intents.create(params={"customer": customer})
        setup = api.v1.setup_intents.confirm(setup.id, params={"payment_method": pm})
        if setup.status == "requires_action":  # what Stripe.js does after 3-D Secure
            setup = api.v1.setup_intents.confirm(setup.id)
        assert setup.status == "succeeded"
        return pm

    # 3155: authentication once when set up; off-session then succeeds.
    assert off_session(set_up("4000002500003155")) == "succeeded"
    # 3184: every payment needs authentication, set up or not.
    assert off_session(set_up("4000002760003184")) == "authentication_required"
    # 0446: off-session payments succeed even without set-up.
    assert off_session(new_card(api, "4000003800000446")) == "succeeded"
    # A plain card is not affected.
    assert off_session(new_card(api, "4242424242424242")) == "succeeded"


@pytest.mark.parametrize("number", ["4000002500003155", "4000002760003184", "4000003800000446"])
def test_on_session_confirm_requires_action_and_authenticate_completes_it(base, number):
    api = client(base)
    intent = api.v1.payment_intents.create(
        params={
            "amount": 700,
            "currency": "eur",
            "payment_method": new_card(api, number),
            "confirm": True,
        }
    )
    assert intent.status == "requires_action"
    assert intent.next_action.type == "use_stripe_sdk"
    # What localstripe's Stripe.js does (billing/tests/helpers.py authenticate_3ds).
    answer = raw(
        base,
        "POST",
        f"/v1/payment_intents/{intent.id}/_authenticate?success=true",
        json_body={"key": "pk_test_standin", "client_secret": intent.client_secret},
    )
    assert answer.status == 200
    assert api.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_failed_authentication_moves_back_to_requires_payment_method(base, listener):
    api = client(base)
    intent = api.v1.payment_intents.create(
        params={
            "amount": 700,
            "currency": "eur",
            "payment_method": new_card(api, "4000002500003155"),
            "confirm": True,
        }
    )
    raw(
        base,
        "POST",
        f"/v1/payment_intents/{intent.id}/_authenticate?success=false",
        json_body={"key": "pk_test_standin", "client_secret": intent.client_secret},
    )
    failed = api.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    events = listener.events(intent.id, until={"payment_intent.payment_failed"})
    assert of_type(events, "payment_intent.payment_failed")[0]["id"] == intent.id


# --- 3. decline codes --------------------------------------------------------------------

DECLINES = [
    ("4000000000000002", "card_declined", "generic_decline", "Your card was declined."),
    (
        "4000000000009995",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    ("4000000000009987", "card_declined", "lost_card", "Your card was declined."),
    ("4000000000009979", "card_declined", "stolen_card", "Your card was declined."),
    ("4000000000000069", "expired_card", None, "Your card has expired."),
    ("4000000000000127", "incorrect_cvc", None, "Your card's security code is incorrect."),
    ("4000000000000119", "processing_error", None, "An error occurred while processing your card."),
    ("4000000000000341", "card_declined", "generic_decline", "Your card was declined."),
]


@pytest.mark.parametrize(("number", "code", "decline_code", "message"), DECLINES)
def test_declines_carry_stripes_codes(base, number, code, decline_code, message):
    api = client(base)
    with pytest.raises(stripe.CardError) as caught:
        api.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "eur",
                "payment_method": new_card(api, number),
                "confirm": True,
                "metadata": {"payment": "42"},
            }
        )
    error = caught.value
    assert error.http_status == 402 and error.code == code
    body = error.json_body["error"]
    assert body["type"] == "card_error"
    assert body.get("decline_code") == decline_code
    assert body["message"].startswith(message)
    assert error.user_message == body["message"]
    assert body["charge"].startswith("ch_")
    assert body["payment_intent"]["status"] == "requires_payment_method"
    assert body["payment_intent"]["last_payment_error"]["code"] == code
    charge = api.v1.charges.retrieve(body["charge"])
    assert charge.status == "failed" and charge.failure_code == code
    assert charge.payment_intent == body["payment_intent"]["id"]


def test_a_declined_card_is_refused_on_attach_with_its_decline_code(base):
    api = client(base)
    customer = api.v1.customers.create(params={"email": "attach@example.com"}).id
    pm = new_card(api, "4000000000009995")
    with pytest.raises(stripe.CardError) as caught:
        api.v1.payment_methods.attach(pm, params={"customer": customer})
    assert caught.value.code == "card_declined"
    assert caught.value.json_body["error"]["decline_code"] == "insufficient_funds"


def test_a_new_payment_method_can_be_confirmed_after_a_decline(base):
    api = client(base)
    with pytest.raises(stripe.CardError) as caught:
        api.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "eur",
                "payment_method": "pm_card_visa_chargeDeclined",
                "confirm": True,
            }
        )
    intent_id = caught.value.json_body["error"]["payment_intent"]["id"]
    intent = api.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa"})
    assert intent.status == "succeeded"
    assert intent.last_payment_error is None


# --- 4. refunds and their events -----------------------------------------------------------


def test_refunds_send_charge_refunded_and_refund_events(base, listener):
    api = client(base)
    intent = api.v1.payment_intents.create(
        params={
            "amount": 3000,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"provider": "aquakids", "payment": "12"},
        }
    )
    assert intent.status == "succeeded"
    ours = api.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 1000, "metadata": {"refund": "3"}},
        options={"idempotency_key": "aquakids-refund-3"},
    )
    assert ours.status == "succeeded" and ours.payment_intent == intent.id
    first = listener.events(
        intent.id, until={"refund.created", "refund.updated", "charge.refunded"}
    )

    # "In Stripe's dashboard": another client, no idempotency key of ours.
    dashboard = raw(base, "POST", "/v1/refunds", {"charge": ours.charge})
    assert dashboard.status == 200, dashboard.body
    assert dashboard.json()["amount"] == 2000
    assert dashboard.json()["payment_intent"] == intent.id
    second = listener.events(
        intent.id, until={"refund.created", "refund.updated", "charge.refunded"}
    )

    (refund,) = of_type(first, "refund.created")
    assert refund["id"] == ours.id
    assert refund["payment_intent"] == intent.id and refund["charge"] == ours.charge
    assert (refund["amount"], refund["currency"], refund["status"]) == (1000, "eur", "succeeded")
    assert refund["metadata"] == {"refund": "3"}
    assert of_type(first, "refund.updated")[0]["id"] == ours.id

    (charge,) = of_type(first, "charge.refunded")
    assert charge["id"] == ours.charge and charge["payment_intent"] == intent.id
    assert charge["metadata"] == {"provider": "aquakids", "payment": "12"}
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, False)
    assert [r["id"] for r in charge["refunds"]["data"]] == [ours.id]

    (charge,) = of_type(second, "charge.refunded")
    assert (charge["amount_refunded"], charge["refunded"]) == (3000, True)
    assert [r["id"] for r in charge["refunds"]["data"]] == [dashboard.json()["id"], ours.id]
    assert of_type(second, "refund.created")[0]["id"] == dashboard.json()["id"]

    # Nothing is left to refund.
    with pytest.raises(stripe.InvalidRequestError) as caught:
        api.v1.refunds.create(params={"payment_intent": intent.id})
    assert caught.value.code == "charge_already_refunded"


def test_a_refund_larger_than_what_is_left_is_refused(base):
    api = client(base)
    intent = api.v1.payment_intents.create(params=dict(INTENT))
    with pytest.raises(stripe.InvalidRequestError) as caught:
        api.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1501})
    assert caught.value.code == "amount_too_large"
    assert count(base, "refunds") == 0


# --- 5. SEPA Direct Debit -----------------------------------------------------------------


def sepa_intent(api: stripe.StripeClient, customer: str | None = None) -> Any:
    pm = api.v1.payment_methods.create(
        params={
            "type": "sepa_debit",
            "sepa_debit": {"iban": "DE89370400440532013000"},
            "billing_details": {"name": "Ana Parent", "email": "ana@example.com"},
        }
    )
    assert pm.sepa_debit is not None
    assert (pm.sepa_debit.last4, pm.sepa_debit.bank_code, pm.sepa_debit.country) == (
        "3000",
        "37040044",
        "DE",
    )
    return api.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "eur",
            # The parameter's name in stripe 16's API version; Stripe answers
            # with payment_method_types.
            "allowed_payment_method_types": ["sepa_debit"],
            "payment_method": pm.id,
            "confirm": True,
            "metadata": {"payment": "9"},
        }
    )


def test_sepa_stays_processing_until_settled(base, listener):
    api = client(base)
    intent = sepa_intent(api)
    assert intent.status == "processing"
    assert intent.payment_method_types == ["sepa_debit"]
    time.sleep(1.5)  # localstripe used to settle SEPA by itself after 0.5 s
    assert api.v1.payment_intents.retrieve(intent.id).status == "processing"
    processing = listener.events(intent.id, until={"payment_intent.processing"})
    assert of_type(processing, "payment_intent.processing")[0]["status"] == "processing"

    settled = raw(base, "POST", f"/_test/payment_intents/{intent.id}/settle")
    assert settled.status == 200 and settled.json()["status"] == "succeeded"
    assert api.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    events = listener.events(intent.id, until={"payment_intent.succeeded"})
    assert of_type(events, "payment_intent.succeeded")[0]["id"] == intent.id
    # Settled once only.
    assert raw(base, "POST", f"/_test/payment_intents/{intent.id}/settle").status == 400


def test_sepa_fails_when_the_bank_refuses(base, listener):
    api = client(base)
    intent = sepa_intent(api)
    failed = raw(
        base,
        "POST",
        f"/_test/payment_intents/{intent.id}/fail",
        json_body={"code": "account_closed", "message": "The bank account has been closed."},
    )
    assert failed.status == 200
    again = api.v1.payment_intents.retrieve(intent.id)
    assert again.status == "requires_payment_method"
    assert again.last_payment_error.code == "account_closed"
    assert again.last_payment_error.message == "The bank account has been closed."
    assert again.last_payment_error.payment_method.type == "sepa_debit"
    events = listener.events(intent.id, until={"payment_intent.payment_failed"})
    assert of_type(events, "payment_intent.payment_failed")[0]["id"] == intent.id
    # A card intent is not processing: nothing to fail.
    card = api.v1.payment_intents.create(params=dict(INTENT))
    assert raw(base, "POST", f"/_test/payment_intents/{card.id}/fail").status == 400


def test_sepa_is_refused_on_a_card_only_intent_and_outside_eur(base):
    api = client(base)
    pm = api.v1.payment_methods.create(
        params={"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}}
    ).id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        api.v1.payment_intents.create(
            params={"amount": 100, "currency": "eur", "payment_method": pm, "confirm": True}
        )
    assert caught.value.code == "payment_intent_incompatible_payment_method"
    assert count(base, "payment_intents") == 0  # refused before anything was made
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.payment_intents.create(
            params={"amount": 100, "currency": "gbp", "payment_method_types": ["sepa_debit"]}
        )


def test_sepa_setup_intent_accepts_the_mandate_and_attaches(base):
    api = client(base)
    customer = api.v1.customers.create(params={"email": "sepa@example.com"}).id
    pm = api.v1.payment_methods.create(
        params={"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}}
    ).id
    setup = api.v1.setup_intents.create(
        params={"customer": customer, "payment_method_types": ["sepa_debit"]}
    )
    setup = api.v1.setup_intents.confirm(
        setup.id,
        params={
            "payment_method": pm,
            "mandate_data": {"customer_acceptance": {"type": "offline"}},
        },
    )
    assert setup.status == "succeeded" and setup.mandate.startswith("mandate_")
    assert api.v1.payment_methods.retrieve(pm).customer == customer
    listed = api.v1.payment_methods.list(params={"customer": customer, "type": "sepa_debit"})
    assert [m.id for m in listed.data] == [pm]
    # Charged later, off-session: processing like any SEPA debit.
    intent = api.v1.payment_intents.create(
        params={
            "amount": 900,
            "currency": "eur",
            "customer": customer,
            "payment_method": pm,
            "payment_method_types": ["sepa_debit"],
            "off_session": True,
            "confirm": True,
        }
    )
    assert intent.status == "processing"


# --- 6. reset ------------------------------------------------------------------------------


def test_reset_clears_the_store_and_keys_and_keeps_webhooks(base, listener):
    api = client(base)
    customer = api.v1.customers.create(
        params={"email": "gone@example.com"}, options={"idempotency_key": "same"}
    )
    answer = raw(base, "POST", "/_test/reset")
    assert answer.status == 200 and "tests" in answer.json()["webhooks"]
    assert raw(base, "GET", f"/v1/customers/{customer.id}").status == 404
    assert count(base, "customers") == 0
    # The key is forgotten with the objects: other parameters are fine now.
    api.v1.customers.create(
        params={"email": "new@example.com"}, options={"idempotency_key": "same"}
    )
    # The webhook is still registered.
    intent = api.v1.payment_intents.create(params=dict(INTENT))
    assert listener.events(intent.id, until={"payment_intent.succeeded"})


# --- 7. faults on demand -----------------------------------------------------------------


def fault(base: str, **spec: Any) -> dict[str, Any]:
    answer = raw(base, "POST", "/_test/faults", json_body=spec)
    assert answer.status == 200, answer.body
    return answer.json()


def test_500_before_does_nothing(base):
    fault(base, method="POST", path_prefix="/v1/payment_intents", mode="500_before")
    with pytest.raises(stripe.APIError) as caught:
        client(base).v1.payment_intents.create(params=dict(INTENT))
    assert caught.value.http_status == 500
    assert count(base, "payment_intents") == 0
    # Used up: the next call goes through.
    assert client(base).v1.payment_intents.create(params=dict(INTENT)).status == "succeeded"


def test_500_after_does_the_work_and_a_retry_with_the_key_gets_it(base):
    fault(base, method="POST", path_prefix="/v1/payment_intents", mode="500_after", times=1)
    failed = raw(base, "POST", "/v1/payment_intents", INTENT, key="pay-1")
    assert failed.status == 500
    assert failed.json()["error"]["type"] == "api_error"
    assert count(base, "payment_intents") == 1
    retry = raw(base, "POST", "/v1/payment_intents", INTENT, key="pay-1")
    assert retry.status == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["status"] == "succeeded"
    assert count(base, "payment_intents") == 1


def test_the_stripe_clients_own_retries_see_one_payment(base):
    fault(base, path_prefix="/v1/payment_intents", mode="500_after", times=2)
    intent = client(base, retries=2).v1.payment_intents.create(params=dict(INTENT))
    assert intent.status == "succeeded"
    assert count(base, "payment_intents") == 1
    assert count(base, "charges") == 1


def test_timeout_after_then_retry_by_key(base):
    fault(base, method="POST", path_prefix="/v1/payment_intents", mode="timeout_after", delay=3)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        client(base, timeout=0.5).v1.payment_intents.create(
            params=dict(INTENT), options={"idempotency_key": "slow-1"}
        )
    assert time.monotonic() - started < 2.5
    assert count(base, "payment_intents") == 1  # done, though nobody heard
    again = client(base).v1.payment_intents.create(
        params=dict(INTENT), options={"idempotency_key": "slow-1"}
    )
    assert again.status == "succeeded"
    assert count(base, "payment_intents") == 1


def test_timeout_with_client_retries_returns_the_stored_object(base):
    fault(base, path_prefix="/v1/refunds", mode="timeout_after", delay=3)
    api = client(base, retries=1, timeout=0.5)
    intent = api.v1.payment_intents.create(params=dict(INTENT))
    refund = api.v1.refunds.create(params={"payment_intent": intent.id, "amount": 200})
    assert refund.amount == 200
    assert count(base, "refunds") == 1


def test_connection_reset_after_then_retry_by_key(base):
    fault(base, path_prefix="/v1/customers", mode="connection_reset_after")
    port = urllib.parse.urlsplit(base).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body = urllib.parse.urlencode({"email": "reset@example.com"})
    connection.request(
        "POST",
        "/v1/customers",
        body=body,
        headers={
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": "reset-1",
        },
    )
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        connection.getresponse()
    connection.close()
    assert count(base, "customers") == 1
    retry = raw(base, "POST", "/v1/customers", {"email": "reset@example.com"}, key="reset-1")
    assert retry.status == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert count(base, "customers") == 1


def test_faults_are_listed_matched_and_cleared(base):
    armed = fault(base, method="GET", path_prefix="/v1/customers", mode="500_before", times=3)
    assert armed["times"] == 3 and armed["delay"] == 35.0 and armed["method"] == "GET"
    assert raw(base, "GET", "/_test/faults").json()["faults"] == [armed]
    # Another method or path is not affected.
    assert raw(base, "POST", "/v1/customers", {"email": "x@example.com"}).status == 200
    assert raw(base, "GET", "/v1/payment_intents").status == 200
    assert raw(base, "GET", "/v1/customers").status == 500
    assert raw(base, "GET", "/_test/faults").json()["faults"][0]["times"] == 2
    assert raw(base, "DELETE", "/_test/faults").json() == {"cleared": 1}
    assert raw(base, "GET", "/v1/customers").status == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"mode": "explode"},
        {"mode": "500_after", "times": 0},
        {"mode": "500_after", "path_prefix": "/_test/"},
        {"mode": "timeout_after", "delay": -1},
        {"mode": "500_after", "colour": "red"},
    ],
)
def test_a_fault_that_cannot_be_used_is_refused(base, spec):
    answer = raw(base, "POST", "/_test/faults", json_body=spec)
    assert answer.status == 400
    assert raw(base, "GET", "/_test/faults").json() == {"faults": []}
