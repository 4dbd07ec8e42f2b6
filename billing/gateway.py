"""The one place that talks to Stripe. Amounts cross here in minor units
(portal.money); everything else in the portal speaks Decimal."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from portal.money import from_minor_units, to_minor_units
from portal.tenancy import current_schema

log = logging.getLogger(__name__)


class GatewayUnavailable(Exception):
    """Stripe's answer did not arrive: a timeout, a connection error, a 5xx or
    a rate limit. Whether Stripe acted is unknown (never guessed from the
    error's text): a request with an idempotency key may be sent again with
    the same key, and Stripe answers it once."""


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    # No retries inside the library: _call retries what is safe to send again.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
    )


def js_url() -> str:
    """Stripe.js (the local stand-in serves its own at the same base)."""
    if settings.STRIPE_API_BASE:
        return settings.STRIPE_API_BASE.rstrip("/") + "/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def ambiguous(error: stripe.StripeError) -> bool:
    """No answer, or Stripe's own failure: it may have acted."""
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return (error.http_status or 0) >= 500


def _call(fn, *args, retries: int = 0, **kwargs):
    """One Stripe call. An ambiguous error is retried `retries` times (only
    for reads and requests carrying an idempotency key: the same request, the
    same key), then raised as GatewayUnavailable. A clear answer (a decline,
    an unknown id) is raised as Stripe's own error."""
    attempt = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as error:
            if not ambiguous(error):
                raise
            if attempt >= retries:
                raise GatewayUnavailable(str(error)) from error
        attempt += 1
        log.info("Stripe did not answer %s: sending it again (%s)", fn, attempt)
        time.sleep(RETRY_PAUSE * attempt)


RETRY_PAUSE = 0.25  # seconds, times the attempt


def _retries() -> int:
    return settings.STRIPE_RETRIES


def customer_create(*, email: str, name: str, guardian_id: int) -> str:
    customer = _call(
        client().v1.customers.create,
        params={
            "email": email,
            "name": name,
            "metadata": {"provider": current_schema(), "guardian": str(guardian_id)},
        },
        options={"idempotency_key": f"{current_schema()}-customer-{guardian_id}"},
        retries=_retries(),
    )
    return customer.id


def setup_intent_create(*, customer_id: str, key: str) -> stripe.SetupIntent:
    return _call(
        client().v1.setup_intents.create,
        params={"customer": customer_id, "payment_method_types": ["card"]},
        options={"idempotency_key": key},
        retries=_retries(),
    )


def setup_intent_retrieve(si_id: str) -> stripe.SetupIntent:
    return _call(client().v1.setup_intents.retrieve, si_id, retries=_retries())


def payment_method_retrieve(pm_id: str) -> stripe.PaymentMethod:
    return _call(client().v1.payment_methods.retrieve, pm_id, retries=_retries())


def payment_method_attach(pm_id: str, customer_id: str) -> None:
    """Raises stripe.InvalidRequestError for an id Stripe does not know."""
    _call(
        client().v1.payment_methods.attach,
        pm_id,
        params={"customer": customer_id},
        options={"idempotency_key": f"{current_schema()}-attach-{pm_id}-{customer_id}"},
        retries=_retries(),
    )


def payment_method_detach(pm_id: str) -> None:
    _call(client().v1.payment_methods.detach, pm_id)


def payment_intent_params(
    *,
    amount: Decimal,
    currency: str,
    customer_id: str,
    payment_method_id: str,
    payment_id: int,
    description: str,
    bank_mandate: dict[str, Any] | None = None,
    keep_bank_account: bool = False,
) -> dict[str, Any]:
    """What a payment asks of Stripe: stored with the payment, so that
    every later send of it (retry, reconciliation) is the same request. With
    `bank_mandate` (mandate_acceptance) it is a SEPA Direct Debit."""
    params = {
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
    }
    if bank_mandate is not None:
        params["payment_method_types"] = ["sepa_debit"]
        params["mandate_data"] = bank_mandate
        if keep_bank_account:
            params["setup_future_usage"] = "off_session"
    return params


def mandate_acceptance(*, ip_address: str, user_agent: str) -> dict[str, Any]:
    """The parent's acceptance of the SEPA Direct Debit mandate, online, now."""
    return {
        "customer_acceptance": {
            "type": "online",
            "online": {"ip_address": ip_address or "0.0.0.0", "user_agent": user_agent[:500]},
        }
    }


def bank_account_create(*, iban: str, holder: str, email: str) -> stripe.PaymentMethod:
    """A SEPA Direct Debit payment method for an IBAN (raises
    stripe.InvalidRequestError when Stripe refuses the account)."""
    return _call(
        client().v1.payment_methods.create,
        params={
            "type": "sepa_debit",
            "sepa_debit": {"iban": iban},
            "billing_details": {"name": holder, "email": email},
        },
    )


def bank_account_setup(
    *, customer_id: str, payment_method_id: str, mandate: dict[str, Any], key: str
) -> stripe.SetupIntent:
    """Keep a bank account for later payments: the mandate is accepted now."""
    return _call(
        client().v1.setup_intents.create,
        params={
            "customer": customer_id,
            "payment_method": payment_method_id,
            "payment_method_types": ["sepa_debit"],
            "confirm": True,
            "usage": "off_session",
            "mandate_data": mandate,
        },
        options={"idempotency_key": key},
        retries=_retries(),
    )


def payment_intent_create(*, params: dict[str, Any], idempotency_key: str) -> stripe.PaymentIntent:
    """Create and confirm. A declined card raises stripe.CardError, an unknown
    payment method stripe.InvalidRequestError; no answer after the retries
    raises GatewayUnavailable (the intent may exist: send it again later with
    the same key to learn Stripe's answer)."""
    return _call(
        client().v1.payment_intents.create,
        params=params,
        options={"idempotency_key": idempotency_key},
        retries=_retries(),
    )


def payment_intent_retrieve(pi_id: str) -> stripe.PaymentIntent:
    return _call(client().v1.payment_intents.retrieve, pi_id, retries=_retries())


def payment_intent_cancel(pi_id: str, *, idempotency_key: str) -> stripe.PaymentIntent:
    return _call(
        client().v1.payment_intents.cancel,
        pi_id,
        options={"idempotency_key": idempotency_key},
        retries=_retries(),
    )


@dataclass(frozen=True)
class IntentFacts:
    """What a PaymentIntent says about the money, in the portal's terms."""

    id: str
    status: str
    amount: Decimal
    currency: str  # upper case, as the provider's
    provider: str  # metadata.provider: the schema that made it
    payment: str  # metadata.payment: our payment's id
    failure_message: str
    failure_code: str


def intent_facts(intent: Any) -> IntentFacts:
    data = intent.to_dict() if hasattr(intent, "to_dict") else dict(intent)
    currency = str(data.get("currency") or "").upper()
    metadata = data.get("metadata") or {}
    error = data.get("last_payment_error") or {}
    amount = data.get("amount")
    return IntentFacts(
        id=str(data.get("id") or ""),
        status=str(data.get("status") or ""),
        amount=from_minor_units(int(amount), currency)
        if amount is not None and currency
        else Decimal("-1"),
        currency=currency,
        provider=str(metadata.get("provider") or ""),
        payment=str(metadata.get("payment") or ""),
        failure_message=str(error.get("message") or ""),
        failure_code=str(error.get("decline_code") or error.get("code") or ""),
    )


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
