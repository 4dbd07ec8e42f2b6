"""Credit notes (numbered without gaps, never more than the charge or what
is owed, a PDF that refers to the invoice) and cancelling an order."""

from __future__ import annotations

import io
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django_tenants.utils import tenant_context
from pypdf import PdfReader

from benefits import services as benefit_services
from benefits.selectors import family_credit_balance
from billing import gateway, pdf, selectors, services
from billing.models import CreditNote, Document, LedgerEntry, Order, Refund
from billing.services import BillingError
from billing.tasks import document_source
from conftest import client_for, login

from .helpers import card, new_order, payer


def owed(order):
    return services.order_outstanding(order)


@pytest.mark.django_db
def test_a_credit_note_reduces_what_is_owed_never_below_zero(in_aquakids):
    order = new_order(amount="90.00")
    services.payment_record_offline(
        order=order, amount=Decimal("30"), method="offline", key="cn", actor_user=None
    )
    note = services.credit_note_issue(
        order=order, amount=Decimal("25"), reason="Two lessons missed", actor_user=None
    )
    assert owed(order) == Decimal("35.00") and note.display_number.startswith("CN-")
    assert note.snapshot["total"] == "25.00" and note.snapshot["reason"] == "Two lessons missed"
    assert note.snapshot["invoice"] == order.invoice.display_number
    with pytest.raises(BillingError, match="owes 35,00") as refused:
        services.credit_note_issue(order=order, amount=Decimal("36"), reason="x", actor_user=None)
    assert refused.value.field == "amount"
    with pytest.raises(BillingError, match="Say why"):
        services.credit_note_issue(order=order, amount=Decimal("1"), reason=" ", actor_user=None)
    assert owed(order) == Decimal("35.00") and order.credit_notes.count() == 1
    with pytest.raises(RuntimeError, match="append-only"):
        note.delete()


@pytest.mark.django_db
def test_the_credit_note_pdf_refers_to_the_invoice(in_aquakids):
    order = new_order(amount="48.00", title="Spring term")
    note = services.credit_note_issue(
        order=order, amount=Decimal("12"), reason="Pool closed one week", actor_user=None
    )
    template, context, _rows = document_source(
        Document(family=order.family, kind="credit_note", credit_note=note)
    )
    text = PdfReader(io.BytesIO(pdf.render(template, context, provider=in_aquakids))).pages[0]
    text = text.extract_text()
    assert f"Credit note {note.display_number}" in text
    assert order.invoice.display_number in text and "Spring term" in text
    assert "Pool closed one week" in text and "-12,00" in text


def test_credit_note_numbers_from_many_threads_have_no_gap_and_no_repeat(committed, race_provider):
    racers = 8
    with tenant_context(race_provider):
        orders = [new_order(amount="20.00", title=f"Numbered {n}") for n in range(racers)]
    barrier, numbers = threading.Barrier(racers), []

    def issue(order):
        try:
            with tenant_context(race_provider):
                barrier.wait(timeout=30)
                numbers.append(
                    services.credit_note_issue(
                        order=order, amount=Decimal("5"), reason="Race", actor_user=None
                    ).number
                )
        except Exception as error:  # shown in the assertion below
            numbers.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issue, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(n, int) for n in numbers), numbers
    assert sorted(numbers) == list(range(min(numbers), min(numbers) + racers)), numbers
    with tenant_context(race_provider):
        mine = CreditNote.objects.filter(order__in=orders)
        assert sorted(mine.values_list("number", flat=True)) == sorted(numbers)
        assert not CreditNote.objects.filter(number__gt=max(numbers)).exists()


# --- Cancelling an order ----------------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_a_part_paid_order_keeps_the_paid_money_as_family_credit(in_aquakids):
    order = new_order(amount="150.00")
    family = order.family
    services.payment_record_offline(
        order=order, amount=Decimal("50"), method="offline", key="part", actor_user=None
    )
    said = services.order_cancel_preview(order=order, paid_money="credit")
    assert any("150,00" in line for line in said) and any("50,00" in line for line in said)
    services.order_cancel(order=order, reason="Moved away", actor_user=None)
    order.refresh_from_db()
    assert order.cancelled_at and order.cancel_reason == "Moved away"
    assert owed(order) == 0 and services.order_charge_left(order) == 0
    assert order.credit_notes.get().amount == Decimal("150.00")
    assert family_credit_balance(family) == Decimal("50.00")
    assert selectors.order_in_family(family, order.pk).status.state == "cancelled"
    kinds = list(LedgerEntry.objects.filter(order=order).values_list("kind", "amount"))
    assert ("to_credit", Decimal("50.00")) in kinds
    # Once: a second cancel changes nothing.
    first = order.cancelled_at
    with pytest.raises(BillingError, match="cancelled already"):
        services.order_cancel(order=order, reason="Again", actor_user=None)
    order.refresh_from_db()
    assert order.cancelled_at == first and family_credit_balance(family) == Decimal("50.00")


@pytest.mark.django_db
def test_cancelling_with_the_money_given_back(in_aquakids, django_capture_on_commit_callbacks):
    """Charge 150: 50 by card, 20 of family credit, 80 still owed. The card
    gets its 50 back (sent to Stripe after the cancel commits), the credit
    its 20; credit notes reverse the whole charge."""
    order = new_order(amount="50.00")
    family = order.family
    guardian = payer(family, email="cancel-refund@example.com")
    paid = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="c"
    )
    services.adjustment_create(
        family=family, amount=Decimal("100"), reason="Second term", actor_user=None, order=order
    )
    benefit_services.credit_grant(
        family=family, amount=Decimal("20"), source="goodwill", description="x"
    )
    services.credit_apply(order=order, actor=guardian)
    assert owed(order) == Decimal("80.00")
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(
            order=order, reason="Course closed", actor_user=None, paid_money="refund"
        )
    assert owed(order) == 0 and services.order_charge_left(order) == 0
    refund = Refund.objects.get(payment=paid)
    assert refund.amount == Decimal("50.00") and refund.request.meaning == "credit_note"
    at_stripe = gateway.refunds_list(payment_intent_id=paid.stripe_payment_intent_id)
    assert [r.amount for r in at_stripe] == [5000]
    assert sorted(n.amount for n in order.credit_notes.all()) == [
        Decimal("50.00"),
        Decimal("100.00"),
    ]
    assert family_credit_balance(family) == Decimal("20.00")


@pytest.mark.django_db
def test_a_cancelled_order_takes_no_money_owed_again(in_aquakids):
    order = new_order(amount="30.00")
    cash = services.payment_record_offline(
        order=order, amount=None, method="offline", key="c", actor_user=None
    )
    services.order_cancel(order=order, reason="Never came", actor_user=None)
    with pytest.raises(BillingError, match="cancelled"):
        services.refund_create(
            payment=cash, amount=Decimal("5"), reason="x", actor_user=None, meaning="still_owed"
        )
    with pytest.raises(BillingError, match="at most 0,00"):
        services.refund_create(
            payment=cash, amount=Decimal("5"), reason="x", actor_user=None, meaning="credit_note"
        )


@pytest.mark.django_db
def test_staff_cancel_an_order_after_seeing_what_will_happen(aquakids, in_aquakids):
    order = new_order(amount="75.00")
    services.payment_record_offline(
        order=order, amount=Decimal("25"), method="offline", key="adm", actor_user=None
    )
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    form = {
        "action": "cancel_orders",
        "_selected_action": [order.pk],
        "reason": "Injury",
        "paid_money": "credit",
    }
    shown = staff.post("/admin/billing/order/", {**form, "preview": "Preview"}).content.decode()
    assert "What will happen" in shown and "75,00" in shown and "25,00" in shown
    connection.set_tenant(in_aquakids)
    assert not Order.objects.get(pk=order.pk).cancelled_at  # nothing yet
    missing = staff.post("/admin/billing/order/", {**form, "reason": "", "apply": "x"})
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    done = staff.post("/admin/billing/order/", {**form, "apply": "Cancel the orders"})
    assert done.status_code == 302
    connection.set_tenant(in_aquakids)
    order.refresh_from_db()
    assert order.cancelled_at and order.cancelled_by.email == "staff@aquakids.test"
    assert owed(order) == 0 and family_credit_balance(order.family) == Decimal("25.00")
    # cancelled_at is not a field staff can edit.
    page = staff.get(f"/admin/billing/order/{order.pk}/change/").content.decode()
    assert 'name="cancelled_at' not in page and "Injury" in page


@pytest.mark.django_db
def test_the_front_desk_cannot_cancel_or_credit(aquakids, in_aquakids):
    order = new_order(amount="10.00")
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    response = desk.post(
        "/admin/billing/order/",
        {
            "action": "cancel_orders",
            "_selected_action": [order.pk],
            "reason": "x",
            "paid_money": "credit",
            "apply": "x",
        },
    )
    assert response.status_code in (200, 302, 403)
    connection.set_tenant(in_aquakids)
    assert not Order.objects.get(pk=order.pk).cancelled_at
