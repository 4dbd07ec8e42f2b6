"""Stripe webhooks arrive on the bare host (one endpoint for the deployment)
and are routed to the provider named in the object's metadata. The signature
is checked first; the event is stored once (unique id) and handed to a Celery
task in that provider's schema, which re-reads the payment from Stripe."""

from __future__ import annotations

import json

import stripe
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_tenants.utils import tenant_context

from portal.tasks import dispatch
from providers.models import Provider

from . import gateway, services
from .tasks import REFUND_EVENTS, process_stripe_event

HANDLED = {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
           "payment_intent.requires_action", "payment_intent.canceled",
           *REFUND_EVENTS}  # fmt: skip


@csrf_exempt
@login_not_required
@require_POST
def stripe_webhook(request):
    try:
        gateway.construct_event(request.body, request.headers.get("Stripe-Signature", ""))
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponse("bad signature", status=400, content_type="text/plain")
    payload = json.loads(request.body)
    if payload.get("type") not in HANDLED:
        return HttpResponse("ignored", content_type="text/plain")
    obj = payload.get("data", {}).get("object", {})
    schema = (obj.get("metadata") or {}).get("provider")
    if not schema and payload.get("type") in REFUND_EVENTS:
        try:
            schema = refund_provider_schema(obj)
        except (gateway.GatewayUnavailable, stripe.StripeError):
            return HttpResponse("try again", status=503, content_type="text/plain")
    provider = Provider.objects.real().filter(schema_name=schema).first() if schema else None
    if provider is None:
        return HttpResponse("not ours", content_type="text/plain")
    with tenant_context(provider):
        event = services.stripe_event_store(
            event_id=payload["id"], type=payload["type"], object_id=obj.get("id", "")
        )
        if event is None:
            return HttpResponse("duplicate", content_type="text/plain")
        dispatch(process_stripe_event, event.pk)
    return HttpResponse("ok", content_type="text/plain")


def refund_provider_schema(obj: dict) -> str | None:
    """A refund made in Stripe's dashboard carries no metadata of ours: its
    provider is the one named by the payment it refunds (re-read from Stripe)."""
    intent = obj.get("payment_intent")
    if not intent and obj.get("object") == "refund" and obj.get("charge"):
        intent = gateway.charge_retrieve(obj["charge"]).to_dict().get("payment_intent")
    if not intent:
        return None
    metadata = gateway.payment_intent_retrieve(intent).to_dict().get("metadata") or {}
    return metadata.get("provider")
