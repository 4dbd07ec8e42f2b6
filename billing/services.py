"""Money actions. Each runs in one transaction, locks the order (or payment)
it changes before checking amounts, and writes ledger entries in the same
transaction. Card payments never move backwards: a webhook delivered twice or
late finds the payment already final, and the ledger's unique constraint
books a payment once whatever happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from accounts.models import User
from benefits import services as benefit_services
from benefits.selectors import family_credit_balance
from enrollments.models import Enrollment, Location
from families.models import Family, Guardian, Student
from portal import clock, formatting
from portal.exceptions import PortalError
from portal.money import to_decimal
from portal.tasks import dispatch, queue_email
from portal.tenancy import current_provider, current_schema, provider_language

from . import gateway
from .models import (
    ZERO,
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
    StripeCustomer,
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


def _payment_in_progress(order: Order) -> bool:
    return Payment.objects.filter(
        order=order,
        status__in=[Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION],
        created_at__gte=clock.now() - timedelta(minutes=30),
    ).exists()


def _lock_order(order: Order) -> Order:
    return Order.objects.select_for_update(of=("self",)).select_related("family").get(pk=order.pk)


# --- Orders and the ledger ------------------------------------------------------------------


def order_create(
    *,
    family: Family,
    title: str,
    lines: list[dict[str, Any]],  # OrderLine fields
    student: Student | None = None,
    location: Location | None = None,
    due_date: date | None = None,
    actor_user: User | None = None,
) -> Order:
    """An order and the charge that makes the family owe its total."""
    if not lines:
        raise BillingError(_("An order needs at least one line."))
    with transaction.atomic():
        order = Order.objects.create(
            family=family, title=title, student=student, location=location, due_date=due_date
        )
        items = [
            OrderLine.objects.create(order=order, **{"vat_rate": line_vat_rate(line), **line})
            for line in lines
        ]
        # Prices without VAT: the family owes them with the VAT added.
        total = order_tax(items).gross
        LedgerEntry.objects.create(
            family=family,
            order=order,
            location=location,
            kind=LedgerEntry.Kind.CHARGE,
            amount=to_decimal(total),
            description=title,
            actor=actor_user,
        )
    return order


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


def adjustment_create(
    *,
    family: Family,
    amount: Decimal,
    reason: str,
    actor_user: User | None,
    order: Order | None = None,
) -> LedgerEntry:
    """A correction, with its reason; entries are never edited."""
    if not reason:
        raise BillingError(_("Say why the adjustment is made."))
    return LedgerEntry.objects.create(
        family=family,
        order=order,
        location=order.location if order else None,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=to_decimal(amount),
        description=reason,
        actor=actor_user,
    )


def credit_apply(*, order: Order, actor: Guardian) -> Decimal:
    """Pay what the order still owes from the family's credit, as far as it goes."""
    if not actor.may_pay:
        raise BillingError(_("You may not pay for this family."))
    with transaction.atomic():
        order = _lock_order(order)
        if order.cancelled_at:
            raise BillingError(_("This order is cancelled."))
        if _payment_in_progress(order):
            raise BillingError(_("A card payment for this order is in progress; wait for it."))
        owed = order_outstanding(order)
        amount = min(owed, family_credit_balance(order.family))
        if amount <= 0:
            raise BillingError(
                _("Nothing to apply: no credit left, or nothing owed on this order.")
            )
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


def _book_payment(payment: Payment) -> None:
    """The ledger entry of a succeeded payment (once: unique per payment)."""
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                family_id=payment.family_id,
                order=payment.order,
                location=payment.order.location if payment.order else None,
                kind=LedgerEntry.Kind.PAYMENT,
                amount=-payment.amount,
                description=payment.get_method_display(),
                payment=payment,
            )
    except IntegrityError:
        pass  # booked already


def payment_record_offline(
    *, order: Order, amount: Decimal | None, method: str, key: str, actor_user: User | None
) -> Payment:
    """Staff record money received at the desk or by bank transfer. `key`
    comes from the form, so a double submit records once. Without an amount:
    what the order owes, worked out under the order lock."""
    key = f"offline:{key}"
    with transaction.atomic():
        order = _lock_order(order)
        existing = Payment.objects.filter(idempotency_key=key, order=order).first()
        if existing:
            return existing
        if amount is None:
            amount = order_outstanding(order)
            if amount <= 0:
                raise BillingError(_("Nothing is owed on this order."))
        amount = to_decimal(amount)
        if amount <= 0:
            raise BillingError(_("Enter an amount above zero."))
        payment = Payment.objects.create(
            family=order.family,
            order=order,
            amount=amount,
            method=method,
            status=Payment.Status.SUCCEEDED,
            succeeded_at=clock.now(),
            idempotency_key=key,
        )
        _book_payment(payment)
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


def _require_online(payer: Guardian) -> None:
    if not (_provider().online_payments and gateway.configured()):
        raise BillingError(_("Online payment is not available here. See the payment instructions."))
    if not payer.may_pay:
        raise BillingError(_("You may not pay for this family. Ask the primary guardian."))


def payment_start(
    *,
    order: Order,
    payer: Guardian,
    stripe_payment_method_id: str,
    attempt_key: str,
    save_method: bool = False,
) -> Payment:
    """Charge what the order owes to a card. Safe to call twice (same attempt
    key: the same payment) and from two tabs (the order is locked; a payment
    in progress or a paid order stops the second one)."""
    _require_online(payer)
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
            method=Payment.Method.CARD,
            idempotency_key=attempt_key,
        )
    # Outside the order lock: the network call. The payment row exists first,
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
        intent = gateway.payment_intent_create(
            amount=payment.amount,
            currency=_provider().currency,
            customer_id=customer_id,
            payment_method_id=stripe_payment_method_id,
            payment_id=payment.pk,
            idempotency_key=f"{current_schema()}-payment-{payment.idempotency_key}",
            description=f"{_provider().name} #{order.number}",
        )
    except stripe.CardError as error:
        _payment_fail(
            payment, error.user_message or str(error), getattr(error, "payment_intent", None)
        )
        return Payment.objects.get(pk=payment.pk)
    except gateway.GatewayUnavailable as error:
        if "timed out" in str(error).lower() or "timeout" in str(error).lower():
            # The request may have reached Stripe: leave the payment processing
            # (it blocks a second charge) until a webhook or a sync tells.
            Payment.objects.filter(pk=payment.pk).update(
                failure_message=_("Waiting for the card processor to confirm. Do not pay again.")
            )
        else:
            _payment_fail(
                payment,
                _("We could not reach the card processor. Nothing was charged; try again."),
                None,
            )
        return Payment.objects.get(pk=payment.pk)
    Payment.objects.filter(pk=payment.pk).update(
        stripe_payment_intent_id=intent.id, client_secret=intent.client_secret or ""
    )
    if save_method:
        payment_method_save(guardian=payer, stripe_payment_method_id=stripe_payment_method_id)
    return payment_apply_intent(payment_id=payment.pk, intent=intent)


def _payment_fail(payment: Payment, message: str, intent: stripe.PaymentIntent | None) -> None:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.is_final:
            return
        locked.status = Payment.Status.FAILED
        locked.failure_message = message[:300]
        if (
            intent is not None
            and getattr(intent, "id", None)
            and not locked.stripe_payment_intent_id
        ):
            locked.stripe_payment_intent_id = intent.id
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
ORDER: list[str] = [Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION]


def payment_apply_intent(*, payment_id: int, intent: stripe.PaymentIntent) -> Payment:
    """Move the payment forward to what Stripe says; never backwards."""
    new = STATUS_FROM_STRIPE.get(intent.status, Payment.Status.PROCESSING)
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("order")
            .get(pk=payment_id)
        )
        if payment.is_final:
            return payment
        if (
            new in ORDER
            and payment.status in ORDER
            and ORDER.index(new) < ORDER.index(payment.status)
        ):
            return payment
        payment.status = new
        if new == Payment.Status.SUCCEEDED:
            payment.succeeded_at = clock.now()
        if new == Payment.Status.FAILED:
            error = getattr(intent, "last_payment_error", None)
            payment.failure_message = (
                getattr(error, "message", None) or _("The payment did not go through.")
            )[:300]
        payment.save()
        if new == Payment.Status.SUCCEEDED:
            _book_payment(payment)
            transaction.on_commit(lambda: _send_receipt(payment.pk))
    return payment


def payment_sync(*, payment: Payment) -> Payment:
    """Re-read the payment's state from Stripe (webhooks are only a trigger)."""
    if not payment.stripe_payment_intent_id or payment.is_final:
        return payment
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    return payment_apply_intent(payment_id=payment.pk, intent=intent)


@provider_language()
def _send_receipt(payment_id: int) -> None:
    payment = Payment.objects.select_related("order", "payer__user").get(pk=payment_id)
    if not payment.payer or not payment.payer.user:
        return
    provider = _provider()
    queue_email(
        subject=_("Receipt: %(amount)s to %(provider)s")
        % {
            "amount": formatting.money(payment.amount),
            "provider": provider.name,
        },
        body=render_to_string(
            "billing/email/receipt.txt", {"payment": payment, "provider": provider}
        ),
        to=[payment.payer.user.email],
    )


def refund_create(
    *, payment: Payment, amount: Decimal, reason: str, actor_user: User | None
) -> Refund:
    """Give money back (through Stripe for card payments) and book it."""
    amount = to_decimal(amount)
    if not reason:
        raise BillingError(_("Say why the refund is made."))
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != Payment.Status.SUCCEEDED:
            raise BillingError(_("Only a completed payment can be refunded."))
        refunded = payment.refunds.aggregate(t=Sum("amount"))["t"] or ZERO
        if amount <= 0 or amount > payment.amount - refunded:
            raise BillingError(
                _("You can refund up to %(left)s.")
                % {"left": formatting.money(payment.amount - refunded)}
            )
        n = payment.refunds.count() + 1
        stripe_id = None
        if payment.method == Payment.Method.CARD and payment.stripe_payment_intent_id:
            result = gateway.refund_create(
                payment_intent_id=payment.stripe_payment_intent_id,
                amount=amount,
                currency=_provider().currency,
                key=f"{current_schema()}-refund-{payment.pk}-{n}",
            )
            stripe_id = result.id
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason=reason,
            stripe_refund_id=stripe_id,
            actor=actor_user,
        )
        LedgerEntry.objects.create(
            family_id=payment.family_id,
            order_id=payment.order_id,
            location=payment.order.location if payment.order else None,
            kind=LedgerEntry.Kind.REFUND,
            amount=amount,
            description=reason,
            refund=refund,
            actor=actor_user,
        )
    return refund


# --- Saved payment methods --------------------------------------------------------------------

MAX_METHODS = 3


def payment_method_save(*, guardian: Guardian, stripe_payment_method_id: str) -> PaymentMethod:
    """Keep a card the guardian confirmed with Stripe (up to three each)."""
    existing = PaymentMethod.objects.filter(
        stripe_payment_method_id=stripe_payment_method_id
    ).first()
    if existing:
        if existing.guardian_id != guardian.pk:
            raise BillingError(_("That card belongs to someone else."))
        return existing
    if PaymentMethod.objects.filter(guardian=guardian).count() >= MAX_METHODS:
        raise BillingError(_("You can keep up to three payment methods. Delete one first."))
    method = gateway.payment_method_retrieve(stripe_payment_method_id)
    customer_id = stripe_customer_for(guardian)
    if getattr(method, "customer", None) != customer_id:
        gateway.payment_method_attach(stripe_payment_method_id, customer_id)
    card = getattr(method, "card", None)
    with transaction.atomic():
        first = not PaymentMethod.objects.filter(guardian=guardian).exists()
        return PaymentMethod.objects.create(
            guardian=guardian,
            stripe_payment_method_id=stripe_payment_method_id,
            kind=PaymentMethod.Kind.CARD,
            brand=getattr(card, "brand", "") or "",
            last4=getattr(card, "last4", "") or "????",
            exp_month=getattr(card, "exp_month", None),
            exp_year=getattr(card, "exp_year", None),
            is_primary=first,
            recurring_authorized=_provider().require_recurring_authorisation,
        )


def payment_method_update(
    *, method: PaymentMethod, is_primary: bool, recurring_authorized: bool
) -> None:
    with transaction.atomic():
        if is_primary and not method.is_primary:
            PaymentMethod.objects.filter(guardian=method.guardian, is_primary=True).update(
                is_primary=False
            )
        method.is_primary = is_primary
        if not _provider().require_recurring_authorisation:
            method.recurring_authorized = recurring_authorized
        method.save()


def payment_method_delete(*, method: PaymentMethod) -> None:
    if _provider().require_recurring_authorisation:
        raise BillingError(
            _("Saved payment methods stay on file here; ask the office to remove one.")
        )
    gateway.payment_method_detach(method.stripe_payment_method_id)
    with transaction.atomic():
        was_primary = method.is_primary
        guardian = method.guardian
        method.delete()
        if was_primary:
            nxt = PaymentMethod.objects.filter(guardian=guardian).first()
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
        sequence, _created = NumberSequence.objects.select_for_update().get_or_create(
            name="invoice"
        )
        sequence = NumberSequence.objects.select_for_update().get(pk=sequence.pk)
        sequence.last += 1
        sequence.save(update_fields=["last"])
        snapshot = invoice_snapshot(order, issued_on=clock.today())
        return Invoice.objects.create(order=order, number=sequence.last, snapshot=snapshot)


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
) -> Document:
    """Queue a PDF; the page shows its progress and then the download."""
    document = Document.objects.create(
        family=family,
        kind=kind,
        location=location,
        date_from=date_from,
        date_to=date_to,
        invoice=invoice,
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
