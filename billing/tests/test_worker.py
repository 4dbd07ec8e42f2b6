"""End to end with real processes: the Stripe stand-in sends a signed webhook
to a live server, a real Celery worker records the payment; the worker renders
a statement PDF that only the family can download."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

import pytest
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from billing import services
from billing.models import Document, LedgerEntry, Payment, StripeEvent
from providers.models import Provider

from .helpers import authenticate_3ds, card, new_order, payer

pytestmark = pytest.mark.worker


def wait_for(check, *, worker, seconds=60):
    deadline = time.monotonic() + seconds
    while not check():
        assert worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_webhook_through_a_real_worker(committed, race_provider, portal_server, real_worker):
    Provider.objects.filter(pk=race_provider.pk).update(online_payments=True)
    race_provider.refresh_from_db()
    data = urllib.parse.urlencode(
        {
            "url": f"http://127.0.0.1:{portal_server.port}/stripe/webhook/",
            "secret": settings.STRIPE_WEBHOOK_SECRET,
        }
    ).encode()
    urllib.request.urlopen(f"{settings.STRIPE_API_BASE}/_config/webhooks/suite", data=data).close()
    with tenant_context(race_provider):
        order = new_order(amount="75.00")
        guardian = payer(order.family, email="worker@example.com")
        payment = services.payment_start(
            order=order,
            payer=guardian,
            stripe_payment_method_id=card("4000002500003155"),
            attempt_key="wk",
        )
        assert payment.status == "requires_action"
    authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret)

    def paid():
        with tenant_context(race_provider):
            processed = StripeEvent.objects.filter(
                object_id=payment.stripe_payment_intent_id,
                type="payment_intent.succeeded",
                processed_at__isnull=False,
            ).exists()
            return processed and Payment.objects.get(pk=payment.pk).status == "succeeded"

    wait_for(paid, worker=real_worker)
    with tenant_context(race_provider):
        # Stripe sends payment_intent.requires_action first (3-D Secure), then
        # payment_intent.succeeded: two events, one payment booked once.
        events = StripeEvent.objects.filter(object_id=payment.stripe_payment_intent_id)
        assert {e.type for e in events} == {
            "payment_intent.requires_action",
            "payment_intent.succeeded",
        }
        assert LedgerEntry.objects.filter(payment=payment).count() == 1
        assert services.order_outstanding(order) == 0


def test_statement_pdf_through_a_real_worker(committed, race_provider, real_worker):
    with tenant_context(race_provider):
        order = new_order(amount="12.34", title="Swim cap")
        guardian = payer(order.family, email="pdf@example.com")
        document = services.document_request(
            family=order.family, kind="statement", actor_user=guardian.user
        )

    def done():
        with tenant_context(race_provider):
            return Document.objects.get(pk=document.pk).status in ("done", "failed")

    wait_for(done, worker=real_worker)
    with tenant_context(race_provider):
        finished = Document.objects.get(pk=document.pk)
        assert finished.status == "done", finished.error
        assert finished.file.name.startswith("documents/")
        user = User.objects.get(email="pdf@example.com")
    client = Client(HTTP_HOST="race.localhost")
    with tenant_context(race_provider):
        client.force_login(user)
    response = client.get(f"/billing/documents/{document.pk}/download/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF") and len(body) > 1000
    # The file is stored under the provider's own folder.
    assert f"/{race_provider.schema_name}/documents/" in finished.file.path
