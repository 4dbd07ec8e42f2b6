"""Apply credit: beside the Credit figure, asks how much (the most that can be
applied by default), confirms, applies once, and never spends more than the
family has when two orders take credit at once."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django_tenants.utils import tenant_context

from benefits import services as benefit_services
from benefits.models import CreditUse
from benefits.selectors import family_credit_balance
from billing import services
from billing.models import LedgerEntry, Order
from billing.services import BillingError
from families.models import Guardian

from .helpers import new_order, payer


def novak(aquakids):
    connection.set_tenant(aquakids)
    return Guardian.objects.get(user__email="ana@aquakids.test").family


def fields(html: str) -> dict[str, str]:
    key = re.search(r'name="key" value="([0-9a-f]+)"', html)
    amount = re.search(r'name="amount" value="([0-9.]+)"', html)
    assert key is not None
    return {"key": key.group(1), "amount": amount.group(1) if amount else ""}


@pytest.mark.django_db
def test_apply_credit_asks_how_much_and_applies_once(aquakids, ana):
    family = novak(aquakids)
    order = new_order(family=family, amount="30.00", title="Goggles")
    credit = family_credit_balance(family)
    assert credit > 0  # the demo family has some
    overview = ana.get("/billing/").content.decode()
    figure = overview.split("Credit</dt>")[1].split("</div>")[0]
    assert "Apply credit" in figure and "/billing/apply-credit/" in figure
    page = ana.get(f"/billing/orders/{order.pk}/apply-credit/").content.decode()
    shown = fields(page)
    assert Decimal(shown["amount"]) == min(credit, Decimal("30.00"))  # the most by default
    assert "Confirm" in page and f'value="{order.pk}" selected' in page
    for _ in range(2):  # a double submit
        done = ana.post(
            f"/billing/orders/{order.pk}/apply-credit/",
            {"order": order.pk, "amount": "5.00", "key": shown["key"]},
        )
        assert done.status_code == 302 and done["Location"] == f"/billing/orders/{order.pk}/"
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == Decimal("25.00")
    assert family_credit_balance(family) == credit - Decimal("5.00")
    assert LedgerEntry.objects.filter(order=order, kind="credit").count() == 1


@pytest.mark.django_db
def test_apply_credit_refuses_bad_amounts_next_to_the_field(aquakids, ana):
    family = novak(aquakids)
    order = new_order(family=family, amount="8.00", title="Cap")
    credit = family_credit_balance(family)
    url = f"/billing/orders/{order.pk}/apply-credit/"
    key = fields(ana.get(url).content.decode())["key"]
    cases = {
        "9.00": "This order owes 8,00",
        "0": "greater than or equal to 0.01",
        "abc": "Enter a number",
    }
    for typed, message in cases.items():
        html = ana.post(url, {"order": order.pk, "amount": typed, "key": key}).content.decode()
        errors = html.split('id="id_amount_error"')[1].split("</ul>")[0]
        assert message in errors, (typed, errors)
        assert f'value="{typed}"' in html  # nothing typed is lost
    big = new_order(family=family, amount=str(credit + 50), title="Big")
    html = ana.post(
        f"/billing/orders/{big.pk}/apply-credit/",
        {"order": big.pk, "amount": str(credit + 1), "key": key},
    ).content.decode()
    assert "Your credit is" in html.split('id="id_amount_error"')[1]
    connection.set_tenant(aquakids)
    assert family_credit_balance(family) == credit
    assert not LedgerEntry.objects.filter(order__in=[order, big], kind="credit").exists()


@pytest.mark.django_db
def test_another_family_gets_404_on_the_credit_pages(aquakids, ben):
    family = novak(aquakids)
    order = new_order(family=family, amount="12.00", title="Not Ben's")
    note = services.credit_note_issue(
        order=order, amount=Decimal("2"), reason="Goodwill", actor_user=None
    )
    for url in (
        f"/billing/orders/{order.pk}/apply-credit/",
        f"/billing/credit-notes/{note.pk}/pdf/",
    ):
        assert ben.get(url).status_code in (404, 405)
        assert ben.post(url, {"order": order.pk, "key": "k" * 32}).status_code == 404
    foreign = ben.post("/billing/apply-credit/", {"order": order.pk, "key": "k" * 32})
    assert foreign.status_code == 404
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == Decimal("10.00")


@pytest.mark.django_db
def test_a_credit_note_pdf_is_made_for_the_family(
    aquakids, ana, django_capture_on_commit_callbacks
):
    family = novak(aquakids)
    order = new_order(family=family, amount="12.00", title="Towel")
    note = services.credit_note_issue(
        order=order, amount=Decimal("4"), reason="Wrong size", actor_user=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post(f"/billing/credit-notes/{note.pk}/pdf/")
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    from billing.models import Document

    document = Document.objects.get(credit_note=note)
    assert document.status == "done" and document.family_id == family.pk, document.error


@pytest.mark.parametrize("amount", [None, Decimal("40.00")])
def test_credit_applied_to_two_orders_at_once_never_spends_more_than_the_balance(
    committed, race_provider, amount
):
    with tenant_context(race_provider):
        first = new_order(amount="40.00", title="Credit race 0")
        family = first.family
        orders = [first, new_order(family=family, amount="40.00", title="Credit race 1")]
        guardian = payer(family, email=f"credit-race-{amount}@example.com")
        benefit_services.credit_grant(
            family=family, amount=Decimal("50"), source="goodwill", description="Race"
        )
    barrier, outcomes = threading.Barrier(2), []

    def apply(order):
        try:
            with tenant_context(race_provider):
                barrier.wait(timeout=30)
                outcomes.append(services.credit_apply(order=order, actor=guardian, amount=amount))
        except BillingError as error:
            outcomes.append(str(error))
        except Exception as error:  # shown in the assertion below
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=apply, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if amount is None:  # as much as each can: the second takes what the first left
        assert sorted(outcomes) == [Decimal("10.00"), Decimal("40.00")], outcomes
    else:
        assert sorted(map(str, outcomes)) == [
            "40.00",
            "Your credit is 10,00\xa0€: apply up to that.",
        ]
    with tenant_context(race_provider):
        spent = sum(u.amount for u in CreditUse.objects.filter(grant__family=family))
        applied = -sum(
            e.amount for e in LedgerEntry.objects.filter(order__in=orders, kind="credit")
        )
        assert spent == applied == sum(o for o in outcomes if isinstance(o, Decimal))
        assert family_credit_balance(family) == Decimal("50.00") - spent >= 0
        left = [
            services.order_outstanding(o)
            for o in Order.objects.filter(pk__in=[o.pk for o in orders])
        ]
        assert sum(left) == Decimal("80.00") - spent and min(left) >= 0
