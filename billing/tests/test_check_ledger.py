"""`manage.py check_ledger`: a clean provider passes with exit 0; each
invariant, broken on purpose inside the test's transaction (rolled back
afterwards: rows inserted here only, or a guarded row changed past the guard
with `pgtrigger.ignore`), is found, printed, recorded as a Finding for staff,
and makes the command exit non-zero."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pgtrigger
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from benefits import services as benefits
from benefits.models import (
    CreditUse,
    Discount,
    DiscountUse,
    MakeupToken,
    Pass,
    PassEvent,
    TokenEvent,
    Voucher,
    VoucherRedemption,
)
from benefits.tests.factories import family_with_child, sibling_class
from billing import invariants, services
from billing.models import Finding, LedgerEntry, Payment, Refund
from enrollments.models import Enrollment, Session
from enrollments.tests.factories import FamilyFactory
from portal import clock
from portal.tenancy import use_provider, use_public_schema
from providers.models import Provider

from .helpers import new_order

pytestmark = pytest.mark.django_db
D = Decimal


def check(slug: str | None = "aquakids") -> tuple[int, str]:
    """Run the command as staff's cron would; its exit status and output."""
    out = io.StringIO()
    try:
        call_command("check_ledger", *(["--provider", slug] if slug else []), stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    finally:
        use_public_schema()
    return 0, out.getvalue()


def found(aquakids, *codes: str, family=None) -> str:
    """The command finds exactly these problems in aquakids, exits 1, and
    staff find them among the findings."""
    status, out = check()
    assert status == 1, out
    lines = out.strip().splitlines()
    assert sorted(line.split(": ")[1] for line in lines) == sorted(codes), out
    assert all(line.startswith("aquakids: ") for line in lines)
    use_provider(aquakids)
    recorded = Finding.objects.filter(source="check")
    assert sorted(recorded.values_list("code", flat=True)) == sorted(codes)
    if family is not None:
        assert recorded.filter(family=family).exists()
    return out


def paid_order(amount="40.00"):
    order = new_order(amount=amount)
    payment = services.payment_record_offline(
        order=order, amount=None, method="offline", key=f"k{order.pk}", actor_user=None
    )
    return order, payment


@pytest.mark.parametrize("slug", ["aquakids", "leaps"])
def test_a_clean_provider_passes_with_exit_0(slug):
    assert check(slug) == (0, f"{slug}: the books hold.\n")
    use_provider(Provider.objects.get(slug=slug))
    assert not Finding.objects.filter(source="check").exists()


def test_money_moved_through_the_services_keeps_the_books(in_aquakids):
    order, payment = paid_order("80.00")
    services.refund_create(payment=payment, amount=D("30"), reason="Sick", actor_user=None)
    services.refund_create(
        payment=payment, amount=D("20"), reason="Return", actor_user=None, meaning="credit_note"
    )
    family, *_ = family_with_child()
    benefits.credit_grant(family=family, amount=D("25"), source="goodwill", description="x")
    other = new_order(family, amount="20.00")
    guardian = family.guardians.get()
    services.credit_apply(order=other, actor=guardian, amount=D("5"))
    services.credit_note_issue(order=other, amount=D("10"), reason="Less", actor_user=None)
    cancelled, _paid = paid_order("60.00")
    services.order_cancel(order=cancelled, reason="Moved away", actor_user=None)
    assert invariants.check_all() == []
    assert check() == (0, "aquakids: the books hold.\n")


def test_every_provider_is_checked_without_a_slug(in_aquakids):
    family = new_order().family
    LedgerEntry.objects.create(family=family, kind="payment", amount=D("-5"), description="x")
    status, out = check(None)
    assert status == 1
    assert "aquakids: payment_entry_without_payment" in out
    assert "leaps: the books hold." in out


def test_an_unknown_provider_is_refused():
    with pytest.raises(CommandError, match="No provider"):
        call_command("check_ledger", "--provider", "nobody", stdout=io.StringIO())


# --- The ledger ---------------------------------------------------------------------------


def test_an_entry_booked_to_another_familys_order_breaks_both_balances(in_aquakids, aquakids):
    mine, theirs = new_order(amount="50.00"), new_order(amount="70.00")
    LedgerEntry.objects.create(
        family=mine.family, order=theirs, kind="adjustment", amount=D("5"), description="x"
    )
    out = found(aquakids, "balance_mismatch", "balance_mismatch", family=mine.family)
    assert f"{mine.family.name}: its orders (and entries on no order) show 50,00" in out
    assert "its entries add up to 55,00" in out


def test_a_succeeded_payment_missing_from_the_ledger(in_aquakids, aquakids):
    order = new_order()
    Payment.objects.create(
        family=order.family,
        order=order,
        amount=D("40.00"),
        method="offline",
        status="succeeded",
        idempotency_key="lost",
    )
    found(aquakids, "payment_not_booked", family=order.family)


def test_a_failed_payment_booked_in_the_ledger(in_aquakids, aquakids):
    order, payment = paid_order()
    Payment.objects.filter(pk=payment.pk).update(status="failed")
    found(aquakids, "payment_booked_not_succeeded", family=order.family)


def test_a_payment_booked_for_another_amount(in_aquakids, aquakids):
    order, payment = paid_order("40.00")
    with pgtrigger.ignore("billing.LedgerEntry:append_only"):
        LedgerEntry.objects.filter(payment=payment).update(amount=D("-35.00"))
    out = found(aquakids, "payment_amount_mismatch", family=order.family)
    assert "is booked as 35,00" in out


def test_a_payment_entry_of_no_payment(in_aquakids, aquakids):
    order = new_order()
    LedgerEntry.objects.create(
        family=order.family, order=order, kind="payment", amount=D("-10"), description="x"
    )
    found(aquakids, "payment_entry_without_payment", family=order.family)


def test_a_refund_missing_from_the_ledger(in_aquakids, aquakids):
    order, payment = paid_order()
    Refund.objects.create(payment=payment, amount=D("10"), reason="lost")
    found(aquakids, "refund_not_booked", family=order.family)


def test_a_refund_booked_for_another_amount(in_aquakids, aquakids):
    order, payment = paid_order()
    request = services.refund_create(payment=payment, amount=D("10"), reason="x", actor_user=None)
    with pgtrigger.ignore("billing.LedgerEntry:append_only"):
        LedgerEntry.objects.filter(refund__request=request).update(amount=D("8"))
    found(aquakids, "refund_amount_mismatch", family=order.family)


def test_refunds_beyond_the_payment(in_aquakids, aquakids):
    order, payment = paid_order("40.00")
    services.refund_create(payment=payment, amount=D("30"), reason="x", actor_user=None)
    extra = Refund.objects.create(payment=payment, amount=D("20"), reason="again")
    LedgerEntry.objects.create(
        family=order.family,
        order=order,
        kind="refund",
        amount=D("20"),
        refund=extra,
        description="x",
    )
    found(aquakids, "refund_exceeds_payment", family=order.family)


def test_a_refund_entry_of_no_refund(in_aquakids, aquakids):
    order, _payment = paid_order()
    LedgerEntry.objects.create(
        family=order.family, order=order, kind="refund", amount=D("5"), description="x"
    )
    found(aquakids, "refund_entry_without_refund", family=order.family)


def test_an_order_below_zero(in_aquakids, aquakids):
    order = new_order(amount="40.00")
    LedgerEntry.objects.create(
        family=order.family, order=order, kind="adjustment", amount=D("-45"), description="x"
    )
    out = found(aquakids, "order_below_zero", family=order.family)
    assert f"Order #{order.pk:05d} is below zero" in out
    # A cancelled order's own reversal is not this invariant's business.
    type(order).objects.filter(pk=order.pk).update(cancelled_at=timezone.now())
    assert "order_below_zero" not in {p.code for p in invariants.check_all()}


def test_a_credit_note_booked_for_another_amount_and_one_of_no_note(in_aquakids, aquakids):
    order = new_order(amount="50.00")
    note = services.credit_note_issue(order=order, amount=D("15"), reason="x", actor_user=None)
    with pgtrigger.ignore("billing.LedgerEntry:append_only"):
        LedgerEntry.objects.filter(credit_note=note).update(amount=D("-5"))
    LedgerEntry.objects.create(
        family=order.family, order=order, kind="credit_note", amount=D("-1"), description="x"
    )
    out = found(
        aquakids,
        "credit_note_amount_mismatch",
        "credit_note_entry_without_note",
        family=order.family,
    )
    assert f"Credit note {note.display_number} of 15,00" in out


def test_credit_applied_in_the_ledger_but_never_spent(in_aquakids, aquakids):
    order = new_order()
    LedgerEntry.objects.create(
        family=order.family,
        order=order,
        kind="credit",
        amount=D("-10"),
        description="Credit applied",
        reference="order-x-credit-1",
    )
    found(aquakids, "credit_entry_mismatch", family=order.family)


# --- Benefits --------------------------------------------------------------------------------


def test_a_token_returned_without_being_used(in_aquakids, aquakids):
    family, guardian, student, home = family_with_child()
    token = benefits.token_issue(student=student, reason="goodwill")
    TokenEvent.objects.create(token=token, kind="returned")
    out = found(aquakids, "token_history", family=family)
    assert "“returned” follows “issued”" in out


def test_a_token_without_history(in_aquakids, aquakids):
    family, guardian, student, home = family_with_child()
    MakeupToken.objects.create(
        student=student, reason="goodwill", expires_on=clock.today() + timedelta(days=9)
    )
    found(aquakids, "token_history", family=family)


def test_a_token_in_use_for_a_booking_that_was_cancelled_behind_its_back(in_aquakids, aquakids):
    family, guardian, student, home = family_with_child()
    other = sibling_class(home)
    session = (
        Session.objects.filter(klass=other, starts_at__gt=timezone.now() + timedelta(days=2))
        .order_by("starts_at")
        .first()
    )
    token = benefits.token_issue(student=student, reason="goodwill")
    booking = benefits.makeup_book(token=token, session=session, actor=guardian)
    assert invariants.check_all() == []
    Enrollment.objects.filter(pk=booking.pk).update(status="cancelled")  # not through benefits
    out = found(aquakids, "token_history", family=family)
    assert "in use for a booking that is cancelled" in out


def test_a_punch_card_below_zero(in_aquakids, aquakids):
    family = FamilyFactory()
    card = benefits.pass_create(family=family, kind=Pass.Kind.PUNCH, name="Two", punches=2)
    PassEvent.objects.create(pass_obj=card, kind="punch", punches=-3)
    PassEvent.objects.create(pass_obj=card, kind="adjusted", punches=2)  # back above zero
    out = found(aquakids, "pass_negative", family=family)
    assert "went down to -1 visits" in out


def test_credit_used_beyond_its_grant(in_aquakids, aquakids):
    family = FamilyFactory()
    grant = benefits.credit_grant(family=family, amount=D("10"), source="goodwill", description="x")
    CreditUse.objects.create(grant=grant, kind="spent", amount=D("12"), where="x")
    found(aquakids, "credit_overspent", family=family)


def test_a_discount_and_a_code_used_beyond_their_limits(in_aquakids, aquakids):
    family = FamilyFactory()
    discount = Discount.objects.create(
        family=family, kind="promotional", description="Once", amount=D("5"), max_uses=1
    )
    for n in range(2):
        DiscountUse.objects.create(discount=discount, amount=D("5"), where=f"Order {n}")
    voucher = Voucher.objects.create(
        code="ONCE", kind="gift", description="x", credit_amount=D("5"), max_redemptions=1
    )
    for other in (family, FamilyFactory()):
        VoucherRedemption.objects.create(voucher=voucher, family=other, result="x")
    found(aquakids, "discount_overused", "voucher_overused")


# --- Staff see it ------------------------------------------------------------------------------


def test_the_daily_task_records_what_it_finds_and_beat_runs_it_every_day(in_aquakids):
    from celery.schedules import crontab

    from billing.tasks import check_ledger

    assert check_ledger() == 0
    order = new_order()
    LedgerEntry.objects.create(
        family=order.family, order=order, kind="payment", amount=D("-1"), description="x"
    )
    assert check_ledger.delay().get() == 1
    assert Finding.objects.get(source="check").code == "payment_entry_without_payment"
    entry = settings.CELERY_BEAT_SCHEDULE["billing-check-ledger"]
    assert entry["task"] == "billing.tasks.check_ledger" and "tenant_schemas" not in entry
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {3} and entry["schedule"].day_of_week == set(range(7))
