"""Invoices (EU-valid, frozen body, status band, numbered without gaps from
many threads), the payments page's list of them, statements and ledgers by
location and period, and what a failed document tells a parent."""

from __future__ import annotations

import io
import re
import threading
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date
from django.db import connection, connections, transaction
from django.urls import reverse
from django_tenants.utils import tenant_context
from pypdf import PdfReader

from billing import pdf, selectors, services
from billing.models import CreditNote, Document, Invoice, NumberSequence, Order
from billing.tasks import document_source
from conftest import client_for, login
from enrollments.models import Location
from enrollments.tests.factories import FamilyFactory
from portal import clock
from portal.tenancy import current_provider
from providers.models import Provider

from .helpers import new_order, payer

NBSP = "\xa0"


def pdf_text(data: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return text.replace(NBSP, " ")


def rendered(document: Document) -> str:
    template, context, rows = document_source(document)
    return pdf_text(pdf.render(template, context, provider=current_provider(), rows=rows))


def medium(day) -> str:
    """28 Nov 2026, as Aqua Kids (English in Slovenia) writes a date."""
    return format_date(day, "medium", locale="en_SI")


def at(day, hour=10):
    return datetime.combine(day, time(hour), tzinfo=clock.provider_zone())


# --- Invoices ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_invoice_is_eu_valid_with_vat_per_rate(in_aquakids):
    """Aqua Kids charges VAT with prices including it: the demo's lesson is at its
    programme's 9,5 %, the registration at the provider's standard 22 %."""
    novak = Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 1")
    lesson_line = novak.lines.get()
    assert lesson_line.vat_rate == Decimal("9.50")  # copied from the programme
    family = novak.family
    order = services.order_create(
        family=family,
        title="Term and registration",
        lines=[
            {"kind": "enrollment", "description": "Lessons", "unit_price": Decimal("109.50"),
             "enrollment": lesson_line.enrollment},
            {"kind": "registration", "description": "Registration", "unit_price": Decimal("12.20")},
        ],
        discounts=False,  # the family's sibling discount is not what this is about
    )  # fmt: skip
    invoice = services.invoice_issue(order=order)
    s = invoice.snapshot
    assert s["provider"]["legal_name"] == "Aqua Kids, plavalna šola d.o.o."
    assert s["provider"]["tax_number"] == "SI12345678" and "Ljubljana" in s["provider"]["address"]
    assert s["bill_to"] and s["issued_on"] == clock.today().isoformat()
    assert [line["vat_rate"] for line in s["lines"]] == ["9.50", "22.00"]
    assert s["tax"] == [
        {"rate": "9.50", "net": "100.00", "vat": "9.50", "gross": "109.50"},
        {"rate": "22.00", "net": "10.00", "vat": "2.20", "gross": "12.20"},
    ]
    assert (s["net"], s["vat"], s["total"]) == ("110.00", "11.70", "121.70")
    text = rendered(Document(family=family, kind="invoice", invoice=invoice))
    for words in (
        f"Invoice {invoice.display_number}",
        "Aqua Kids, plavalna šola d.o.o.",
        "VAT no. SI12345678",
        "Net 110,00 €",
        "VAT 9,5% of 100,00 € 9,50 €",
        "VAT 22% of 10,00 € 2,20 €",
        "Total incl. VAT 121,70 €",
        "121,70 € due",  # the band
    ):
        assert words in text, words


@pytest.mark.django_db
def test_prices_without_vat_are_charged_with_it_added(in_aquakids):
    provider = Provider.objects.get(pk=connection.tenant.pk)
    provider.charges_vat, provider.prices_include_vat, provider.vat_rate = True, False, 20
    connection.set_tenant(provider)
    order = new_order(amount="50.00")
    assert selectors.order_with_status(order).status.total == Decimal("60.00")
    invoice = services.invoice_issue(order=order)
    assert (invoice.snapshot["net"], invoice.snapshot["vat"]) == ("50.00", "10.00")
    # Without VAT charged, nothing is added and the invoice says so.
    provider.charges_vat = False
    connection.set_tenant(provider)
    plain = new_order(amount="50.00")
    assert selectors.order_with_status(plain).status.total == Decimal("50.00")
    text = rendered(
        Document(family=plain.family, kind="invoice", invoice=services.invoice_issue(order=plain))
    )
    assert "No VAT is charged" in text and "Net" not in text


@pytest.mark.django_db
def test_the_band_says_where_the_order_stands_and_the_body_never_changes(in_aquakids):
    order = new_order(amount="150.00")
    Order.objects.filter(pk=order.pk).update(due_date=clock.today() + timedelta(days=5))
    invoice = services.invoice_issue(order=order)
    document = Document(family=order.family, kind="invoice", invoice=invoice)
    due = medium(clock.today() + timedelta(days=5))
    before = rendered(document)
    assert f"150,00 € due {due}" in before
    services.payment_record_offline(
        order=order, amount=Decimal("100"), method="bank", key="b1", actor_user=None
    )
    assert f"50,00 € due {due}" in rendered(document)
    with clock.moved_to(at(clock.today() + timedelta(days=2))):
        services.payment_record_offline(
            order=order, amount=Decimal("50"), method="bank", key="b2", actor_user=None
        )
        # The provider renames itself: an issued invoice keeps what it said.
        connection.tenant.legal_name = "Someone Else Ltd"
        after = rendered(document)
    paid_on = medium(clock.today() + timedelta(days=2))
    assert f"Paid {paid_on}" in after and "due" not in after.split("Bill to")[0]

    def body(text):
        lines = text.splitlines()
        return [
            line for line in lines if "due" not in line and not line.startswith(("Paid", "Made on"))
        ]

    assert body(before) == body(after) and "Someone Else" not in after


def test_invoice_numbers_from_many_threads_have_no_gap_and_no_repeat(committed, race_provider):
    """Invoices are numbered when their orders are made: orders made at once
    by many threads (one of them rolled back) take numbers without gap or
    repeat."""
    threads_count = 8
    with tenant_context(race_provider):
        family = FamilyFactory()
    barrier = threading.Barrier(threads_count + 1)
    outcomes: list[object] = []
    rolled_back: list[int] = []

    def make(n: int, fail: bool):
        try:
            with tenant_context(race_provider):
                barrier.wait()
                with transaction.atomic():
                    order = new_order(family=family, title=f"Numbered {n}")
                    number = Invoice.objects.get(order=order).number
                    if fail:  # a transaction that took a number and rolled back
                        rolled_back.append(order.pk)
                        raise RuntimeError("rolled back")
                outcomes.append(number)
        except RuntimeError:
            outcomes.append("rolled back")
        except Exception as error:  # noqa: BLE001  (shown in the assertion)
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=make, args=(n, n == 0)) for n in range(threads_count + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    numbers = [o for o in outcomes if isinstance(o, int)]
    assert len(numbers) == threads_count and outcomes.count("rolled back") == 1, outcomes
    assert len(set(numbers)) == threads_count  # no repeat
    with tenant_context(race_provider):
        every = sorted(Invoice.objects.values_list("number", flat=True))
        assert every == list(range(1, len(every) + 1))  # no gap, ever, in this provider
        assert NumberSequence.objects.get(name="invoice").last == every[-1]
        assert set(numbers) <= set(every)
        assert not Order.objects.filter(pk__in=rolled_back).exists()


# --- The payments page's invoices ------------------------------------------------------------


@pytest.mark.django_db
def test_the_payments_page_lists_invoices_and_each_downloads_under_its_number(
    aquakids, ana, django_capture_on_commit_callbacks
):
    connection.set_tenant(aquakids)
    invoices = list(Invoice.objects.filter(order__family__name="Novak").select_related("order"))
    assert len(invoices) == 4  # the demo issued one with each order
    page = ana.get("/billing/").content.decode().split('id="invoices"')[1].split("</section>")[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace(NBSP, " ")
    for invoice in invoices:
        assert invoice.display_number in text and f"#{invoice.order.number}" in text
    assert "Partly paid: 50,00 € of 150,00 €" in text and "Refunded: 20,00 €" in text
    # The refunded order's credit note is listed with the invoices, as money off.
    note = CreditNote.objects.get(order__family__name="Novak")
    assert f"{note.display_number} " in text and "-20,00 €" in text
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post(f"/billing/credit-notes/{note.pk}/pdf/")
    document = Document.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    download = ana.get(f"/billing/documents/{document.pk}/download/")
    assert f'filename="{note.display_number}.pdf"' in download["Content-Disposition"]
    names = set()
    for invoice in invoices[:2]:
        with django_capture_on_commit_callbacks(execute=True):
            response = ana.post(f"/billing/orders/{invoice.order_id}/invoice/")
        document = Document.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
        assert document.status == "done", document.error
        download = ana.get(f"/billing/documents/{document.pk}/download/")
        disposition = download["Content-Disposition"]
        assert f'filename="{invoice.display_number}.pdf"' in disposition, disposition
        assert invoice.display_number in pdf_text(b"".join(download.streaming_content))
        names.add(disposition)
    assert len(names) == 2


@pytest.mark.django_db
def test_the_invoice_list_is_not_shown_to_another_family(aquakids, ben):
    connection.set_tenant(aquakids)
    novak = Invoice.objects.filter(order__family__name="Novak").first()
    page = ben.get("/billing/").content.decode()
    assert novak.display_number not in page
    assert ben.post(f"/billing/orders/{novak.order_id}/invoice/").status_code == 404


# --- Statements and ledgers --------------------------------------------------------------------


@pytest.fixture
def ledger_family(aquakids):
    """A family with orders at both pools over two months, and its login."""
    connection.set_tenant(aquakids)
    tivoli = Location.objects.get(name="Tivoli Pool")
    kodeljevo = Location.objects.get(name="Kodeljevo Pool")
    family = FamilyFactory(name="Ledgerly")
    payer(family, email="ledger@example.com")
    day = clock.today()

    def order(days_ago, location, amount, title):
        with clock.moved_to(at(day - timedelta(days=days_ago))):
            return services.order_create(
                family=family,
                title=title,
                location=location,
                lines=[{"kind": "other", "description": title, "unit_price": Decimal(amount)}],
            )

    def pay(days_ago, order, amount):
        with clock.moved_to(at(day - timedelta(days=days_ago), 15)):
            services.payment_record_offline(
                order=order, amount=Decimal(amount), method="bank", key=title_key(order, days_ago),
                actor_user=None,
            )  # fmt: skip

    def title_key(order, days_ago):
        return f"{order.pk}-{days_ago}"

    x = order(60, tivoli, "100.00", "Spring lessons")
    pay(40, x, "30.00")
    order(20, kodeljevo, "80.00", "Kodeljevo lessons")
    z = order(10, tivoli, "50.00", "Swim camp")
    pay(9, z, "20.00")
    return family, tivoli, kodeljevo


@pytest.mark.django_db
def test_the_ledger_pdf_covers_its_location_and_period_with_the_right_figures(
    aquakids, ledger_family, django_capture_on_commit_callbacks
):
    family, tivoli, _kodeljevo = ledger_family
    Provider.objects.filter(pk=aquakids.pk).update(full_ledger_history=True)
    client = login(client_for("aquakids"), aquakids, "ledger@example.com")
    day = clock.today()
    start = day - timedelta(days=45)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/billing/documents/",
            {"kind": "ledger", "location": tivoli.pk, "date_from": start, "date_to": day},
        )
    document = Document.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    assert (document.status, document.location, document.date_from) == ("done", tivoli, start)
    download = client.get(f"/billing/documents/{document.pk}/download/")
    name = f"ledger-tivoli-pool-{start.isoformat()}-{day.isoformat()}.pdf"
    assert f'filename="{name}"' in download["Content-Disposition"]
    text = pdf_text(b"".join(download.streaming_content))
    lines = text.splitlines()
    assert f"from {medium(start)} to {medium(day)}" in text
    assert "at Tivoli Pool only" in text and "Kodeljevo" not in text
    # Brought forward: the 100 € order before the period; then -30, +50, -20.
    assert next(line for line in lines if "Balance brought forward" in line).endswith("100,00 €")
    movements = [line for line in lines if re.search(r": .* -?\d+,\d\d € -?\d+,\d\d €$", line)]
    assert [m.rsplit(" ", 4)[1:] for m in movements] == [
        ["-30,00", "€", "70,00", "€"],
        ["50,00", "€", "120,00", "€"],
        ["-20,00", "€", "100,00", "€"],
    ], movements
    assert f"Balance on {medium(day)} 100,00 €" in text
    page = client.get(f"/billing/documents/{document.pk}/").content.decode().replace(NBSP, " ")
    assert "Tivoli Pool" in page and f"{medium(start)} – {medium(day)}" in page


@pytest.mark.django_db
def test_a_start_after_the_end_is_refused_next_to_the_field(aquakids, ledger_family):
    Provider.objects.filter(pk=aquakids.pk).update(full_ledger_history=True)
    client = login(client_for("aquakids"), aquakids, "ledger@example.com")
    day = clock.today()
    late, early = day, day - timedelta(days=10)
    response = client.post(
        "/billing/documents/",
        {"kind": "ledger", "location": "", "date_from": late, "date_to": early},
    )
    assert response.status_code == 400
    page = response.content.decode()
    error = re.search(r'<ul class="field-errors" id="id_date_from_error">(.*?)</ul>', page, re.S)
    assert error and "must be on or before the end date" in error.group(1)
    assert (
        'aria-invalid="true"'
        in page.split('id="id_date_from"')[0][-400:] + page.split('id="id_date_from"')[1][:200]
    )
    assert f'value="{late.isoformat()}"' in page and f'value="{early.isoformat()}"' in page
    assert not Document.objects.filter(family=ledger_family[0]).exists()
    # A future end is refused too; a good period is accepted.
    future = client.post(
        "/billing/documents/",
        {"kind": "ledger", "date_from": early, "date_to": day + timedelta(days=3)},
    )
    assert future.status_code == 400 and "today at the latest" in future.content.decode()
    assert (
        client.post(
            "/billing/documents/", {"kind": "ledger", "date_from": early, "date_to": late}
        ).status_code
        == 302
    )


@pytest.mark.django_db
def test_statements_default_to_the_current_location_and_say_what_they_cover(
    aquakids, ledger_family, django_capture_on_commit_callbacks
):
    family, tivoli, kodeljevo = ledger_family
    client = login(client_for("aquakids"), aquakids, "ledger@example.com")
    page = client.get("/billing/").content.decode()
    assert '<option value="" selected>All locations</option>' in page
    client.post(reverse("enrollments:location_choose"), {"location": kodeljevo.pk, "next": "/"})
    page = client.get("/billing/").content.decode()
    assert f'<option value="{kodeljevo.pk}" selected>Kodeljevo Pool</option>' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/billing/documents/", {"kind": "statement", "location": kodeljevo.pk}
        )
    document = Document.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    text = pdf_text(document.file.read())
    assert "at Kodeljevo Pool only" in text and "Kodeljevo lessons" in text
    assert "Total outstanding 80,00 €" in text and "Spring lessons" not in text


@pytest.mark.django_db
def test_a_failed_document_tells_the_parent_to_try_again_and_staff_what_failed(aquakids, ana):
    connection.set_tenant(aquakids)
    family = Order.objects.filter(family__name="Novak").first().family
    failed = Document.objects.create(
        family=family, kind="statement", status="failed", error="OSError: /srv/media is full"
    )
    page = ana.get(f"/billing/documents/{failed.pk}/").content.decode()
    assert "could not be prepared" in page and "Try again" in page
    assert "OSError" not in page and "/srv/media" not in page
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    assert "OSError: /srv/media is full" in staff.get("/admin/billing/document/").content.decode()


@pytest.mark.django_db
def test_staff_set_the_invoice_details_and_only_later_invoices_carry_them(aquakids):
    from tests.htmlforms import form_data

    owner = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    connection.set_tenant(aquakids)
    earlier = services.invoice_issue(order=new_order(amount="10.00"))
    data = form_data(owner.get("/staff/settings/").content.decode(), "settings-form")
    assert {"legal_name", "legal_address", "tax_number", "charges_vat", "vat_rate"} <= set(data)
    data.update(tax_number="SI87654321", legal_name="Aqua Kids Two d.o.o.", vat_rate="150")
    refused = owner.post("/staff/settings/", data)
    assert refused.status_code == 200 and "less than or equal to 100" in refused.content.decode()
    data.update(vat_rate="22.00")
    assert owner.post("/staff/settings/", data).status_code == 302
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    later = services.invoice_issue(order=new_order(amount="10.00"))
    assert later.snapshot["provider"]["tax_number"] == "SI87654321"
    assert later.snapshot["provider"]["legal_name"] == "Aqua Kids Two d.o.o."
    earlier.refresh_from_db()
    assert earlier.snapshot["provider"]["tax_number"] == "SI12345678"
