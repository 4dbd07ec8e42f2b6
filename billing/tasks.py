from __future__ import annotations

import logging

from django.core.files.base import ContentFile

from portal import clock
from portal.celery import app
from portal.tenancy import current_provider
from providers.scheduling import when_ready

from . import invariants, selectors, services
from .models import Document, RefundRequest

log = logging.getLogger(__name__)


@app.task
@when_ready
def check_ledger() -> int:
    """Daily in every provider's schema (beat): the books' invariants; what
    does not hold becomes a Finding on the staff home."""
    problems = invariants.check_all()
    invariants.record(problems)
    return len(problems)


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
    return services.stripe_event_process(event_id=event_id)


@app.task
@when_ready
def reconcile_payments() -> dict:
    """Beat, in every provider's schema: settle from Stripe's answer what the
    webhooks did not (only where the provider's set-up is complete)."""
    from . import gateway

    if not gateway.configured():
        return {}
    return services.payments_reconcile()


# Refunds: made by staff here (booked from Stripe's answer) or in Stripe's dashboard.
REFUND_EVENTS = services.REFUND_EVENTS


@app.task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def send_refund_request(request_id: int) -> str:
    """Send a reserved card refund to Stripe (after the transaction that
    reserved it committed: no lock is held while Stripe answers)."""
    request = RefundRequest.objects.get(pk=request_id)
    return services.refund_request_send(request=request).status
