"""Money actions. Each runs in one transaction, locks the order (or payment)
it changes before checking amounts, and writes ledger entries in the same
transaction. Card payments never move backwards: a webhook delivered twice or
late finds the payment already final, and the ledger's unique constraint
books a payment once whatever happens."""

from __future__ import annotations

import uuid
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
from enrollments.models import Location
from families.models import Family, Guardian, Student
from portal import clock
from portal.exceptions import PortalError
from portal.money import format_money, to_decimal
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
    StripeEvent,
)

if TYPE_CHECKING:
    from providers.models import Provider


class BillingError(PortalError):
    pass


def _provider() -> Provider:
    return current_provider()


def order_outstanding(order: Order) -> Decimal:
    return LedgerEntry.objects.filter(order=order).aggregate(t=Sum("amount"))["t"] or ZERO


def _payment_in_progress(order: Order) -> bool:
    """A payment Stripe has not settled blocks another: processing until
    Stripe answers, requires_action until reconciliation cancels it."""
    return Payment.objects.filter(
        order=order, status__in=[Payment.Status.PROCESSING, Payment.Status.REQUIRES_ACTION]
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
        total = ZERO
        for line in lines:
            item = OrderLine.objects.create(order=order, **line)
            total += item.amount
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


def _book_payment(
    payment: Payment,
    *,
    order: Order | None = None,
    excess_to_credit: bool = False,
    source: str = Finding.Source.RECONCILIATION,
) -> None:
    """The ledger entry of a succeeded payment: once (unique per payment), for
    its whole amount. The caller holds the order's lock. With
    `excess_to_credit` (a card payment Stripe settled), what the order no
    longer owes (it was paid meanwhile by other means) leaves the order again
    as family credit, so its balance never goes below zero, and staff are told
    they can refund it instead."""
    order = order or payment.order
    owed = order_outstanding(order) if order is not None else payment.amount
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                family_id=payment.family_id,
                order=order,
                location=order.location if order else None,
                kind=LedgerEntry.Kind.PAYMENT,
                amount=-payment.amount,
                description=payment.get_method_display(),
                payment=payment,
            )
    except IntegrityError:
        return  # booked already
    extra = payment.amount - min(max(owed, ZERO), payment.amount)
    if order is None or extra <= 0 or not excess_to_credit:
        return
    provider = _provider()
    shown = format_money(extra, provider.currency, provider.locale)
    LedgerEntry.objects.create(
        family_id=payment.family_id,
        order=order,
        location=order.location,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=extra,
        description=_("Paid twice: %(amount)s kept as family credit") % {"amount": shown},
        reference=f"payment-{payment.pk}-to-credit",
    )
    benefit_services.credit_grant(
        family=order.family,
        amount=extra,
        source="adjustment",
        description=_("Paid twice: order #%(number)s") % {"number": order.number},
    )
    finding_record(
        source=source,
        code="overpaid",
        message=_(
            "Payment %(payment)s came in after order #%(number)s was paid: %(amount)s is now "
            "the family's credit. Refund the payment instead if the family prefers."
        )
        % {"payment": payment.pk, "number": order.number, "amount": shown},
        payment=payment,
    )


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
) -> Payment:
    """Charge what the order owes to a card. Safe to call twice (same attempt
    key: the same payment) and from two tabs (the order is locked; a payment
    in progress or a paid order stops the second one). Stripe's answer decides:
    a decline fails the payment, no answer leaves it processing (it blocks a
    second charge) until a webhook or reconciliation hears Stripe's answer."""
    _require_online(payer)
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
            method=Payment.Method.CARD,
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
    payment = Payment.objects.select_related("order", "payer__user").get(pk=payment_id)
    if not payment.payer or not payment.payer.user:
        return
    provider = _provider()
    queue_email(
        subject=_("Receipt: %(amount)s to %(provider)s")
        % {
            "amount": format_money(payment.amount, provider.currency, provider.locale),
            "provider": provider.name,
        },
        body=render_to_string(
            "billing/email/receipt.txt", {"payment": payment, "provider": provider}
        ),
        to=[payment.payer.user.email],
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


def payments_reconcile() -> dict[str, int]:
    """Card payments left unsettled and Stripe events never processed, settled
    from Stripe's answer (the beat task runs this for each provider)."""
    counts = {"payments": 0, "settled": 0, "events": 0, "unanswered": 0}
    cutoff = clock.now() - SETTLE_AFTER
    waiting = Payment.objects.filter(
        method=Payment.Method.CARD,
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
                _("You can refund up to %(left)s.") % {"left": payment.amount - refunded}
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
        family = order.family
        primary = family.guardians.filter(is_primary=True).first()
        address = family.addresses.filter(guardian=primary).first() or family.addresses.first()
        lines: list[dict[str, Any]] = [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "amount": str(line.amount),
            }
            for line in order.lines.all()
        ]
        snapshot = {
            "provider": {"name": _provider().name, "email": _provider().support_email},
            "family": family.name,
            "bill_to": primary.full_name if primary else family.name,
            "address": str(address) if address else "",
            "order": order.number,
            "title": order.title,
            "lines": lines,
            "total": str(sum((Decimal(x["amount"]) for x in lines), ZERO)),
            "currency": _provider().currency,
        }
        return Invoice.objects.create(order=order, number=sequence.last, snapshot=snapshot)


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
