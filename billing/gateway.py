"""The one place that talks to Stripe. Amounts cross here in minor units
(portal.money); everything else in the portal speaks Decimal."""

from __future__ import annotations

from decimal import Decimal

import stripe
from django.conf import settings

from portal.money import to_minor_units
from portal.tenancy import current_schema


class GatewayUnavailable(Exception):
    """Stripe could not be reached; nothing was charged by this call."""


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        max_network_retries=2,
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
    )


def js_url() -> str:
    """Stripe.js (the local stand-in serves its own at the same base)."""
    if settings.STRIPE_API_BASE:
        return settings.STRIPE_API_BASE.rstrip("/") + "/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise GatewayUnavailable(str(error)) from error


def customer_create(*, email: str, name: str, guardian_id: int) -> str:
    customer = _call(
        client().v1.customers.create,
        params={
            "email": email,
            "name": name,
            "metadata": {"provider": current_schema(), "guardian": str(guardian_id)},
        },
        options={"idempotency_key": f"{current_schema()}-customer-{guardian_id}"},
    )
    return customer.id


def setup_intent_create(*, customer_id: str) -> stripe.SetupIntent:
    return _call(
        client().v1.setup_intents.create,
        params={"customer": customer_id, "payment_method_types": ["card"]},
    )


def payment_method_retrieve(pm_id: str) -> stripe.PaymentMethod:
    return _call(client().v1.payment_methods.retrieve, pm_id)


def payment_method_attach(pm_id: str, customer_id: str) -> None:
    _call(client().v1.payment_methods.attach, pm_id, params={"customer": customer_id})


def payment_method_detach(pm_id: str) -> None:
    _call(client().v1.payment_methods.detach, pm_id)


def payment_intent_create(
    *,
    amount: Decimal,
    currency: str,
    customer_id: str,
    payment_method_id: str,
    payment_id: int,
    idempotency_key: str,
    description: str,
) -> stripe.PaymentIntent:
    """Create and confirm. A declined card raises stripe.CardError."""
    return _call(
        client().v1.payment_intents.create,
        params={
            "amount": to_minor_units(amount, currency),
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "confirm": True,
            "metadata": {
                "provider": current_schema(),
                "payment": str(payment_id),
                "description": description,
            },
        },
        options={"idempotency_key": idempotency_key},
    )


def payment_intent_retrieve(pi_id: str) -> stripe.PaymentIntent:
    return _call(client().v1.payment_intents.retrieve, pi_id)


def refund_create(
    *,
    payment_intent_id: str,
    amount: Decimal,
    currency: str,
    key: str,
    metadata: dict[str, str] | None = None,
) -> stripe.Refund:
    return _call(
        client().v1.refunds.create,
        params={
            "payment_intent": payment_intent_id,
            "amount": to_minor_units(amount, currency),
            "metadata": {"provider": current_schema(), **(metadata or {})},
        },
        options={"idempotency_key": key},
    )


def refund_retrieve(refund_id: str) -> stripe.Refund:
    return _call(client().v1.refunds.retrieve, refund_id)


def refunds_list(*, payment_intent_id: str | None = None, charge_id: str | None = None) -> list:
    """The refunds of one payment (by its intent or its charge), newest first."""
    params = {"payment_intent": payment_intent_id} if payment_intent_id else {"charge": charge_id}
    return list(_call(client().v1.refunds.list, params={**params, "limit": 100}).data)


def charge_retrieve(charge_id: str) -> stripe.Charge:
    return _call(client().v1.charges.retrieve, charge_id)


def construct_event(payload: bytes, signature: str) -> stripe.Event:
    return stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
