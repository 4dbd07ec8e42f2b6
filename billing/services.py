"""Money actions. Each runs in one transaction, locks the order (or payment)
it changes before checking amounts, and writes ledger entries in the same
transaction. Card payments never move backwards: a webhook delivered twice or
late finds the payment already final, and the ledger's unique constraint
books a payment once whatever happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import stripe
from babel.numbers import format_decimal
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name

from accounts.models import User
from benefits import selectors as benefit_selectors
from benefits import services as benefit_services
from benefits.models import Discount
from benefits.selectors import family_credit_balance
from enrollments.models import Enrollment, Location
from families.actors import Actor, actor_name, actor_require
from families.actors import actor_user as families_actor_user
from families.models import Family, Guardian, Student
from portal import clock, formatting, limits
from portal.exceptions import PortalError
from portal.money import from_minor_units, to_decimal
from portal.tasks import dispatch, queue_email
from portal.tenancy import current_provider, current_schema, provider_language

from . import gateway, pricing
from .models import (
    ZERO,
    CreditNote,
    Document,
    Finding,
    Invoice,
    LedgerEntry,
    NumberSequence,
    Order,
    OrderLine,
    Payment,
    PaymentMethod,
    Refund,
    RefundRequest,
    StripeCustomer,
    StripeEvent,
)
from .tax import TaxSummary, tax_summary

if TYPE_CHECKING:
    from providers.models import Provider


class BillingError(PortalError):
    pass


def _provider() -> Provider:
    return current_provider()


def order_outstanding(order: Order) -> Decimal:
    return LedgerEntry.objects.filter(order=order).aggregate(t=Sum("amount"))["t"] or ZERO


# Entries that move money (paid in, given back, moved to or from family
# credit); the others make up the order's charge.
MONEY_KINDS = [
    LedgerEntry.Kind.PAYMENT,
    LedgerEntry.Kind.REFUND,
    LedgerEntry.Kind.CREDIT,
    LedgerEntry.Kind.TO_CREDIT,
]


def order_charge_left(order: Order) -> Decimal:
    """What is left of the order's charge: its charges and corrections less
    the credit notes already issued. A credit note never exceeds it."""
    entries = LedgerEntry.objects.filter(order=order).exclude(kind__in=MONEY_KINDS)
    return entries.aggregate(t=Sum("amount"))["t"] or ZERO


def _payment_in_progress(order: Order) -> bool:
    """A payment Stripe has not settled blocks another: processing until
    Stripe answers, requires_action until reconciliation cancels it."""
    return Payment.objects.filter(
        order=order, status__in=[Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION]
    ).exists()


def _lock_order(order: Order) -> Order:
    return Order.objects.select_for_update(of=("self",)).select_related("family").get(pk=order.pk)


# --- Orders and the ledger ------------------------------------------------------------------

LineSpec = dict[str, Any]  # OrderLine fields: kind, description, quantity, unit_price, enrollment


def _hold_currency() -> None:
    """Hold the provider's row (FOR SHARE) while money is written: a currency
    change (providers.services.provider_currency_set, FOR UPDATE) waits for
    it and then sees the money, so no order is made in one currency and kept
    in another."""
    provider = _provider()
    if getattr(provider, "pk", None) is None:
        return  # a schema entered by name (maintenance), not a provider's request
    table = connection.ops.quote_name(provider._meta.db_table)
    public = connection.ops.quote_name(get_public_schema_name())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {public}.{table} WHERE id = %s FOR SHARE", [provider.pk])


def _check_lines(family: Family, lines: list[LineSpec]) -> None:
    if not lines:
        raise BillingError(_("An order needs at least one line."), field="lines")
    for line in lines:
        if line.get("kind") == OrderLine.Kind.DISCOUNT:
            raise BillingError(
                _("Discounts are worked out from the family's discounts and promo codes."),
                field="lines",
            )
        if to_decimal(line.get("unit_price", 0)) < 0 or int(line.get("quantity", 1)) < 1:
            raise BillingError(
                _("Prices cannot be below zero; correct a balance with an adjustment."),
                field="lines",
            )
        enrollment = line.get("enrollment")
        if enrollment is not None and enrollment.student.family_id != family.pk:
            raise BillingError(_("That enrolment is in another family."), field="lines")


def _rate_text(discount: Discount) -> str:
    provider = _provider()
    if discount.percent is not None:
        number = format_decimal(discount.percent.normalize(), locale=provider.locale)
        return f"{number} %"
    return formatting.money(to_decimal(discount.amount))


def discount_label(discount: Discount) -> str:
    """How a discount reads on an order line: "Sibling discount 10 %",
    "Promo code WELCOME10 5,00 €"."""
    if discount.voucher_id and discount.voucher is not None:
        name = _("Promo code %(code)s") % {"code": discount.voucher.code}
    else:
        name = str(discount.get_kind_display())
    return f"{name} {_rate_text(discount)}"


def _line_child(line: OrderLine, order: Order) -> int | None:
    if line.enrollment_id and line.enrollment is not None:
        return line.enrollment.student_id
    return order.student_id


def _other_tuition(order: Order, lines: list[OrderLine]) -> list[pricing.Tuition]:
    """The family's current classes charged on its other orders (not
    cancelled), each class once (its latest fee), except the classes this
    order charges again."""
    here = {x.enrollment_id for x in lines if x.enrollment_id}
    fees: dict[int, pricing.Tuition] = {}
    rows = (
        OrderLine.objects.filter(
            order__family_id=order.family_id,
            order__cancelled_at__isnull=True,
            kind=OrderLine.Kind.ENROLLMENT,
            enrollment__status=Enrollment.Status.ACTIVE,
        )
        .exclude(order=order)
        .exclude(enrollment_id__in=here)
        .order_by("order__created_at", "pk")
        .values_list("enrollment_id", "enrollment__student_id", "unit_price", "quantity")
    )
    for enrollment_id, student_id, price, quantity in rows:
        fees[enrollment_id] = pricing.Tuition(student=student_id, amount=price * quantity)
    return list(fees.values())


def _pricing_lines(order: Order, lines: list[OrderLine]) -> list[pricing.Line]:
    reduced: dict[int, Decimal] = {}
    for row in OrderLine.objects.filter(order=order, kind=OrderLine.Kind.DISCOUNT):
        if row.reduces_id is not None:
            reduced[row.reduces_id] = reduced.get(row.reduces_id, ZERO) - row.amount
    return [
        pricing.Line(
            key=line.pk,
            amount=line.amount,
            kind=line.kind,
            student=_line_child(line, order),
            vat_rate=getattr(line, "vat_rate", None),
            reduced=reduced.get(line.pk, ZERO),
        )
        for line in lines
    ]


def _offer(discount: Discount) -> pricing.Offer:
    return pricing.Offer(
        id=discount.pk,
        kind=discount.kind,
        percent=discount.percent,
        amount=discount.amount,
        student=discount.student_id,
    )


def _discounts_book(
    *,
    order: Order,
    lines: list[OrderLine],
    discounts: list[Discount],
    actor_user: User | None,
    actor_label: str,
) -> dict[int, Decimal]:
    """Apply the discounts (locked by the caller) to the order's lines: a
    discount line for each reduction, a ledger entry reducing the charge for
    each, one use of each discount that took something off. What each took."""
    if not discounts:
        return {}
    by_id = {d.pk: d for d in discounts}
    by_line = {x.pk: x for x in lines}
    found = pricing.reductions(
        _pricing_lines(order, lines), [_offer(d) for d in discounts], _other_tuition(order, lines)
    )
    several = len(lines) > 1
    taken: dict[int, Decimal] = {}
    for reduction in sorted(found, key=lambda r: (r.line.key, r.offer.id)):
        discount, reduced = by_id[reduction.offer.id], by_line[reduction.line.key]
        text = discount_label(discount)
        if several:
            text = f"{text} · {reduced.description}"
        line = OrderLine(
            order=order,
            kind=OrderLine.Kind.DISCOUNT,
            description=text[:200],
            quantity=1,
            unit_price=-reduction.amount,
            discount=discount,
            reduces=reduced,
            enrollment=reduced.enrollment,
        )
        _carry_vat(line, reduced)
        line.save()
        LedgerEntry.objects.create(
            family_id=order.family_id,
            order=order,
            location=order.location,
            kind=LedgerEntry.Kind.DISCOUNT,
            # What the discount takes off what the family owes (with its VAT
            # where prices are without it).
            amount=-to_decimal(order_tax([line]).gross).copy_abs(),
            description=line.description,
            actor=actor_user,
            actor_name=actor_label,
        )
        taken[discount.pk] = taken.get(discount.pk, ZERO) + reduction.amount
    for discount_id, amount in taken.items():
        benefit_services.discount_use_record(
            discount=by_id[discount_id],
            amount=amount,
            where=_("Order #%(number)s: %(title)s")
            % {"number": order.number, "title": order.title},
            reference=f"order-{order.pk}",
        )
    return taken


def _carry_vat(line: OrderLine, reduced: OrderLine) -> None:
    """A discount line is taxed at the rate of the line it reduces."""
    line.vat_rate = reduced.vat_rate


def order_create(
    *,
    family: Family,
    title: str,
    lines: list[LineSpec],
    student: Student | None = None,
    location: Location | None = None,
    due_date: date | None = None,
    promo_code: str = "",
    discounts: bool = True,
    actor: Actor | None = None,
    actor_user: User | None = None,
) -> Order:
    """An order, its lines and discount lines, the charge that makes the
    family owe its total, and its invoice, in one transaction. `discounts`:
    the family's sibling and multi-class discounts, and a promotion it holds
    when the order charges tuition; `promo_code`: the order's one promo code
    (redeemed now, or the family's own from earlier)."""
    actor_user = actor_user or families_actor_user(actor)
    label = actor_name(actor or actor_user) if (actor or actor_user) else ""
    if student is not None and student.family_id != family.pk:
        raise BillingError(_("That child is in another family."), field="student")
    _check_lines(family, lines)
    with transaction.atomic():
        _hold_currency()
        order = Order.objects.create(
            family=family, title=title, student=student, location=location, due_date=due_date
        )
        items = [
            OrderLine.objects.create(
                order=order,
                kind=line.get("kind", OrderLine.Kind.OTHER),
                description=line["description"],
                quantity=int(line.get("quantity", 1)),
                unit_price=to_decimal(line["unit_price"]),
                enrollment=line.get("enrollment"),
                vat_rate=line.get("vat_rate") or line_vat_rate(dict(line)),
            )
            for line in lines
        ]
        LedgerEntry.objects.create(
            family=family,
            order=order,
            location=location,
            kind=LedgerEntry.Kind.CHARGE,
            # Prices without VAT: the family owes them with the VAT added.
            amount=to_decimal(order_tax(items).gross),
            description=title,
            actor=actor_user,
            actor_name=label,
        )
        chosen: list[Discount] = []
        promo: Discount | None = None
        if promo_code.strip():
            try:
                promo = benefit_services.promo_code_discount(
                    code=promo_code, family=family, actor_user=actor_user
                )
            except PortalError as error:
                raise BillingError(error.message, field="promo_code") from error
        if discounts:
            held = benefit_selectors.discounts_to_apply(family)
            chosen = [d for d in held if d.kind != Discount.Kind.PROMOTIONAL]
            tuition = any(x.kind == OrderLine.Kind.ENROLLMENT for x in items)
            if promo is None and tuition:
                promo = next((d for d in held if d.kind == Discount.Kind.PROMOTIONAL), None)
        if promo is not None:
            chosen.append(promo)
        locked = benefit_services.discounts_lock(d.pk for d in chosen)
        if promo is not None and promo.pk not in {d.pk for d in locked}:
            if promo_code.strip():
                raise BillingError(_("This code has been used up."), field="promo_code")
            promo = None
        taken = _discounts_book(
            order=order, lines=items, discounts=locked, actor_user=actor_user, actor_label=label
        )
        if promo is not None and promo.pk in taken:
            order.promo = promo
            order.save(update_fields=["promo"])
        elif promo is not None and promo_code.strip():
            raise BillingError(_("This code takes nothing off this order."), field="promo_code")
        invoice_issue(order=order)
    return order


def order_promo_apply(*, order: Order, code: str, actor: Actor) -> Decimal:
    """Apply a promo code to an order not yet paid: its discount lines, a
    ledger entry reducing the charge for each, and the code's use. One code
    per order. Returns what it took off."""
    actor_require(
        actor,
        staff="billing.change_order",
        guardian=lambda g: g.may_pay,
        family=order.family_id,
        refusal=_("You may not change this order."),
    )
    login = families_actor_user(actor)
    with transaction.atomic():
        order = _lock_order(order)
        if order.cancelled_at:
            raise BillingError(_("This order is cancelled."), field="code")
        if order.promo_id:
            raise BillingError(
                _("This order has a promo code already; one code per order."), field="code"
            )
        owed = order_outstanding(order)
        if owed <= 0:
            raise BillingError(
                _("This order is paid; a code applies to what is owed."), field="code"
            )
        if _payment_in_progress(order):
            raise BillingError(
                _("A card payment for this order is in progress; wait for it."), field="code"
            )
        try:
            promo = benefit_services.promo_code_discount(
                code=code, family=order.family, actor_user=login
            )
        except PortalError as error:
            raise BillingError(error.message, field="code") from error
        locked = benefit_services.discounts_lock([promo.pk])
        if not locked:
            raise BillingError(_("This code has been used up."), field="code")
        lines = list(
            OrderLine.objects.filter(order=order)
            .exclude(kind=OrderLine.Kind.DISCOUNT)
            .select_related("enrollment")
        )
        taken = _discounts_book(
            order=order,
            lines=lines,
            discounts=locked,
            actor_user=login,
            actor_label=actor_name(actor),
        ).get(promo.pk, ZERO)
        if taken <= 0:
            raise BillingError(_("This code takes nothing off this order."), field="code")
        if taken > owed:
            raise BillingError(
                _("This code takes off more than is still owed; ask the office."), field="code"
            )
        order.promo = promo
        order.save(update_fields=["promo"])
    return taken


def line_vat_rate(line: dict[str, Any]) -> Decimal:
    """The VAT rate of a new order line: its programme's (through its
    enrolment), else the provider's standard rate."""
    enrollment = line.get("enrollment")
    if enrollment is None and line.get("enrollment_id"):
        enrollment = Enrollment.objects.select_related("klass__programme").get(
            pk=line["enrollment_id"]
        )
    rate = enrollment.klass.programme.vat_rate if enrollment is not None else None
    return rate if rate is not None else _provider().vat_rate


def order_tax(lines: Iterable[OrderLine]) -> TaxSummary:
    """Net, VAT per rate and gross of these lines, by the provider's VAT settings."""
    provider = _provider()
    return tax_summary(
        ((line.amount, line.vat_rate) for line in lines),
        charges_vat=provider.charges_vat,
        prices_include_vat=provider.prices_include_vat,
    )


def order_details_change(
    *, order: Order, title: str, due_date: date | None, actor_user: User | None
) -> Order:
    """Staff rename an order or move its due date (the amounts never change
    here: corrections are adjustments, credit notes or cancelling). The
    invoice already issued keeps what it said."""
    title = (title or "").strip()
    if not title:
        raise BillingError(_("Give the order a title."), field="title")
    with transaction.atomic():
        locked = _lock_order(order)
        if locked.cancelled_at and due_date != locked.due_date:
            raise BillingError(_("This order is cancelled."), field="due_date")
        locked.title = title[:200]
        locked.due_date = due_date
        locked.save(update_fields=["title", "due_date"])
    return locked


def adjustment_create(
    *,
    family: Family,
    amount: Decimal,
    reason: str,
    actor_user: User | None,
    order: Order | None = None,
) -> LedgerEntry:
    """A correction, with its reason; entries are never edited. It never
    takes an order (or the family's entries without an order) below zero:
    money beyond what is owed becomes family credit or is refunded."""
    reason = (reason or "").strip()
    if not reason:
        raise BillingError(_("Say why the adjustment is made."), field="description")
    amount = to_decimal(amount)
    with transaction.atomic():
        _hold_currency()
        if order is not None:
            order = _lock_order(order)
            owed = order_outstanding(order)
        else:
            Family.objects.select_for_update().filter(pk=family.pk).first()
            owed = (
                LedgerEntry.objects.filter(family=family, order__isnull=True).aggregate(
                    t=Sum("amount")
                )["t"]
                or ZERO
            )
        if owed + amount < 0:
            raise BillingError(
                _(
                    "Only %(owed)s is owed here: an adjustment cannot take it below zero. "
                    "To give the family money to spend, grant credit."
                )
                % {"owed": formatting.money(owed)},
                field="amount",
            )
        return LedgerEntry.objects.create(
            family=family,
            order=order,
            location=order.location if order else None,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=amount,
            description=reason,
            actor=actor_user,
            actor_name=actor_name(actor_user) if actor_user else "",
        )


def credit_apply(
    *, order: Order, actor: Guardian, amount: Decimal | None = None, key: str = ""
) -> Decimal:
    """Pay (part of) what the order still owes from the family's credit:
    `amount`, or without one the most that can be applied. `key` comes from
    the form, so a double submit applies once. The order and then the
    family's credit are locked before anything is read: two orders taking
    credit at once take turns, and the second sees what the first left."""
    if not actor.may_pay:
        raise BillingError(_("You may not pay for this family."))
    with transaction.atomic():
        order = _lock_order(order)
        reference = f"order-{order.pk}-credit-{key}"[:64] if key else ""
        if reference:
            done = LedgerEntry.objects.filter(family=order.family, reference=reference).first()
            if done:
                return -done.amount
        if order.cancelled_at:
            raise BillingError(_("This order is cancelled."))
        if _payment_in_progress(order):
            raise BillingError(_("A card payment for this order is in progress; wait for it."))
        benefit_services.credit_lock(family=order.family)
        owed = order_outstanding(order)
        balance = family_credit_balance(order.family)
        if amount is None:
            amount = min(owed, balance)
            if amount <= 0:
                raise BillingError(
                    _("Nothing to apply: no credit left, or nothing owed on this order.")
                )
        else:
            amount = to_decimal(amount)
            if amount <= 0:
                raise BillingError(_("Enter an amount above zero."), field="amount")
            if amount > owed:
                raise BillingError(
                    _("This order owes %(owed)s: apply up to that.")
                    % {"owed": formatting.money(owed)},
                    field="amount",
                )
            if amount > balance:
                raise BillingError(
                    _("Your credit is %(balance)s: apply up to that.")
                    % {"balance": formatting.money(balance)},
                    field="amount",
                )
        if not reference:
            n = LedgerEntry.objects.filter(order=order, kind=LedgerEntry.Kind.CREDIT).count()
            reference = f"order-{order.pk}-credit-{n + 1}"
        benefit_services.credit_spend(
            family=order.family,
            amount=amount,
            where=_("Order #%(number)s: %(title)s")
            % {"number": order.number, "title": order.title},
            reference=reference,
            actor_user=actor.user,
        )
        LedgerEntry.objects.create(
            family=order.family,
            order=order,
            location=order.location,
            kind=LedgerEntry.Kind.CREDIT,
            amount=-amount,
            description=_("Credit applied"),
            reference=reference,
            actor=actor.user,
        )
    return amount


# --- Payments --------------------------------------------------------------------------------


def _book_payment(
    payment: Payment,
    *,
    order: Order | None = None,
    excess_to_credit: bool = False,
    source: str = Finding.Source.RECONCILIATION,
    actor_user: User | None = None,
) -> None:
    """The ledger entry of a succeeded payment: once (unique per payment), for
    its whole amount, with the staff member who took it at the desk. The
    caller holds the order's lock. With `excess_to_credit` (a card payment
    Stripe settled), what the order no longer owes (it was paid meanwhile by
    other means) leaves the order again as family credit, so its balance never
    goes below zero, and staff are told they can refund it instead."""
    order = order or payment.order
    owed = order_outstanding(order) if order is not None else payment.amount
    description = str(payment.get_method_display())
    if payment.note:
        description = f"{description} · {payment.note}"
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                family_id=payment.family_id,
                order=order,
                location=order.location if order else None,
                kind=LedgerEntry.Kind.PAYMENT,
                amount=-payment.amount,
                description=description[:200],
                payment=payment,
                actor=actor_user,
                actor_name=actor_name(actor_user) if actor_user else "",
            )
    except IntegrityError:
        return  # booked already
    extra = payment.amount - min(max(owed, ZERO), payment.amount)
    if order is None or extra <= 0 or not excess_to_credit:
        return
    _move_to_credit(
        order, extra, _("paid twice (card payment %(payment)s)") % {"payment": payment.pk}, None
    )
    finding_record(
        source=source,
        code="overpaid",
        message=_(
            "Payment %(payment)s came in after order #%(number)s was paid: %(amount)s is now "
            "the family's credit. Refund the payment instead if the family prefers."
        )
        % {"payment": payment.pk, "number": order.number, "amount": formatting.money(extra)},
        payment=payment,
    )


def payment_record_offline(
    *,
    order: Order,
    amount: Decimal | None,
    method: str,
    key: str,
    actor_user: User | None,
    note: str = "",
) -> Payment:
    """Staff record money taken at the desk (cash, card at the desk) or a
    bank transfer. `key` comes from the form, so a double submit records
    once. Without an amount: what the order owes. Either way the amount owed
    is worked out under the order lock, and more than is owed is refused
    (the desk gives change; money beyond an order is family credit, granted
    on its own). The family gets a receipt by e-mail."""
    if method not in Payment.DESK_METHODS:
        raise BillingError(_("Choose how the money was paid."), field="method")
    if not key:
        raise BillingError(_("The form is out of date: open it again."), field="amount")
    key = f"offline:{order.pk}:{key}"[:80]
    with transaction.atomic():
        order = _lock_order(order)
        existing = Payment.objects.filter(idempotency_key=key, order=order).first()
        if existing:
            return existing
        if order.cancelled_at:
            raise BillingError(_("This order is cancelled."), field="amount")
        # A card or bank payment still processing does not stop the desk: if
        # it succeeds after all, its excess becomes family credit (_book_payment).
        owed = order_outstanding(order)
        if owed <= 0:
            raise BillingError(_("Nothing is owed on this order."), field="amount")
        amount = owed if amount is None else to_decimal(amount)
        if amount <= 0:
            raise BillingError(_("Enter an amount above zero."), field="amount")
        if amount > owed:
            raise BillingError(
                _("That is more than the %(owed)s still owed on this order.")
                % {"owed": formatting.money(owed)},
                field="amount",
            )
        payment = Payment.objects.create(
            family=order.family,
            order=order,
            amount=amount,
            method=method,
            status=Payment.Status.SUCCEEDED,
            succeeded_at=clock.now(),
            idempotency_key=key,
            note=note.strip()[:200],
        )
        _book_payment(payment, actor_user=actor_user)
        transaction.on_commit(lambda: _send_receipt(payment.pk))
    return payment


def stripe_customer_for(guardian: Guardian) -> str:
    found = StripeCustomer.objects.filter(guardian=guardian).first()
    if found:
        return found.stripe_customer_id
    customer_id = gateway.customer_create(
        email=guardian.user.email if guardian.user else "",
        name=guardian.full_name,
        guardian_id=guardian.pk,
    )
    StripeCustomer.objects.get_or_create(
        guardian=guardian, defaults={"stripe_customer_id": customer_id}
    )
    return customer_id


def _require_online_methods() -> None:
    if not (_provider().online_payments and gateway.configured()):
        raise BillingError(_("Online payment is not available here. See the payment instructions."))


def _require_online(payer: Guardian) -> None:
    _require_online_methods()
    if not payer.may_pay:
        raise BillingError(_("You may not pay for this family. Ask the primary guardian."))


WAITING = _(
    "Waiting for the card processor to confirm. Do not pay again: the result will show "
    "here and in your portal."
)


def _card_may_be_saved(guardian: Guardian, stripe_payment_method_id: str) -> None:
    """Before anything is charged: a card that cannot be saved is said so."""
    existing = PaymentMethod.objects.filter(
        stripe_payment_method_id=stripe_payment_method_id
    ).first()
    if existing:
        if existing.guardian_id != guardian.pk:
            raise BillingError(_("That card belongs to someone else."), field="card")
        return
    if PaymentMethod.objects.filter(guardian=guardian).count() >= MAX_METHODS:
        raise BillingError(
            _(
                "You have three saved cards already, the most you can keep. Untick "
                "“Save this card” to pay without saving it, or delete a saved card first."
            ),
            field="save",
        )


def payment_start(
    *,
    order: Order,
    payer: Guardian,
    stripe_payment_method_id: str,
    attempt_key: str,
    save_method: bool = False,
    bank_mandate: dict[str, Any] | None = None,
) -> Payment:
    """Charge what the order owes to a card, or with `bank_mandate`
    (gateway.mandate_acceptance) debit a bank account by SEPA Direct Debit:
    that payment stays processing for days, until Stripe's event settles it.
    Safe to call twice (same attempt key: the same payment) and from two
    tabs (the order is locked; a payment in progress or a paid order stops the
    second one). Stripe's answer decides:
    a decline fails the payment, no answer leaves it processing (it blocks a
    second charge) until a webhook or reconciliation hears Stripe's answer."""
    _require_online(payer)
    _not_anothers_method(payer, stripe_payment_method_id)
    if bank_mandate is not None and not _provider().echecks_active:
        raise BillingError(_("Bank account payments are not offered here."))
    if save_method:
        _card_may_be_saved(payer, stripe_payment_method_id)
    # Keys are namespaced and belong to one order: a key from elsewhere finds nothing.
    attempt_key = f"card:{order.pk}:{attempt_key}"
    with transaction.atomic():
        order = _lock_order(order)
        existing = Payment.objects.filter(idempotency_key=attempt_key, order=order).first()
        if existing:
            return existing
        if order.cancelled_at:
            raise BillingError(_("This order is cancelled."))
        if _payment_in_progress(order):
            raise BillingError(_("A payment for this order is in progress already."))
        amount = order_outstanding(order)
        if amount <= 0:
            raise BillingError(_("This order is paid."))
        payment = Payment.objects.create(
            family=order.family,
            order=order,
            payer=payer,
            amount=amount,
            method=Payment.Method.CARD if bank_mandate is None else Payment.Method.SEPA,
            idempotency_key=attempt_key,
            stripe_idempotency_key=f"{current_schema()}-payment-{attempt_key}",
        )
    # Outside the order lock: the network calls. The payment row exists first,
    # so a retry with the same attempt key finds it instead of charging again.
    try:
        customer_id = stripe_customer_for(payer)
        if (
            save_method
            or not PaymentMethod.objects.filter(
                stripe_payment_method_id=stripe_payment_method_id, guardian=payer
            ).exists()
        ):
            gateway.payment_method_attach(stripe_payment_method_id, customer_id)
    except gateway.GatewayUnavailable:
        # Nothing asked Stripe for money yet: nothing was charged.
        _payment_fail(
            payment, _("We could not reach the card processor. Nothing was charged; try again.")
        )
        return Payment.objects.get(pk=payment.pk)
    except stripe.CardError as error:
        _payment_fail(payment, _card_message(error), code=_card_code(error))
        return Payment.objects.get(pk=payment.pk)
    except stripe.StripeError as error:
        _payment_fail(payment, UNKNOWN_CARD, code=getattr(error, "code", None) or "invalid")
        return Payment.objects.get(pk=payment.pk)
    params = gateway.payment_intent_params(
        amount=payment.amount,
        currency=_provider().currency,
        customer_id=customer_id,
        payment_method_id=stripe_payment_method_id,
        payment_id=payment.pk,
        description=f"{_provider().name} #{order.number}",
        bank_mandate=bank_mandate,
        keep_bank_account=save_method,
    )
    Payment.objects.filter(pk=payment.pk).update(stripe_request=params)
    payment.stripe_request = params
    result = _send_create(payment, source=Finding.Source.RECONCILIATION)
    if save_method and result.status != Payment.Status.FAILED:
        try:
            payment_method_save(guardian=payer, stripe_payment_method_id=stripe_payment_method_id)
        except (BillingError, gateway.GatewayUnavailable, stripe.StripeError):
            pass  # paid all the same; the card was checked before charging
    return result


UNKNOWN_CARD = _(
    "The card processor does not know this card: enter your card details again. "
    "Nothing was charged."
)


def _card_message(error: stripe.StripeError) -> str:
    return getattr(error, "user_message", None) or _("Your card was declined.")


def _card_code(error: stripe.StripeError) -> str:
    body = getattr(error, "error", None)
    return (
        getattr(body, "decline_code", None)
        or getattr(error, "code", None)
        or getattr(body, "code", None)
        or "card_declined"
    )


def _declined_intent_id(error: stripe.StripeError) -> str | None:
    intent = getattr(getattr(error, "error", None), "payment_intent", None)
    return intent if isinstance(intent, str) else getattr(intent, "id", None)


def _send_create(payment: Payment, *, source: str) -> Payment:
    """Send the payment's PaymentIntent create (again: same parameters, same
    key, so Stripe answers it once) and settle the payment from the answer."""
    try:
        intent = gateway.payment_intent_create(
            params=payment.stripe_request, idempotency_key=payment.stripe_idempotency_key
        )
    except stripe.CardError as error:
        _payment_fail(
            payment,
            _card_message(error),
            code=_card_code(error),
            intent_id=_declined_intent_id(error),
        )
        return Payment.objects.get(pk=payment.pk)
    except gateway.GatewayUnavailable:
        # Stripe may have charged: leave the payment processing (it blocks a
        # second charge) until a webhook or reconciliation learns the answer.
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PROCESSING).update(
            failure_message=WAITING
        )
        return Payment.objects.get(pk=payment.pk)
    except stripe.IdempotencyError as error:
        # The key was used with other parameters: a bug of ours, never a charge to guess.
        finding_record(
            source=source,
            code="idempotency_conflict",
            message=f"Stripe refused the key of payment {payment.pk}: {error}",
            payment=payment,
        )
        return Payment.objects.get(pk=payment.pk)
    except stripe.StripeError as error:
        # A clear refusal (an unknown card, a bad request): nothing was charged.
        _payment_fail(payment, UNKNOWN_CARD, code=getattr(error, "code", None) or "invalid")
        return Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(client_secret=intent.client_secret or "")
    return payment_apply_intent(payment_id=payment.pk, intent=intent, source=source)


def _payment_fail(
    payment: Payment, message: str, *, code: str = "", intent_id: str | None = None
) -> None:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.is_final:
            return
        locked.status = Payment.Status.FAILED
        locked.failure_message = str(message)[:300]
        locked.decline_code = (code or "")[:60]
        if intent_id and not locked.stripe_payment_intent_id:
            locked.stripe_payment_intent_id = intent_id
        locked.save()


STATUS_FROM_STRIPE = {
    "succeeded": Payment.Status.SUCCEEDED,
    "requires_action": Payment.Status.REQUIRES_ACTION,
    "processing": Payment.Status.PROCESSING,
    "requires_confirmation": Payment.Status.PROCESSING,
    "requires_capture": Payment.Status.PROCESSING,
    "requires_payment_method": Payment.Status.FAILED,
    "canceled": Payment.Status.FAILED,
}
# States only move forward along this order. A failed payment can still
# succeed (Stripe's late answer always wins); nothing leaves succeeded.
RANK: dict[str, int] = {
    Payment.Status.PROCESSING: 0,
    Payment.Status.REQUIRES_ACTION: 1,
    Payment.Status.FAILED: 2,
    Payment.Status.SUCCEEDED: 3,
}


def _intent_mismatch(payment: Payment, facts: gateway.IntentFacts) -> str:
    """Why this PaymentIntent cannot settle this payment ("" when it can)."""
    currency = str(payment.stripe_request.get("currency") or _provider().currency).upper()
    problems = []
    if facts.provider != current_schema():
        problems.append(f"its provider is {facts.provider or 'missing'}")
    if facts.payment != str(payment.pk):
        problems.append(f"it names payment {facts.payment or 'none'}")
    if payment.stripe_payment_intent_id and facts.id != payment.stripe_payment_intent_id:
        problems.append(f"the payment's intent is {payment.stripe_payment_intent_id}")
    if facts.currency != currency:
        problems.append(f"its currency is {facts.currency or 'missing'}, not {currency}")
    elif facts.amount != payment.amount:
        problems.append(f"its amount is {facts.amount}, not {payment.amount}")
    return "; ".join(problems)


def payment_apply_intent(
    *,
    payment_id: int,
    intent: Any,
    source: str = Finding.Source.RECONCILIATION,
    failure_message: str = "",
) -> Payment:
    """Move the payment forward to what Stripe says; never backwards, except
    that a success is always recorded (and booked once), even after a
    failure. An intent whose amount, currency, provider or payment do not
    match settles nothing and is reported to staff."""
    facts = gateway.intent_facts(intent)
    new = STATUS_FROM_STRIPE.get(facts.status, Payment.Status.PROCESSING)
    with transaction.atomic():
        order_id = Payment.objects.values_list("order_id", flat=True).get(pk=payment_id)
        order = _lock_order_id(order_id) if order_id else None
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)
        mismatch = _intent_mismatch(payment, facts)
        if mismatch:
            finding_record(
                source=source,
                code="intent_mismatch",
                message=f"Stripe's payment {facts.id} does not settle payment {payment.pk}: "
                f"{mismatch}. Nothing was settled.",
                payment=payment,
            )
            return payment
        linked = not payment.stripe_payment_intent_id
        if linked:
            payment.stripe_payment_intent_id = facts.id
        if RANK[new] <= RANK[payment.status]:
            if linked:
                payment.save(update_fields=["stripe_payment_intent_id"])
            return payment
        was = payment.status
        payment.status = new
        if new == Payment.Status.SUCCEEDED:
            payment.succeeded_at = clock.now()
            payment.failure_message = ""
        elif new == Payment.Status.FAILED:
            payment.failure_message = str(
                failure_message or facts.failure_message or _("The payment did not go through.")
            )[:300]
            payment.decline_code = facts.failure_code[:60]
        elif payment.failure_message == str(WAITING):
            payment.failure_message = ""
        payment.save()
        if new == Payment.Status.SUCCEEDED:
            _book_payment(payment, order=order, excess_to_credit=True, source=source)
            if was == Payment.Status.FAILED:
                finding_record(
                    source=source,
                    code="late_success",
                    message=f"Payment {payment.pk} had failed, then Stripe said it succeeded "
                    f"({facts.id}): recorded and booked now.",
                    payment=payment,
                )
            transaction.on_commit(lambda: _send_receipt(payment.pk))
    return payment


def _lock_order_id(order_id: int) -> Order:
    return Order.objects.select_for_update(of=("self",)).select_related("family").get(pk=order_id)


def payment_sync(*, payment: Payment, source: str = Finding.Source.RECONCILIATION) -> Payment:
    """Re-read the payment's state from Stripe (webhooks are only a trigger)."""
    if not payment.stripe_payment_intent_id or payment.status == Payment.Status.SUCCEEDED:
        return payment
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    return payment_apply_intent(payment_id=payment.pk, intent=intent, source=source)


@provider_language()
def _send_receipt(payment_id: int) -> None:
    """A receipt to whoever paid online; for money taken at the desk, to the
    family's primary guardian."""
    payment = Payment.objects.select_related("order", "payer__user").get(pk=payment_id)
    if payment.payer is not None:
        emails = [payment.payer.user.email] if payment.payer.user else []
    else:
        emails = list(
            Guardian.objects.filter(
                family_id=payment.family_id, is_primary=True, user__is_active=True
            ).values_list("user__email", flat=True)
        )
    provider = _provider()
    for email in emails:
        queue_email(
            subject=_("Receipt: %(amount)s to %(provider)s")
            % {
                "amount": formatting.money(payment.amount),
                "provider": provider.name,
            },
            body=render_to_string(
                "billing/email/receipt.txt", {"payment": payment, "provider": provider}
            ),
            to=[email],
        )


# --- Stripe events and reconciliation ---------------------------------------------------------

SETTLE_AFTER = timedelta(minutes=2)  # younger ones are still being answered
ACTION_TIMEOUT = timedelta(minutes=30)  # 3-D Secure not completed by then is cancelled
KEY_LIFETIME = timedelta(hours=23)  # Stripe forgets idempotency keys after 24 h


def stripe_event_store(*, event_id: str, type: str, object_id: str) -> StripeEvent | None:
    """Keep a Stripe event once, before acting on it (None: known already)."""
    try:
        with transaction.atomic():
            return StripeEvent.objects.create(event_id=event_id, type=type, object_id=object_id)
    except IntegrityError:
        return None


def stripe_event_process(*, event_id: int, source: str = Finding.Source.WEBHOOK) -> str:
    """Act on a stored Stripe event (from the webhook's task, or from
    reconciliation when that task never ran): re-read the PaymentIntent from
    Stripe and settle the payment it belongs to with the same checks."""
    event = StripeEvent.objects.get(pk=event_id)
    if event.processed_at:
        return "processed already"
    if event.type in REFUND_EVENTS:
        return _refund_event_process(event)
    outcome = "no payment"
    if event.object_id.startswith("pi_"):
        intent = gateway.payment_intent_retrieve(event.object_id)
        facts = gateway.intent_facts(intent)
        payment = Payment.objects.filter(stripe_payment_intent_id=facts.id).first()
        if payment is None and facts.payment.isdigit():
            # A payment whose create call got no answer: found by our id in metadata.
            payment = Payment.objects.filter(
                pk=int(facts.payment), stripe_payment_intent_id__isnull=True
            ).first()
        if payment is not None:
            settled = payment_apply_intent(payment_id=payment.pk, intent=intent, source=source)
            outcome = settled.status
        elif facts.provider == current_schema():
            finding_record(
                source=source,
                code="unknown_intent",
                message=f"Stripe's payment {facts.id} ({facts.amount} {facts.currency}, "
                f"{facts.status}) matches no payment here.",
            )
    StripeEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
        processed_at=clock.now()
    )
    return outcome


# Refunds: made by staff here (booked from Stripe's answer) or in Stripe's dashboard.
REFUND_EVENTS = {"charge.refunded", "refund.created", "refund.updated"}


def _refund_event_process(event: StripeEvent) -> str:
    """Re-read the refund (or the charge's refunds) from Stripe and book what
    is new; booking is once per Stripe refund id, so a repeat changes nothing."""
    if event.object_id.startswith("ch_"):
        refunds = gateway.refunds_list(charge_id=event.object_id)
    else:
        refunds = [gateway.refund_retrieve(event.object_id)]
    booked = [refund_from_stripe(stripe_refund=refund) for refund in refunds]
    StripeEvent.objects.filter(pk=event.pk).update(processed_at=clock.now())
    return f"{sum(1 for b in booked if b)} refund(s)"


def payment_reconcile(*, payment: Payment) -> Payment:
    """Settle one unsettled card payment from Stripe's answer: by its intent
    id, or (no answer ever came to its create) by sending the same create with
    the same key, which Stripe answers once. 3-D Secure left undone for 30
    minutes is cancelled at Stripe and the order is payable again."""
    source = Finding.Source.RECONCILIATION
    before = payment.status
    age = clock.now() - payment.created_at
    if payment.stripe_payment_intent_id:
        try:
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        except stripe.InvalidRequestError as error:
            finding_record(
                source=source,
                code="intent_unknown_at_stripe",
                message=f"Stripe does not know payment {payment.pk}'s intent "
                f"{payment.stripe_payment_intent_id}: {error.user_message or error}",
                payment=payment,
            )
            return payment
        payment = payment_apply_intent(payment_id=payment.pk, intent=intent, source=source)
    elif payment.stripe_request and payment.stripe_idempotency_key and age < KEY_LIFETIME:
        payment = _send_create(payment, source=source)
        intent = None
    else:
        _payment_fail(
            payment,
            _("The card processor never confirmed this payment. Nothing was booked; try again."),
            code="no_answer",
        )
        finding_record(
            source=source,
            code="never_answered",
            message=f"Payment {payment.pk} got no answer from Stripe in {age}: marked failed. "
            "Check Stripe's dashboard for a charge; a late success is still booked.",
            payment=payment,
        )
        return Payment.objects.get(pk=payment.pk)
    if (
        payment.status == Payment.Status.REQUIRES_ACTION
        and age >= ACTION_TIMEOUT
        and payment.stripe_payment_intent_id
    ):
        try:
            intent = gateway.payment_intent_cancel(
                payment.stripe_payment_intent_id,
                idempotency_key=f"{payment.stripe_idempotency_key or payment.pk}-cancel",
            )
        except stripe.InvalidRequestError:
            # Not cancellable any more: the parent finished meanwhile. Stripe says how.
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        payment = payment_apply_intent(
            payment_id=payment.pk,
            intent=intent,
            source=source,
            failure_message=_(
                "The bank's confirmation was not completed within 30 minutes, so the payment "
                "was cancelled. Nothing was charged; you can pay again."
            ),
        )
    if payment.status != before:
        finding_record(
            source=source,
            code=f"settled_{payment.status}",
            message=f"Payment {payment.pk} ({payment.amount}) was {before}; Stripe says "
            f"{payment.get_status_display().lower()}.",
            severity=Finding.Severity.INFO,
            payment=payment,
        )
    return payment


STRIPE_METHODS = [Payment.Method.CARD, Payment.Method.SEPA]


def payments_reconcile() -> dict[str, int]:
    """Card payments left unsettled, Stripe events never processed and card
    refunds Stripe has not answered, settled from Stripe's answer (the beat
    task runs this for each provider)."""
    counts = {"payments": 0, "settled": 0, "events": 0, "unanswered": 0, "refunds": 0}
    cutoff = clock.now() - SETTLE_AFTER
    waiting = Payment.objects.filter(
        method__in=STRIPE_METHODS,
        status__in=[Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION],
        created_at__lte=cutoff,
    ).order_by("created_at")
    for payment in waiting:
        counts["payments"] += 1
        try:
            after = payment_reconcile(payment=payment)
        except gateway.GatewayUnavailable:
            counts["unanswered"] += 1
            continue
        counts["settled"] += after.status != payment.status
    events = StripeEvent.objects.filter(processed_at__isnull=True, received_at__lte=cutoff)
    for event_id in events.order_by("received_at").values_list("pk", flat=True):
        try:
            stripe_event_process(event_id=event_id, source=Finding.Source.RECONCILIATION)
        except gateway.GatewayUnavailable:
            counts["unanswered"] += 1
            continue
        counts["events"] += 1
    # A refund Stripe did not answer holds its amount: ask again (safe: the
    # refund made for the request is found first, and the key is the same).
    pending = RefundRequest.objects.filter(
        status=RefundRequest.Status.PENDING,
        method=RefundRequest.Method.CARD,
        created_at__lte=cutoff,
    )
    for held in pending.order_by("created_at"):
        answered = refund_request_send(request=held)
        counts["refunds"] += answered.status != RefundRequest.Status.PENDING
    return counts


# --- Card entry ------------------------------------------------------------------------------


def card_setup_start(*, guardian: Guardian, reuse_id: str = "") -> stripe.SetupIntent:
    """The SetupIntent that turns the card typed on a page into a payment
    method: one per card entry. `reuse_id` (kept by the page's session) is
    answered again while Stripe still waits for a card on it."""
    customer_id = stripe_customer_for(guardian)
    if reuse_id:
        try:
            found = gateway.setup_intent_retrieve(reuse_id)
        except stripe.InvalidRequestError:
            found = None
        if (
            found is not None
            and getattr(found, "customer", None) == customer_id
            and found.status in ("requires_payment_method", "requires_confirmation")
        ):
            return found
    return gateway.setup_intent_create(
        customer_id=customer_id, key=f"{current_schema()}-setup-{guardian.pk}-{uuid.uuid4().hex}"
    )


# --- Refunds ------------------------------------------------------------------------------------
#
# A refund is reserved, then made, then booked. The reservation (a pending
# RefundRequest) is written under the order and payment locks, after counting
# what was refunded and what is still waiting for Stripe, so two refunds
# racing can never give back more than was paid. Stripe is then called with
# no lock held and an idempotency key of the request; its answer is booked in
# a transaction of its own. A Refund row is written once, when the money has
# gone back, and never changed.

REFUND_OUTSIDE_PORTAL = "refund_outside_portal"


def _lock_payment(payment: Payment) -> Payment:
    return (
        Payment.objects.select_for_update(of=("self",)).select_related("order").get(pk=payment.pk)
    )


def payment_refundable(payment: Payment) -> Decimal:
    """What can still be given back from a payment: its amount less what was
    refunded and what is waiting for Stripe. Read it under the payment lock
    before acting on it."""
    booked = payment.refunds.aggregate(t=Sum("amount"))["t"] or ZERO
    held = (
        payment.refund_requests.filter(status=RefundRequest.Status.PENDING).aggregate(
            t=Sum("amount")
        )["t"]
        or ZERO
    )
    return payment.amount - booked - held


def _credit_note_room(order: Order) -> Decimal:
    """What a new credit note may still take off the order's charge: what is
    left of it less the credit notes of refunds waiting for Stripe."""
    held = (
        RefundRequest.objects.filter(
            payment__order=order,
            status=RefundRequest.Status.PENDING,
            meaning=RefundRequest.Meaning.CREDIT_NOTE,
        ).aggregate(t=Sum("amount"))["t"]
        or ZERO
    )
    return order_charge_left(order) - held


def refund_methods(payment: Payment) -> list[tuple[str, str]]:
    """How money can go back from this payment: to the card it came from, or
    at the desk or by bank transfer."""
    labels = dict(RefundRequest.Method.choices)
    offline = [(str(m), str(labels[m])) for m in ("desk", "bank")]
    if payment.method in STRIPE_METHODS and payment.stripe_payment_intent_id:
        return [("card", str(labels["card"])), *offline]
    if payment.method == Payment.Method.BANK:
        offline.reverse()
    return offline


def refund_create(
    *,
    payment: Payment,
    amount: Decimal,
    reason: str,
    actor_user: User | None,
    meaning: str = RefundRequest.Meaning.STILL_OWED,
    method: str | None = None,
    key: str = "",
) -> RefundRequest:
    """Give money back from a payment and book it. `meaning`: money back with
    the amount still owed (the order owes it again), or reduce the order's
    charge by a credit note (returns and cancellations, the staff form's
    default: nothing becomes owed). `method`: back to the
    card (through Stripe), or paid back at the desk or by bank transfer.
    `key` comes from the form: a double submit refunds once (the second gets
    the first request back). A card refund Stripe has not confirmed stays
    pending, its amount held, until Stripe's answer or event arrives."""
    amount = to_decimal(amount)
    reason = (reason or "").strip()
    if not reason:
        raise BillingError(_("Say why the refund is made."), field="reason")
    if amount <= 0:
        raise BillingError(_("Enter an amount above zero."), field="amount")
    if meaning not in RefundRequest.Meaning.values:
        raise BillingError(_("Choose what the refund means."), field="meaning")
    method = method or refund_methods(payment)[0][0]
    if method not in dict(refund_methods(payment)):
        raise BillingError(_("This payment cannot go back that way."), field="method")
    request, created = _refund_reserve(
        payment=payment,
        amount=amount,
        reason=reason,
        meaning=meaning,
        method=method,
        key=f"refund:{payment.pk}:{key or uuid.uuid4().hex}",
        actor_user=actor_user,
    )
    if created and request.status == RefundRequest.Status.PENDING:
        return refund_request_send(request=request)
    return request


def _refund_reserve(
    *,
    payment: Payment,
    amount: Decimal,
    reason: str,
    meaning: str,
    method: str,
    key: str,
    actor_user: User | None,
) -> tuple[RefundRequest, bool]:
    """Hold the amount against the payment (and the credit note against the
    order's charge) under their locks; money going back at the desk or by
    bank transfer is booked at once."""
    with transaction.atomic():
        order = _lock_order(payment.order) if payment.order else None
        payment = _lock_payment(payment)
        existing = RefundRequest.objects.filter(key=key).first()
        if existing:
            return existing, False
        if payment.status != Payment.Status.SUCCEEDED:
            raise BillingError(_("Only a completed payment can be refunded."))
        left = payment_refundable(payment)
        if amount > left:
            raise BillingError(
                _("You can refund up to %(left)s.") % {"left": formatting.money(max(left, ZERO))},
                field="amount",
            )
        if meaning == RefundRequest.Meaning.CREDIT_NOTE:
            if order is None:
                raise BillingError(
                    _("This payment belongs to no order, so there is no charge to reduce."),
                    field="meaning",
                )
            room = _credit_note_room(order)
            if amount > room:
                raise BillingError(
                    _(
                        "A credit note can take at most %(room)s off this order's charge. "
                        "Refund less, or choose money back with the amount still owed."
                    )
                    % {"room": formatting.money(max(room, ZERO))},
                    field="amount",
                )
        elif order is not None and order.cancelled_at:
            raise BillingError(
                _("This order is cancelled: nothing can be owed on it again."), field="meaning"
            )
        request = RefundRequest.objects.create(
            payment=payment,
            amount=amount,
            reason=reason,
            meaning=meaning,
            method=method,
            key=key,
            actor=actor_user,
        )
        if method != RefundRequest.Method.CARD:
            _refund_book(request, order, stripe_refund_id=None)
    return request, True


def refund_request_send(*, request: RefundRequest) -> RefundRequest:
    """Ask Stripe for a pending card refund, holding no lock. Safe to repeat
    (a retry after Stripe did not answer): a refund Stripe already made for
    this request is found by its metadata before anything is sent, and the
    call carries the request's idempotency key."""
    request = RefundRequest.objects.select_related("payment").get(pk=request.pk)
    if (
        request.status != RefundRequest.Status.PENDING
        or request.method != RefundRequest.Method.CARD
    ):
        return request
    payment = request.payment
    try:
        made = _stripe_refund_of(request)
        if made is None:
            made = gateway.refund_create(
                payment_intent_id=payment.stripe_payment_intent_id or "",
                amount=request.amount,
                currency=_provider().currency,
                key=f"{current_schema()}-refund-{request.pk}",
                metadata={"refund_request": str(request.pk)},
            )
    except (
        stripe.InvalidRequestError,
        stripe.AuthenticationError,
        stripe.PermissionError,
    ) as error:
        return _refund_request_fail(
            request.pk,
            _("Stripe refused the refund: %(why)s") % {"why": error.user_message or error},
        )
    except (gateway.GatewayUnavailable, stripe.StripeError):
        # Whether Stripe made it is unknown: the amount stays held until its
        # event arrives or the request is sent again.
        RefundRequest.objects.filter(pk=request.pk, status=RefundRequest.Status.PENDING).update(
            failure_message=_(
                "Stripe has not answered yet. The amount is held and the refund is booked "
                "when Stripe confirms it; do not refund it again."
            )
        )
        return RefundRequest.objects.get(pk=request.pk)
    return refund_request_settle(request_id=request.pk, stripe_refund=made)


def _stripe_refund_of(request: RefundRequest) -> Any:
    """The refund Stripe made for this request, if an earlier call made one."""
    intent = request.payment.stripe_payment_intent_id
    if not intent:
        return None
    for made in gateway.refunds_list(payment_intent_id=intent):
        metadata = _stripe_dict(made).get("metadata") or {}
        if str(metadata.get("refund_request", "")) == str(request.pk):
            return made
    return None


def _stripe_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def refund_request_settle(*, request_id: int, stripe_refund: Any) -> RefundRequest:
    """Book what Stripe says of a request's refund; states only move forward,
    so the service's own answer and Stripe's event book it once."""
    data = _stripe_dict(stripe_refund)
    status = data.get("status")
    with transaction.atomic():
        request = RefundRequest.objects.select_related("payment__order").get(pk=request_id)
        order = _lock_order(request.payment.order) if request.payment.order else None
        request = RefundRequest.objects.select_for_update().get(pk=request_id)
        if request.status != RefundRequest.Status.PENDING:
            return request
        if status == "succeeded":
            _refund_book(request, order, stripe_refund_id=data.get("id"))
        elif status in ("failed", "canceled"):
            why = data.get("failure_reason") or status
            _refund_request_fail(
                request.pk, _("Stripe could not make the refund: %(why)s") % {"why": why}
            )
        elif data.get("id") and not request.stripe_refund_id:
            request.stripe_refund_id = data["id"]
            request.failure_message = _("Stripe is making the refund; it is booked when done.")
            request.save(update_fields=["stripe_refund_id", "failure_message"])
    return RefundRequest.objects.get(pk=request_id)


def _refund_request_fail(request_id: int, message: str) -> RefundRequest:
    with transaction.atomic():
        request = RefundRequest.objects.select_for_update().get(pk=request_id)
        if request.status == RefundRequest.Status.PENDING:
            request.status = RefundRequest.Status.FAILED
            request.failure_message = str(message)[:300]
            request.settled_at = clock.now()
            request.save(update_fields=["status", "failure_message", "settled_at"])
    return request


def _refund_book(
    request: RefundRequest, order: Order | None, *, stripe_refund_id: str | None
) -> Refund:
    """The Refund, its ledger entry and (when it reduces the charge) its
    credit note; the order is locked by the caller."""
    payment = request.payment
    refund = Refund.objects.create(
        payment=payment,
        amount=request.amount,
        reason=request.reason,
        method=request.method,
        request=request,
        stripe_refund_id=stripe_refund_id,
        actor=request.actor,
    )
    LedgerEntry.objects.create(
        family_id=payment.family_id,
        order=order,
        location=order.location if order else None,
        kind=LedgerEntry.Kind.REFUND,
        amount=request.amount,
        description=f"{request.get_method_display()}: {request.reason}"[:200],
        refund=refund,
        actor=request.actor,
    )
    if order is not None and request.meaning == RefundRequest.Meaning.CREDIT_NOTE:
        noted = min(request.amount, order_charge_left(order))
        if noted > 0:
            _credit_note_create(order, noted, request.reason, request.actor)
        if noted < request.amount:
            finding_record(
                source=Finding.Source.CHECK,
                code="refund_beyond_charge",
                message=_(
                    "A refund of %(amount)s was meant to reduce the charge of order #%(number)s, "
                    "but only %(noted)s of its charge was left: the order owes the rest again."
                )
                % {
                    "amount": formatting.money(request.amount),
                    "number": order.number,
                    "noted": formatting.money(noted),
                },
                payment=payment,
            )
    RefundRequest.objects.filter(pk=request.pk).update(
        status=RefundRequest.Status.SUCCEEDED,
        stripe_refund_id=stripe_refund_id,
        failure_message="",
        settled_at=clock.now(),
    )
    return refund


def refund_from_stripe(*, stripe_refund: Any) -> Refund | None:
    """A refund Stripe tells us of (its events are only a trigger: this is
    the refund as re-read from Stripe). One of ours settles its request; one
    made in Stripe's dashboard is booked once (unique Stripe id) as money back
    with the amount owed again, and staff are told."""
    data = _stripe_dict(stripe_refund)
    intent = data.get("payment_intent")
    if not intent and data.get("charge"):
        intent = _stripe_dict(gateway.charge_retrieve(data["charge"])).get("payment_intent")
    payment = (
        Payment.objects.select_related("order").filter(stripe_payment_intent_id=intent).first()
        if intent
        else None
    )
    if payment is None:
        return None
    ours = str((data.get("metadata") or {}).get("refund_request", ""))
    request = (
        RefundRequest.objects.filter(pk=ours, payment=payment).first() if ours.isdigit() else None
    )
    if request is not None:
        refund_request_settle(request_id=request.pk, stripe_refund=data)
        return Refund.objects.filter(request=request).first()
    if data.get("status") != "succeeded":
        return None  # booked when Stripe says it succeeded (refund.updated)
    found = Refund.objects.filter(stripe_refund_id=data["id"]).first()
    if found:
        return found
    amount = from_minor_units(int(data["amount"]), data.get("currency") or _provider().currency)
    with transaction.atomic():
        order = _lock_order(payment.order) if payment.order else None
        payment = _lock_payment(payment)
        found = Refund.objects.filter(stripe_refund_id=data["id"]).first()
        if found:
            return found
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason=_("Refunded in Stripe's dashboard"),
            method=RefundRequest.Method.CARD,
            stripe_refund_id=data["id"],
        )
        LedgerEntry.objects.create(
            family_id=payment.family_id,
            order=order,
            location=order.location if order else None,
            kind=LedgerEntry.Kind.REFUND,
            amount=amount,
            description=_("Refunded in Stripe's dashboard"),
            refund=refund,
        )
        finding_record(
            source=Finding.Source.WEBHOOK,
            code=REFUND_OUTSIDE_PORTAL,
            message=_(
                "A refund of %(amount)s was made in Stripe's dashboard, outside the portal. "
                "It is booked as money back with the amount owed again; if it was meant "
                "to reduce the charge, issue a credit note for it."
            )
            % {"amount": formatting.money(amount)},
            payment=payment,
        )
    return refund


# --- Credit notes -------------------------------------------------------------------------------


def _next_number(name: str) -> int:
    """The next number of a gapless sequence: its row stays locked until the
    transaction that uses the number ends (a rollback gives it back)."""
    NumberSequence.objects.get_or_create(name=name)
    sequence = NumberSequence.objects.select_for_update().get(name=name)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return sequence.last


def credit_note_issue(
    *, order: Order, amount: Decimal, reason: str, actor_user: User | None
) -> CreditNote:
    """Reduce what the order owes by a numbered credit note that refers to
    its invoice. It never exceeds what is left of the charge nor what is
    still owed: money already paid is refunded (refund_create) or left as
    credit (order_cancel)."""
    amount = to_decimal(amount)
    reason = (reason or "").strip()
    if not reason:
        raise BillingError(_("Say why the credit note is issued."), field="reason")
    if amount <= 0:
        raise BillingError(_("Enter an amount above zero."), field="amount")
    with transaction.atomic():
        order = _lock_order(order)
        room = _credit_note_room(order)
        if amount > room:
            raise BillingError(
                _("Only %(room)s of this order's charge is left to credit.")
                % {"room": formatting.money(max(room, ZERO))},
                field="amount",
            )
        owed = order_outstanding(order)
        if amount > owed:
            raise BillingError(
                _(
                    "This order owes %(owed)s: a credit note for more would leave it below zero. "
                    "To give paid money back, refund it from the payment."
                )
                % {"owed": formatting.money(max(owed, ZERO))},
                field="amount",
            )
        return _credit_note_create(order, amount, reason, actor_user)


def _credit_note_create(
    order: Order, amount: Decimal, reason: str, actor_user: User | None
) -> CreditNote:
    """Number, snapshot and book a credit note; the caller holds the order
    lock and has checked the amount."""
    invoice = invoice_issue(order=order)
    number = _next_number("credit_note")
    provider = _provider()
    snapshot = {
        # The supplier as the invoice it corrects names it (registered name, VAT number).
        "provider": invoice.snapshot.get("provider")
        or {"name": provider.name, "email": provider.support_email},
        "family": invoice.snapshot.get("family", order.family.name),
        "bill_to": invoice.snapshot.get("bill_to", ""),
        "address": invoice.snapshot.get("address", ""),
        "order": order.number,
        "title": order.title,
        "invoice": invoice.display_number,
        "invoice_date": invoice.issued_at.date().isoformat(),
        "invoice_total": invoice.snapshot.get("total", ""),
        "reason": reason,
        "lines": [{"description": reason, "quantity": 1, "amount": str(amount)}],
        "total": str(amount),
        "currency": provider.currency,
    }
    note = CreditNote.objects.create(
        order=order,
        invoice=invoice,
        number=number,
        amount=amount,
        reason=reason[:200],
        snapshot=snapshot,
        actor=actor_user,
    )
    LedgerEntry.objects.create(
        family=order.family,
        order=order,
        location=order.location,
        kind=LedgerEntry.Kind.CREDIT_NOTE,
        amount=-amount,
        description=_("Credit note %(number)s: %(reason)s")
        % {"number": note.display_number, "reason": reason},
        credit_note=note,
        actor=actor_user,
    )
    return note


# --- Cancelling an order ------------------------------------------------------------------------


class PaidMoney:
    """What happens to money already paid on an order being cancelled."""

    CREDIT = "credit"
    REFUND = "refund"
    choices = [
        (CREDIT, _("Keep it as family credit")),
        (REFUND, _("Give it back (to the card, or at the desk)")),
    ]


@dataclass
class CancelPlan:
    owed: Decimal  # still owed: reversed by the credit note
    refunds: list[tuple[Payment, Decimal, str]]  # payment, amount, method
    to_credit: Decimal  # paid money (and any excess) that becomes family credit
    credit_note: Decimal  # the charge less what the refunds' own credit notes take


def _cancel_plan(order: Order, paid_money: str) -> CancelPlan:
    """The whole charge is reversed: now by one credit note, and for money
    given back to a payment by the credit notes of those refunds."""
    balance = order_outstanding(order)
    charge = max(order_charge_left(order), ZERO)
    owed = max(balance, ZERO)
    excess = max(-balance, ZERO)  # paid beyond the charge: family credit in any case
    paid = max(charge - owed, ZERO)
    refunds: list[tuple[Payment, Decimal, str]] = []
    remaining = paid
    if paid_money == PaidMoney.REFUND:
        payments = order.payments.filter(status=Payment.Status.SUCCEEDED).order_by("-created_at")
        for payment in payments:
            take = min(payment_refundable(payment), remaining)
            if take > 0:
                refunds.append((payment, take, refund_methods(payment)[0][0]))
                remaining -= take
    return CancelPlan(
        owed=owed,
        refunds=refunds,
        to_credit=remaining + excess,
        credit_note=owed + remaining,
    )


def order_cancel_preview(*, order: Order, paid_money: str = PaidMoney.CREDIT) -> list[str]:
    """What cancelling would do, in words, for the confirmation step."""
    plan = _cancel_plan(order, paid_money)
    said = []
    if plan.credit_note:
        said.append(
            _("A credit note of %(amount)s takes it off the order's charge (%(owed)s is owed now).")
            % {"amount": formatting.money(plan.credit_note), "owed": formatting.money(plan.owed)}
        )
    methods = dict(RefundRequest.Method.choices)
    for payment, amount, method in plan.refunds:
        said.append(
            _("%(amount)s of the payment of %(paid)s goes back: %(how)s.")
            % {
                "amount": formatting.money(amount),
                "paid": formatting.money(payment.amount),
                "how": methods[method],
            }
        )
    if plan.to_credit:
        said.append(
            _("%(amount)s already paid becomes family credit.")
            % {"amount": formatting.money(plan.to_credit)}
        )
    if not said:
        said.append(_("Nothing is owed or paid: the order is only marked cancelled."))
    return said


def order_cancel(
    *,
    order: Order,
    reason: str,
    actor_user: User | None,
    paid_money: str = PaidMoney.CREDIT,
) -> Order:
    """Cancel an order once: a credit note reverses its charge; money already
    paid on it becomes family credit or goes back, as staff choose. Card
    refunds are reserved here and sent to Stripe after this transaction
    commits (no lock is held while Stripe answers); money paid at the desk
    or by bank transfer is booked as given back at once."""
    reason = (reason or "").strip()
    if not reason:
        raise BillingError(_("Say why the order is cancelled."), field="reason")
    if paid_money not in (PaidMoney.CREDIT, PaidMoney.REFUND):
        raise BillingError(_("Choose what happens to money already paid."), field="paid_money")
    with transaction.atomic():
        order = _lock_order(order)
        if order.cancelled_at:
            raise BillingError(_("This order is cancelled already."))
        if _payment_in_progress(order):
            raise BillingError(_("A card payment for this order is in progress; wait for it."))
        if RefundRequest.objects.filter(
            payment__order=order, status=RefundRequest.Status.PENDING
        ).exists():
            raise BillingError(_("A refund on this order is waiting for Stripe; wait for it."))
        for payment in order.payments.filter(status=Payment.Status.SUCCEEDED):
            _lock_payment(payment)
        plan = _cancel_plan(order, paid_money)
        order.cancelled_at = clock.now()
        order.cancel_reason = reason[:200]
        order.cancelled_by = actor_user
        order.save(update_fields=["cancelled_at", "cancel_reason", "cancelled_by"])
        if plan.to_credit:
            _move_to_credit(order, plan.to_credit, reason, actor_user)
        if plan.credit_note > 0:
            _credit_note_create(order, plan.credit_note, reason, actor_user)
        for payment, amount, method in plan.refunds:
            request = RefundRequest.objects.create(
                payment=payment,
                amount=amount,
                reason=reason[:200],
                meaning=RefundRequest.Meaning.CREDIT_NOTE,
                method=method,
                key=f"cancel:{order.pk}:{payment.pk}",
                actor=actor_user,
            )
            if method == RefundRequest.Method.CARD:
                transaction.on_commit(
                    partial(dispatch, "billing.tasks.send_refund_request", request.pk)
                )
            else:
                _refund_book(request, order, stripe_refund_id=None)
    return order


def _move_to_credit(order: Order, amount: Decimal, reason: str, actor_user: User | None) -> None:
    """Money paid on an order that it no longer owes becomes family credit:
    one ledger entry takes it off the order, one grant adds it to the family's
    credit (the same transaction)."""
    n = LedgerEntry.objects.filter(order=order, kind=LedgerEntry.Kind.TO_CREDIT).count()
    LedgerEntry.objects.create(
        family=order.family,
        order=order,
        location=order.location,
        kind=LedgerEntry.Kind.TO_CREDIT,
        amount=amount,
        description=_("Moved to family credit: %(reason)s") % {"reason": reason},
        reference=f"order-{order.pk}-to-credit-{n + 1}",
        actor=actor_user,
    )
    benefit_services.credit_grant(
        family=order.family,
        amount=amount,
        source="cancellation" if order.cancelled_at else "refund",
        description=_("Order #%(number)s %(title)s: %(reason)s")
        % {"number": order.number, "title": order.title, "reason": reason},
        actor_user=actor_user,
    )


def order_credit_excess(*, order: Order, reason: str, actor_user: User | None) -> Decimal:
    """Money beyond what the order owes (its balance below zero, e.g. paid
    twice) becomes family credit; returns how much moved."""
    with transaction.atomic():
        order = _lock_order(order)
        excess = -order_outstanding(order)
        if excess <= 0:
            return ZERO
        _move_to_credit(order, excess, reason, actor_user)
    return excess


# --- Saved payment methods --------------------------------------------------------------------
#
# Every guardian with a login keeps up to three methods of their own; the
# family's other guardians see them and never use them. Paying with one, and
# authorising one for recurring billing, needs "may pay". Changes to a
# guardian's methods take turns on the guardian's row (locked FOR NO KEY
# UPDATE: saving a method still takes its key share), and PostgreSQL backs
# the rules: one primary per guardian, three slots per guardian.

MAX_METHODS = PaymentMethod.MAX_PER_GUARDIAN
TOO_MANY_METHODS = _("You can keep up to three payment methods. Delete one first.")
METHODS_BUSY = _(
    "Your payment methods were being changed somewhere else at the same moment. "
    "Look at them again and repeat the change if it is still needed."
)


def _guardian_locked(guardian: Guardian) -> Guardian:
    return Guardian.objects.select_for_update(no_key=True).get(pk=guardian.pk)


def primary_guardian_name(family_id: int) -> str:
    primary = Guardian.objects.filter(family_id=family_id, is_primary=True).first()
    return primary.full_name if primary else ""


def _ask_primary(message: str, family_id: int) -> str:
    name = primary_guardian_name(family_id)
    if not name:
        return message
    return f"{message} " + _("Ask %(name)s, the primary guardian.") % {"name": name}


def _own_method(method: PaymentMethod, actor: Guardian) -> None:
    if method.guardian_id != actor.pk:
        raise BillingError(
            _(
                "Only the guardian who saved a payment method can change or delete it. "
                "You can add a method of your own."
            )
        )


def _not_anothers_method(payer: Guardian, stripe_payment_method_id: str) -> None:
    """A guardian pays with a new card or one of their own saved methods,
    never with a method another guardian saved."""
    owner = (
        PaymentMethod.objects.filter(stripe_payment_method_id=stripe_payment_method_id)
        .values_list("guardian_id", flat=True)
        .first()
    )
    if owner is not None and owner != payer.pk:
        raise BillingError(
            _(
                "That payment method belongs to another guardian: only they can pay with it. "
                "Choose one of your own or enter a card."
            ),
            field="card",
        )


def payment_method_save(*, guardian: Guardian, stripe_payment_method_id: str) -> PaymentMethod:
    """Keep a card the guardian confirmed with Stripe (up to three each). Any
    guardian with a login may save methods; paying with them needs "may pay"."""
    existing = PaymentMethod.objects.filter(
        stripe_payment_method_id=stripe_payment_method_id
    ).first()
    if existing:
        if existing.guardian_id != guardian.pk:
            raise BillingError(_("That card belongs to someone else."))
        return existing
    if PaymentMethod.objects.filter(guardian=guardian).count() >= MAX_METHODS:
        raise BillingError(TOO_MANY_METHODS)
    method = gateway.payment_method_retrieve(stripe_payment_method_id)
    customer_id = stripe_customer_for(guardian)
    if getattr(method, "customer", None) != customer_id:
        gateway.payment_method_attach(stripe_payment_method_id, customer_id)
    card = getattr(method, "card", None)
    bank = getattr(method, "sepa_debit", None) if method.type == "sepa_debit" else None
    try:
        with transaction.atomic():
            locked = _guardian_locked(guardian)
            # Counted again under the lock: another request may have saved one meanwhile.
            twin = PaymentMethod.objects.filter(
                stripe_payment_method_id=stripe_payment_method_id
            ).first()
            if twin:
                if twin.guardian_id != guardian.pk:
                    raise BillingError(_("That card belongs to someone else."))
                return twin
            taken = set(
                PaymentMethod.objects.filter(guardian=locked).values_list("slot", flat=True)
            )
            free = [slot for slot in range(1, MAX_METHODS + 1) if slot not in taken]
            if not free:
                raise BillingError(TOO_MANY_METHODS)
            return PaymentMethod.objects.create(
                guardian=locked,
                stripe_payment_method_id=stripe_payment_method_id,
                kind=PaymentMethod.Kind.BANK if bank else PaymentMethod.Kind.CARD,
                brand="" if bank else getattr(card, "brand", "") or "",
                last4=getattr(bank or card, "last4", "") or "????",
                exp_month=getattr(card, "exp_month", None),
                exp_year=getattr(card, "exp_year", None),
                slot=free[0],
                is_primary=not taken,
                # Where the provider requires it, saved methods are authorised,
                # but only by a guardian who may pay.
                recurring_authorized=_provider().require_recurring_authorisation and locked.may_pay,
            )
    except IntegrityError as error:  # the constraints, should the lock ever be bypassed
        raise BillingError(METHODS_BUSY) from error


def bank_account_method(*, guardian: Guardian, iban: str, holder: str) -> str:
    """A SEPA Direct Debit payment method at Stripe for the parent's IBAN
    (checked by billing.forms first); Stripe's refusal is said by the field."""
    if not _provider().echecks_active:
        raise BillingError(_("Bank account payments are not offered here."))
    try:
        method = gateway.bank_account_create(
            iban=iban, holder=holder, email=guardian.user.email if guardian.user else ""
        )
    except gateway.GatewayUnavailable as error:
        raise BillingError(
            _("We could not reach the payment processor. Nothing was charged; try again."),
            field="iban",
        ) from error
    except stripe.StripeError as error:
        raise BillingError(
            _("Your bank account was refused: check the IBAN and try again."), field="iban"
        ) from error
    return method.id


def bank_account_add(
    *, guardian: Guardian, iban: str, holder: str, mandate: dict[str, Any]
) -> PaymentMethod:
    """Keep a bank account for later payments: the mandate the parent accepted
    is given to Stripe with a SetupIntent, then the account is saved. Any
    guardian with a login may keep one; paying with it needs "may pay"."""
    _require_online_methods()
    if PaymentMethod.objects.filter(guardian=guardian).count() >= MAX_METHODS:
        raise BillingError(
            _("You can keep up to three payment methods. Delete one first."), field="iban"
        )
    pm_id = bank_account_method(guardian=guardian, iban=iban, holder=holder)
    customer_id = stripe_customer_for(guardian)
    try:
        gateway.bank_account_setup(
            customer_id=customer_id,
            payment_method_id=pm_id,
            mandate=mandate,
            key=f"{current_schema()}-bank-setup-{pm_id}",
        )
    except gateway.GatewayUnavailable as error:
        raise BillingError(
            _("We could not reach the payment processor. Nothing was saved; try again."),
            field="iban",
        ) from error
    except stripe.StripeError as error:
        raise BillingError(
            _("Your bank account was refused: check the IBAN and try again."), field="iban"
        ) from error
    return payment_method_save(guardian=guardian, stripe_payment_method_id=pm_id)


def payment_method_update(
    *, method: PaymentMethod, actor: Guardian, is_primary: bool, recurring_authorized: bool
) -> PaymentMethod:
    """Set which of the guardian's methods is primary (there is always one)
    and whether this one may be charged for recurring billing (authorising
    needs "may pay"; withdrawing an authorisation does not)."""
    _own_method(method, actor)
    try:
        with transaction.atomic():
            locked = _guardian_locked(actor)
            fresh = PaymentMethod.objects.filter(pk=method.pk, guardian=locked).first()
            if fresh is None:
                raise BillingError(_("This payment method has been deleted."))
            if fresh.is_primary and not is_primary:
                raise BillingError(
                    _(
                        "One of your payment methods is always the primary one. To change it, "
                        "set another method as primary."
                    ),
                    field="is_primary",
                )
            if not _provider().require_recurring_authorisation:
                if recurring_authorized and not fresh.recurring_authorized and not locked.may_pay:
                    raise BillingError(
                        _ask_primary(
                            _(
                                "Only a guardian who may pay can authorise a payment method "
                                "for recurring billing."
                            ),
                            locked.family_id,
                        ),
                        field="recurring_authorized",
                    )
                fresh.recurring_authorized = recurring_authorized
            if is_primary and not fresh.is_primary:
                PaymentMethod.objects.filter(guardian=locked, is_primary=True).update(
                    is_primary=False
                )
                fresh.is_primary = True
            fresh.save(update_fields=["is_primary", "recurring_authorized"])
            return fresh
    except IntegrityError as error:  # the constraints, should the lock ever be bypassed
        raise BillingError(METHODS_BUSY) from error


def payment_method_delete(*, method: PaymentMethod, actor: Guardian) -> None:
    """Remove one of the guardian's own methods, at Stripe and here; when it
    was the primary one, the next becomes primary."""
    _own_method(method, actor)
    if _provider().require_recurring_authorisation:
        raise BillingError(
            _("Saved payment methods stay on file here; ask the office to remove one.")
        )
    gateway.payment_method_detach(method.stripe_payment_method_id)
    with transaction.atomic():
        locked = _guardian_locked(actor)
        gone = PaymentMethod.objects.filter(pk=method.pk, guardian=locked).first()
        if gone is None:
            return  # deleted already (a double click)
        gone.delete()
        if gone.is_primary:
            nxt = PaymentMethod.objects.filter(guardian=locked).order_by("slot").first()
            if nxt:
                nxt.is_primary = True
                nxt.save(update_fields=["is_primary"])


# --- Invoices and documents -------------------------------------------------------------------


def invoice_issue(*, order: Order) -> Invoice:
    """The order's invoice, numbered without gaps (the counter row is locked
    in the transaction that uses the number); issued once."""
    with transaction.atomic():
        order = _lock_order(order)
        existing = Invoice.objects.filter(order=order).first()
        if existing:
            return existing
        number = _next_number("invoice")
        snapshot = invoice_snapshot(order, issued_on=clock.today())
        return Invoice.objects.create(order=order, number=number, snapshot=snapshot)


def invoice_snapshot(order: Order, *, issued_on: date) -> dict[str, Any]:
    """What an invoice says, frozen when it is issued: the supplier as
    registered with its tax number, the customer and address, each line with
    its VAT rate, net, VAT per rate and gross (EU VAT Directive, Art. 226).
    Amounts are strings of Decimals; the PDF formats them."""
    provider = _provider()
    family = order.family
    primary = family.guardians.filter(is_primary=True).first()
    address = family.addresses.filter(guardian=primary).first() or family.addresses.first()
    items = list(order.lines.all())
    lines: list[dict[str, Any]] = [
        {
            "description": line.description,
            "quantity": line.quantity,
            "unit_price": str(line.unit_price),
            "amount": str(line.amount),
            "vat_rate": str(line.vat_rate),
        }
        for line in items
    ]
    return {
        "version": 2,
        "issued_on": issued_on.isoformat(),
        "supply_date": clock.local(order.created_at).date().isoformat(),
        "provider": {
            "name": provider.name,
            "legal_name": provider.legal_name or provider.name,
            "address": provider.legal_address,
            "tax_number": provider.tax_number,
            "email": provider.support_email,
            "phone": provider.support_phone,
        },
        "family": family.name,
        "bill_to": primary.full_name if primary else family.name,
        "address": str(address) if address else "",
        "order": order.number,
        "title": order.title,
        "due_date": order.due_date.isoformat() if order.due_date else "",
        "lines": lines,
        "currency": provider.currency,
        **order_tax(items).as_snapshot(),
    }


def document_request(
    *,
    family: Family,
    kind: str,
    actor_user: User | None,
    location: Location | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    invoice: Invoice | None = None,
    credit_note: CreditNote | None = None,
) -> Document:
    """Queue a PDF; the page shows its progress and then the download. A
    login asks for a limited number a minute (portal.limits.PDF): past it,
    LimitReached says when to ask again."""
    if actor_user is not None:
        limits.take(limits.PDF, actor_user.pk)
    document = Document.objects.create(
        family=family,
        kind=kind,
        location=location,
        date_from=date_from,
        date_to=date_to,
        invoice=invoice,
        credit_note=credit_note,
        requested_by=actor_user,
    )
    transaction.on_commit(lambda: dispatch("billing.tasks.render_document", document.pk))
    return document


def new_attempt_key() -> str:
    return uuid.uuid4().hex


# --- Findings for staff -----------------------------------------------------------------------


def finding_record(
    *,
    source: str,
    code: str,
    message: str,
    severity: str = Finding.Severity.PROBLEM,
    family: Family | None = None,
    order: Order | None = None,
    payment: Payment | None = None,
) -> Finding:
    """Tell staff what a check found (shown on the staff home and in the admin)."""
    if payment is not None and order is None:
        order = payment.order
    if order is not None and family is None:
        family = order.family
    return Finding.objects.create(
        source=source,
        code=code,
        message=message[:500],
        severity=severity,
        family=family,
        order=order,
        payment=payment,
    )
