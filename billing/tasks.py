from __future__ import annotations

import logging

from django.core.files.base import ContentFile

from portal import clock
from portal.celery import app
from portal.tenancy import current_provider

from . import selectors, services
from .models import Document, Payment, RefundRequest, StripeEvent

log = logging.getLogger(__name__)


@app.task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def render_document(document_id: int) -> str:
    """Render a statement, ledger report or invoice. If the worker dies, the
    task is delivered again; the file is attached only once it is complete."""
    from . import pdf

    document = Document.objects.select_related("family", "location", "invoice", "credit_note").get(
        pk=document_id
    )
    if document.status == Document.Status.DONE:
        return "done already"
    Document.objects.filter(pk=document_id).update(status=Document.Status.RUNNING)
    provider = current_provider()
    try:
        template, context, rows = document_source(document)
        data = pdf.render(template, context, provider=provider, rows=rows)
        document.file.save(f"{document.kind}-{document.pk}.pdf", ContentFile(data), save=False)
        document.status = Document.Status.DONE
        document.error = ""
    except Exception as error:  # for staff (the admin); parents see that it failed
        log.exception("document %s failed", document_id)
        document.status = Document.Status.FAILED
        document.error = f"{type(error).__name__}: {error}"[:300]
    document.finished_at = clock.now()
    document.save(update_fields=["file", "status", "error", "finished_at"])
    return document.status


def document_source(document: Document):
    """The template, its context and which of its lists holds the rows."""
    if document.kind == Document.Kind.INVOICE:
        invoice = document.invoice
        if invoice is None:
            raise ValueError("an invoice document needs its invoice")
        # The band: where the order stands now (the body is the frozen snapshot).
        status = selectors.order_with_status(invoice.order).status
        return "billing/pdf/invoice.html", {"invoice": invoice, "status": status}, None
    if document.kind == Document.Kind.CREDIT_NOTE:
        return "billing/pdf/credit_note.html", {"note": document.credit_note}, None
    if document.kind == Document.Kind.STATEMENT:
        orders = selectors.statement_lines(document.family, location=document.location)
        return (
            "billing/pdf/statement.html",
            {
                "document": document,
                "orders": orders,
                "total": sum((o.owed for o in orders), 0),
            },
            "orders",
        )
    if document.date_from is None or document.date_to is None:
        raise ValueError("a ledger report needs its date range")
    before, rows, after = selectors.ledger_lines(
        document.family,
        date_from=document.date_from,
        date_to=document.date_to,
        location=document.location,
    )
    return (
        "billing/pdf/ledger.html",
        {
            "document": document,
            "before": before,
            "rows": rows,
            "after": after,
        },
        "rows",
    )


@app.task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def process_stripe_event(event_id: int) -> str:
    """Act on a stored webhook event: re-read the payment from Stripe."""
    event = StripeEvent.objects.get(pk=event_id)
    if event.processed_at:
        return "processed already"
    if event.type in REFUND_EVENTS:
        return process_refund_event(event)
    payment = Payment.objects.filter(stripe_payment_intent_id=event.object_id).first()
    if payment is None and event.object_id:
        # A payment whose create call timed out: find it by our own id in metadata.
        from . import gateway

        intent = gateway.payment_intent_retrieve(event.object_id)
        metadata = intent.to_dict().get("metadata") or {}
        ours = str(metadata.get("payment", ""))
        payment = (
            Payment.objects.filter(pk=ours, stripe_payment_intent_id__isnull=True).first()
            if str(ours).isdigit()
            else None
        )
        if payment is not None:
            Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id=event.object_id)
            payment.refresh_from_db()
    if payment is not None:
        services.payment_sync(payment=payment)
    StripeEvent.objects.filter(pk=event_id).update(processed_at=clock.now())
    return payment.status if payment else "no payment"


# Refunds: made by staff here (booked from Stripe's answer) or in Stripe's dashboard.
REFUND_EVENTS = {"charge.refunded", "refund.created", "refund.updated"}


def process_refund_event(event: StripeEvent) -> str:
    """Re-read the refund (or the charge's refunds) from Stripe and book what
    is new; booking is once per Stripe refund id, so a repeat changes nothing."""
    from . import gateway

    if event.object_id.startswith("ch_"):
        refunds = gateway.refunds_list(charge_id=event.object_id)
    else:
        refunds = [gateway.refund_retrieve(event.object_id)]
    booked = [services.refund_from_stripe(stripe_refund=refund) for refund in refunds]
    StripeEvent.objects.filter(pk=event.pk).update(processed_at=clock.now())
    return f"{sum(1 for b in booked if b)} refund(s)"


@app.task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def send_refund_request(request_id: int) -> str:
    """Send a reserved card refund to Stripe (after the transaction that
    reserved it committed: no lock is held while Stripe answers)."""
    request = RefundRequest.objects.get(pk=request_id)
    return services.refund_request_send(request=request).status
