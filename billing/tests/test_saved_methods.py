"""Saved payment methods, as the seed describes them: every guardian with a
login keeps up to three of their own; paying with one, applying credit and
authorising recurring billing need "may pay"; the family's other guardians'
methods are shown read-only and nobody pays with another's."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, connection, transaction

from billing import services
from billing.models import Order, PaymentMethod
from billing.services import BillingError
from conftest import client_for, login
from enrollments.tests.factories import FamilyFactory
from families.models import Guardian
from portal.tenancy import use_provider
from providers.models import Provider

from .helpers import card, new_order, payer, saved_card

pytestmark = pytest.mark.django_db


def novak(aquakids, first_name: str) -> Guardian:
    use_provider(aquakids)
    return Guardian.objects.get(family__name="Novak", first_name=first_name)


@pytest.fixture
def sam(aquakids) -> object:
    return login(client_for("aquakids"), aquakids, "sam@aquakids.test")


def test_a_guardian_who_may_not_pay_adds_edits_and_deletes_their_own_methods(aquakids, sam):
    sam_g = novak(aquakids, "Sam")
    assert not sam_g.may_pay
    # The card form's SetupIntent is theirs to ask for.
    assert sam.post("/billing/card-setup/").json()["client_secret"]
    sam.post("/billing/methods/add/", {"stripe_payment_method": card()})
    sam.post("/billing/methods/add/", {"stripe_payment_method": card("5555555555554444")})
    first, second = PaymentMethod.objects.filter(guardian=sam_g).order_by("slot")
    assert first.is_primary and not first.recurring_authorized
    sam.post(f"/billing/methods/{second.pk}/", {"is_primary": "on"})
    second.refresh_from_db()
    assert second.is_primary
    sam.post(f"/billing/methods/{first.pk}/delete/")
    assert list(PaymentMethod.objects.filter(guardian=sam_g)) == [second]
    html = sam.get("/billing/").content.decode()
    assert "•••• 4444" in html and f"/billing/methods/{second.pk}/delete/" in html
    assert "paying with them needs the primary guardian" in html


def test_a_guardian_who_may_not_pay_cannot_authorise_recurring_billing(aquakids, sam):
    sam_g = novak(aquakids, "Sam")
    method = saved_card(sam_g)
    page = sam.get(f"/billing/methods/{method.pk}/").content.decode()
    assert 'name="recurring_authorized"' not in page
    assert "Ask Ana Novak, the primary guardian." in page
    response = sam.post(
        f"/billing/methods/{method.pk}/", {"is_primary": "on", "recurring_authorized": "on"}
    )
    assert response.status_code == 400
    assert "Only a guardian who may pay can authorise" in response.content.decode()
    method.refresh_from_db()
    assert not method.recurring_authorized
    # In the service too, whoever calls it.
    with pytest.raises(BillingError, match="Only a guardian who may pay can authorise"):
        services.payment_method_update(
            method=method, actor=sam_g, is_primary=True, recurring_authorized=True
        )
    # Once allowed to pay, they may.
    Guardian.objects.filter(pk=sam_g.pk).update(can_pay=True)
    sam_g.refresh_from_db()
    services.payment_method_update(
        method=method, actor=sam_g, is_primary=True, recurring_authorized=True
    )
    method.refresh_from_db()
    assert method.recurring_authorized


def test_where_recurring_authorisation_is_required_only_a_payer_s_method_is_authorised(
    aquakids,
):
    ana_g, sam_g = novak(aquakids, "Ana"), novak(aquakids, "Sam")
    Provider.objects.filter(pk=aquakids.pk).update(require_recurring_authorisation=True)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    assert saved_card(ana_g).recurring_authorized
    assert not saved_card(sam_g).recurring_authorized


def test_other_guardians_methods_are_shown_read_only(aquakids, ana, sam):
    ana_method = saved_card(novak(aquakids, "Ana"))
    sam_method = saved_card(novak(aquakids, "Sam"), "5555555555554444")
    html = sam.get("/billing/").content.decode()
    others = html.split("Saved by the family’s other guardians")[1].split("</section>")[0]
    assert "Ana Novak’s Visa •••• 4242" in re.sub(r"\s+", " ", others)
    assert f"/billing/methods/{ana_method.pk}/" not in html  # neither edit nor delete
    assert f"/billing/methods/{sam_method.pk}/delete/" in html
    assert "Sam Novak’s" in ana.get("/billing/").content.decode()
    # Another guardian's method cannot be opened, changed or deleted.
    assert sam.get(f"/billing/methods/{ana_method.pk}/").status_code == 404
    assert sam.post(f"/billing/methods/{ana_method.pk}/", {"is_primary": "on"}).status_code == 404
    assert sam.post(f"/billing/methods/{ana_method.pk}/delete/").status_code == 404
    connection.set_tenant(aquakids)
    assert PaymentMethod.objects.filter(pk=ana_method.pk).exists()
    with pytest.raises(BillingError, match="Only the guardian who saved"):
        services.payment_method_delete(method=ana_method, actor=novak(aquakids, "Sam"))


def test_nobody_pays_with_another_guardian_s_method(aquakids, ana):
    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 2")
    sam_g = novak(aquakids, "Sam")
    Guardian.objects.filter(pk=sam_g.pk).update(can_pay=True)  # may pay, with their own
    sam_method = saved_card(sam_g)
    page = ana.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    attempt = re.search(r'name="attempt" value="(\w+)"', page).group(1)
    response = ana.post(
        f"/billing/orders/{order.pk}/pay/",
        {"attempt": attempt, "payment_method": str(sam_method.pk)},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert "belongs to another guardian" in response.json()["message"]
    # Nor by its Stripe id typed in as a new card.
    response = ana.post(
        f"/billing/orders/{order.pk}/pay/",
        {
            "attempt": attempt,
            "payment_method": "new",
            "stripe_payment_method": sam_method.stripe_payment_method_id,
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert "belongs to another guardian" in response.json()["message"]
    ana_g = novak(aquakids, "Ana")
    assert services.order_outstanding(order) > 0
    with pytest.raises(BillingError, match="belongs to another guardian"):
        services.payment_start(
            order=order,
            payer=ana_g,
            stripe_payment_method_id=sam_method.stripe_payment_method_id,
            attempt_key="someone-else",
        )


def test_another_family_s_method_is_not_found_on_the_pay_page(aquakids, ana):
    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 2")
    stranger = payer(FamilyFactory(), email="stranger@cards.test")
    theirs = saved_card(stranger)
    for value in (str(theirs.pk), "²", "x"):
        response = ana.post(
            f"/billing/orders/{order.pk}/pay/", {"attempt": "a1", "payment_method": value}
        )
        assert response.status_code == 404, value
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) > 0


def test_unticking_the_primary_method_keeps_one_primary(aquakids, ana):
    ana_g = novak(aquakids, "Ana")
    only = saved_card(ana_g)
    response = ana.post(f"/billing/methods/{only.pk}/", {"recurring_authorized": "on"})
    assert response.status_code == 400
    assert "always the primary one" in response.content.decode()
    only.refresh_from_db()
    assert only.is_primary and not only.recurring_authorized


def test_three_methods_each_and_the_database_refuses_a_fourth(aquakids):
    ana_g = novak(aquakids, "Ana")
    for number in ("4242424242424242", "5555555555554444", "4000056655665556"):
        saved_card(ana_g, number)
    with pytest.raises(BillingError, match="up to three"):
        saved_card(ana_g, "4242424242424242")
    # Each guardian has their own three.
    assert saved_card(novak(aquakids, "Sam")).slot == 1
    # Below the service, PostgreSQL refuses a fourth method and a second primary.
    for fields in ({"slot": 4}, {"slot": 2}, {"slot": 0}):
        with pytest.raises(IntegrityError), transaction.atomic():
            PaymentMethod.objects.create(
                guardian=ana_g,
                stripe_payment_method_id=f"pm_db_{fields['slot']}",
                last4="1",
                **fields,
            )
    sam_g = novak(aquakids, "Sam")
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentMethod.objects.create(
            guardian=sam_g, stripe_payment_method_id="pm_db_p", last4="1", slot=2, is_primary=True
        )


def test_new_order_helper_still_pays_with_the_payer_s_own_card(aquakids):
    """A guardian's own saved card still pays (the ownership check lets it through)."""
    connection.set_tenant(aquakids)
    family = FamilyFactory()
    own = payer(family, email="own-card@cards.test")
    method = saved_card(own)
    order = new_order(family=family, amount="12.00")
    payment = services.payment_start(
        order=order,
        payer=own,
        stripe_payment_method_id=method.stripe_payment_method_id,
        attempt_key="own",
    )
    assert payment.status == "succeeded"
