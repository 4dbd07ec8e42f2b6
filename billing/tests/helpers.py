from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from billing import gateway, services
from enrollments.tests.factories import FamilyFactory
from families.models import Guardian


def new_order(family=None, amount="100.00", title="Term fee"):
    family = family or FamilyFactory()
    return services.order_create(
        family=family,
        title=title,
        lines=[{"kind": "enrollment", "description": title, "unit_price": Decimal(amount)}],
    )


def payer(family, *, email: str, may_pay: bool = True, primary: bool = True) -> Guardian:
    from accounts.models import User

    user = User.objects.create_user(email, "long-enough-pass")
    return Guardian.objects.create(
        family=family,
        user=user,
        first_name="Pay",
        last_name="Er",
        is_primary=primary,
        can_pay=may_pay,
    )


def card(number: str = "4242424242424242") -> str:
    """A PaymentMethod at the Stripe stand-in, as Stripe.js would make it."""
    assert settings.STRIPE_API_BASE, "tests talk to the local Stripe stand-in"
    return (
        gateway.client()
        .v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
            }
        )
        .id
    )


def authenticate_3ds(payment_intent_id: str, client_secret: str, success: bool = True) -> None:
    """What Stripe.js does when the parent completes (or fails) 3-D Secure."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{settings.STRIPE_API_BASE}/v1/payment_intents/{payment_intent_id}/_authenticate"
        f"?success={'true' if success else 'false'}",
        data=json.dumps(
            {"key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": client_secret}
        ).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def saved_card(guardian: Guardian, number: str = "4242424242424242"):
    return services.payment_method_save(guardian=guardian, stripe_payment_method_id=card(number))


def stuck_payment(order, guardian: Guardian, *, number: str = "4242424242424242"):
    """A card payment whose PaymentIntent create got no answer: Stripe is
    unreachable just for that call (a saved card needs nothing else first).
    The payment stays processing, with its request and key stored."""
    method = saved_card(guardian, number)
    real = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    try:
        return services.payment_start(
            order=order,
            payer=guardian,
            stripe_payment_method_id=method.stripe_payment_method_id,
            attempt_key=f"stuck-{order.pk}",
        )
    finally:
        settings.STRIPE_API_BASE = real


def stand_in_intents(payment_id: int) -> list:
    """Every PaymentIntent the Stripe stand-in holds for one of our payments."""
    found = gateway.client().v1.payment_intents.list(params={"limit": 100})
    mine = {"payment": str(payment_id), "provider": _schema()}
    return [
        intent
        for intent in found.auto_paging_iter()
        if mine.items() <= (intent.to_dict().get("metadata") or {}).items()
    ]


def _schema() -> str:
    from portal.tenancy import current_schema

    return current_schema()
