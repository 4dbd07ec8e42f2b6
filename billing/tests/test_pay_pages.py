"""The parent's side of paying: messages next to the field, no SetupIntent per
page view, a payment page that asks our server, and the pay hand-off from the
provider's website (minted on click, single-use, for one payment)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import connection

from billing import gateway, services
from billing.models import Order, Payment
from conftest import client_for
from families.models import Guardian
from providers.models import Provider

from .helpers import authenticate_3ds, card, saved_card

pytestmark = pytest.mark.django_db


def novak_order(aquakids, title="Autumn term: Swim Level 2"):
    connection.set_tenant(aquakids)
    return Order.objects.get(family__name="Novak", title=title)


def ana_guardian(aquakids):
    connection.set_tenant(aquakids)
    return Guardian.objects.get(user__email="ana@aquakids.test")


def attempt_of(page: str) -> str:
    found = re.search(r'name="attempt" value="(\w+)"', page)
    assert found, "the pay form carries its attempt key"
    return found.group(1)


def test_an_unknown_card_is_said_next_to_the_card_field(aquakids, ana):
    order = novak_order(aquakids)
    url = f"/billing/orders/{order.pk}/pay/"
    page = ana.get(url).content.decode()
    sent = {"attempt": attempt_of(page), "payment_method": "new", "stripe_payment_method": "pm_x1"}
    answer = ana.post(url, sent, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["field"] == "card" and "enter your card details again" in body["message"]
    assert body["attempt"] and body["attempt"] != sent["attempt"]  # the next try is a new one
    # Without JavaScript: the page again, the message by the card field, the choice kept.
    sent["attempt"] = body["attempt"]
    sent["stripe_payment_method"] = "pm_x2"
    html = ana.post(url, sent).content.decode()
    card_error = html.split('id="card-error"')[1].split("</ul>")[0]
    assert "hidden" not in card_error.split(">")[0]
    assert "enter your card details again" in card_error
    assert not Payment.objects.filter(order=order, status__in=["processing", "requires_action"])
    assert services.order_outstanding(order) > 0


def test_save_card_with_three_cards_says_so_and_charges_nothing(aquakids, ana):
    order = novak_order(aquakids)
    guardian = ana_guardian(aquakids)
    for number in ("4242424242424242", "5555555555554444", "4000056655665556"):
        saved_card(guardian, number)
    url = f"/billing/orders/{order.pk}/pay/"
    page = ana.get(url).content.decode()
    # Said before anything is typed: no box to tick, the reason instead.
    assert 'name="save"' not in page and "three saved cards" in page
    # A fourth saved from another tab meanwhile: refused next to the box, before any charge.
    answer = ana.post(
        url,
        {
            "attempt": attempt_of(page),
            "payment_method": "new",
            "stripe_payment_method": card(),
            "save": "on",
        },
        HTTP_ACCEPT="application/json",
    )
    assert answer.status_code == 400 and answer.json()["field"] == "save"
    assert not Payment.objects.filter(order=order).exists()
    assert guardian.payment_methods.count() == 3


def setup_intents_of(guardian) -> list[str]:
    customer = services.stripe_customer_for(guardian)
    found = gateway.client().v1.setup_intents.list(params={"limit": 100})
    return [s.id for s in found.auto_paging_iter() if s.customer == customer]


def test_a_setup_intent_per_card_entry_not_per_page_view(aquakids, ana):
    import json
    import urllib.request

    order = novak_order(aquakids)
    guardian = ana_guardian(aquakids)
    before = setup_intents_of(guardian)
    for _ in range(3):
        assert "seti_" not in ana.get(f"/billing/orders/{order.pk}/pay/").content.decode()
        assert "seti_" not in ana.get("/billing/methods/add/").content.decode()
    assert setup_intents_of(guardian) == before
    # Submitting a new card asks for one; asking again before it is used gets the same.
    first = ana.post("/billing/card-setup/").json()["client_secret"]
    assert ana.post("/billing/card-setup/").json()["client_secret"] == first
    assert len(setup_intents_of(guardian)) == len(before) + 1
    # Used (Stripe.js confirmed the card on it): the next card entry gets a new one.
    seti = first.split("_secret_")[0]
    request = urllib.request.Request(
        f"{settings.STRIPE_API_BASE}/v1/setup_intents/{seti}/confirm",
        data=json.dumps(
            {
                "key": settings.STRIPE_PUBLISHABLE_KEY,
                "use_stripe_sdk": True,
                "client_secret": first,
                "payment_method_data": {
                    "type": "card",
                    "card": {
                        "number": "4242424242424242",
                        "exp_month": 12,
                        "exp_year": 2031,
                        "cvc": "123",
                    },
                },
            }
        ).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    assert ana.post("/billing/card-setup/").json()["client_secret"] != first
    assert len(setup_intents_of(guardian)) == len(before) + 2


def test_the_payment_page_asks_our_server_with_growing_pauses(aquakids, ana):
    order = novak_order(aquakids)
    page = ana.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    started = ana.post(
        f"/billing/orders/{order.pk}/pay/",
        {
            "attempt": attempt_of(page),
            "payment_method": "new",
            "stripe_payment_method": card("4000002500003155"),
        },
        HTTP_ACCEPT="application/json",
    ).json()
    assert started["status"] == "requires_action" and started["client_secret"]
    payment = Payment.objects.get(pk=started["id"])
    authenticate_3ds(payment.stripe_payment_intent_id, started["client_secret"])
    html = ana.get(started["url"]).content.decode()
    # Stripe has the answer, but the page does not ask Stripe: it waits for ours.
    assert "Confirming your payment" in html
    assert 'hx-trigger="load delay:2s"' in html and "?wait=4" in html
    later = ana.get(started["url"] + "?wait=16", HTTP_HX_REQUEST="true").content.decode()
    assert later.lstrip().startswith('<div id="payment-status"')
    assert 'hx-trigger="load delay:16s"' in later and "?wait=30" in later
    assert "?wait=30" in ana.get(started["url"] + "?wait=30").content.decode()
    assert Payment.objects.get(pk=payment.pk).status == "requires_action"
    # Back from the bank, pay.js asks our server once; it reads Stripe's answer.
    checked = ana.post(started["check"], HTTP_ACCEPT="application/json").json()
    assert checked["status"] == "succeeded"
    done = ana.get(started["url"]).content.decode()
    assert "Paid, thank you" in done and "hx-trigger" not in done


def test_the_pay_hand_off_is_minted_on_click_single_use_and_for_one_payment(aquakids, ana):
    Provider.objects.filter(pk=aquakids.pk).update(
        embed_origins="https://www.aquakids-swim.example"
    )
    order = novak_order(aquakids)
    other = novak_order(aquakids, "Autumn term: Swim Level 1")
    # No token in any page (pages may be cached): only a POST mints one.
    for url in ("/", "/billing/", f"/billing/orders/{order.pk}/"):
        html = ana.get(url).content.decode()
        assert "/billing/continue/" not in html
        assert f"/billing/orders/{order.pk}/pay-in-a-tab/" in html or url == "/"
    mint = f"/billing/orders/{order.pk}/pay-in-a-tab/"
    assert ana.get(mint).status_code == 405
    back = "https://www.aquakids-swim.example/timetable"
    link = ana.post(mint, {"back": back}, HTTP_ACCEPT="application/json").json()["url"]
    assert link.startswith("/billing/continue/")
    # The new tab has no login (the frame's cookie belongs to the provider's site).
    tab = client_for("aquakids")
    asked = tab.get(link).content.decode()
    assert "Continue as" in asked and order.title in asked and "180,00" in asked
    assert tab.post(link).status_code == 302
    assert tab.get(f"/billing/orders/{order.pk}/pay/").status_code == 200
    # For this payment only.
    for elsewhere in ("/", "/billing/", f"/billing/orders/{other.pk}/pay/", "/account/"):
        assert tab.get(elsewhere).status_code == 403, elsewhere
    page = tab.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    started = tab.post(
        f"/billing/orders/{order.pk}/pay/",
        {"attempt": attempt_of(page), "payment_method": "new", "stripe_payment_method": card()},
        HTTP_ACCEPT="application/json",
    ).json()
    assert started["status"] == "succeeded"
    result = tab.get(started["url"])
    assert result.status_code == 200
    # Back to where the parent came from: the provider's page.
    assert 'href="https://www.aquakids-swim.example/timetable"' in result.content.decode()
    # Single-use.
    assert client_for("aquakids").post(link).status_code == 404
    # A page elsewhere is never a way back.
    elsewhere = ana.post(
        f"/billing/orders/{other.pk}/pay-in-a-tab/",
        {"back": "https://evil.example/"},
        HTTP_ACCEPT="application/json",
    ).json()["url"]
    third = client_for("aquakids")
    third.post(elsewhere)
    assert "evil.example" not in third.get(f"/billing/orders/{other.pk}/pay/").content.decode()
