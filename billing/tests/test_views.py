from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Document, Order, PaymentMethod
from conftest import client_for, login
from families.models import Guardian
from providers.models import Provider

from .helpers import card

pytestmark = pytest.mark.django_db


def novak_order(aquakids, title):
    connection.set_tenant(aquakids)
    return Order.objects.get(family__name="Novak", title=title)


def test_dashboard_payments_unpaid_first_and_orders_summary(ana):
    html = ana.get("/").content.decode()
    payments = html.split('id="payments"')[1].split("</section>")[0]
    assert payments.index("Autumn term: Swim Level 1") < payments.index("Recently paid")
    assert "Partly paid: 50,00\xa0€ of 150,00\xa0€" in payments and "Unpaid: 180,00" in payments
    assert "Refunded: 20,00" in payments  # recently settled: paid and refunded orders
    assert 'target="_top"' in payments  # paying opens top-level, also from the iframe
    orders = html.split('id="orders"')[1].split("</section>")[0]
    assert "2 unpaid" in orders and "2 paid" in orders
    # The sticky quick menu jumps to every section.
    for key in ("payments", "upcoming", "bookings", "benefits", "orders"):
        assert f'href="#{key}"' in html


def test_overview_figures_link_to_their_entries(ana):
    html = ana.get("/billing/").content.decode()
    assert 'href="#why-owed"' in html and "Why you owe this" in html
    assert "#00002" in html or "Autumn term" in html
    for tab in ("all", "charges", "payments", "refunds"):
        fragment = ana.get(
            f"/billing/?tab={tab}&part=history", HTTP_HX_REQUEST="true"
        ).content.decode()
        assert fragment.lstrip().startswith('<section class="section" id="history"'), tab
    charges = ana.get("/billing/?tab=charges").content.decode().split('id="history"')[1]
    assert "Charge:" in charges and "Payment:" not in charges
    payments = ana.get("/billing/?tab=payments").content.decode().split('id="history"')[1]
    assert "Payment:" in payments and "Charge:" not in payments


def test_order_page_and_apply_credit(aquakids, ana):
    order = novak_order(aquakids, "Autumn term: Swim Level 2")
    html = ana.get(f"/billing/orders/{order.pk}/").content.decode()
    assert "Still to pay" in html and "Apply credit" in html and "Download invoice" in html
    page = ana.get(f"/billing/orders/{order.pk}/apply-credit/").content.decode()
    key = re.search(r'name="key" value="([0-9a-f]+)"', page).group(1)
    ana.post(f"/billing/orders/{order.pk}/apply-credit/", {"order": order.pk, "key": key})
    html = ana.get(f"/billing/orders/{order.pk}/").content.decode()
    assert "Credit applied" in html and "Partly paid" in html


def test_secondary_without_permission_sees_no_pay_and_is_refused(aquakids):
    sam = login(client_for("aquakids"), aquakids, "sam@aquakids.test")
    order = novak_order(aquakids, "Autumn term: Swim Level 2")
    assert f"billing/orders/{order.pk}/pay/" not in sam.get("/").content.decode()
    assert sam.get(f"/billing/orders/{order.pk}/pay/").status_code == 403
    assert (
        sam.post(f"/billing/orders/{order.pk}/pay/", {"stripe_payment_method": "pm_x"}).status_code
        == 403
    )
    assert sam.post(f"/billing/orders/{order.pk}/apply-credit/").status_code == 403


def test_no_online_payments_gives_instructions(leaps, cara):
    connection.set_tenant(leaps)
    order = Order.objects.get(family__name="Lindqvist", title__startswith="Spring")
    html = cara.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    assert "Online payment is not available here." in html and "sort code 20-00-00" in html
    assert "This provider does not take payments online" in cara.get("/billing/").content.decode()


def test_card_payment_through_the_page(aquakids, ana):
    order = novak_order(aquakids, "Autumn term: Swim Level 2")
    page = ana.get(f"/billing/orders/{order.pk}/pay/").content.decode()
    # No SetupIntent for a page view: the card form asks for one when submitted.
    assert "js.stripe.com/v3/" in page and "data-setup-url" in page and "seti_" not in page
    attempt = re.search(r'name="attempt" value="(\w+)"', page).group(1)
    response = ana.post(
        f"/billing/orders/{order.pk}/pay/",
        {
            "attempt": attempt,
            "payment_method": "new",
            "stripe_payment_method": card(),
            "save": "on",
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.json()["status"] == "succeeded"
    status = ana.get(response.json()["url"]).content.decode()
    assert "Paid, thank you" in status
    assert PaymentMethod.objects.filter(guardian__user__email="ana@aquakids.test").count() == 1
    # The same attempt posted again (a double click) is the same payment.
    again = ana.post(
        f"/billing/orders/{order.pk}/pay/",
        {"attempt": attempt, "payment_method": "new", "stripe_payment_method": card()},
        HTTP_ACCEPT="application/json",
    )
    assert again.json()["id"] == response.json()["id"]


def test_saved_methods_edit_delete_and_the_recurring_rule(aquakids, ana):
    from billing import services

    connection.set_tenant(aquakids)
    ana_g = Guardian.objects.get(user__email="ana@aquakids.test")
    first = services.payment_method_save(guardian=ana_g, stripe_payment_method_id=card())
    second = services.payment_method_save(
        guardian=ana_g, stripe_payment_method_id=card("5555555555554444")
    )
    assert first.is_primary and not second.is_primary
    ana.post(f"/billing/methods/{second.pk}/", {"is_primary": "on", "recurring_authorized": "on"})
    first.refresh_from_db(), second.refresh_from_db()
    assert second.is_primary and second.recurring_authorized and not first.is_primary
    html = ana.get("/billing/").content.decode()
    assert f"/billing/methods/{first.pk}/delete/" in html and "•••• 4444" in html
    Provider.objects.filter(pk=aquakids.pk).update(require_recurring_authorisation=True)
    html = ana.get("/billing/").content.decode()
    assert f"/billing/methods/{first.pk}/delete/" not in html
    assert ana.post(f"/billing/methods/{first.pk}/delete/").status_code == 404
    assert (
        'name="recurring_authorized"'
        not in ana.get(f"/billing/methods/{first.pk}/").content.decode()
    )
    Provider.objects.filter(pk=aquakids.pk).update(require_recurring_authorisation=False)
    # Deleting asks first, and says what it changes; asking deletes nothing.
    confirm = ana.get(f"/billing/methods/{second.pk}/delete/").content.decode()
    assert re.search(r"<h1[^>]*>Delete \w+ •••• 4444\?</h1>", confirm)
    assert "primary method" in confirm
    assert "recurring billing" in confirm and 'method="post"' in confirm
    assert PaymentMethod.objects.filter(pk=second.pk).exists()
    ben = login(client_for("aquakids"), aquakids, "ben@aquakids.test")
    assert ben.get(f"/billing/methods/{second.pk}/delete/").status_code == 404
    ana.post(f"/billing/methods/{second.pk}/delete/")
    assert list(PaymentMethod.objects.filter(guardian=ana_g)) == [first]
    first.refresh_from_db()
    assert first.is_primary


def test_documents_are_queued_and_invoices_can_be_switched_off(
    aquakids, ana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post("/billing/documents/", {"kind": "ledger"})
    document = Document.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    assert document.status == "done" and document.date_from and document.date_to
    assert (document.date_to - document.date_from).days == 30  # no full ledger history here
    order = novak_order(aquakids, "Autumn term: Swim Level 2")
    Provider.objects.filter(pk=aquakids.pk).update(invoices_enabled=False)
    assert "Download invoice" not in ana.get(f"/billing/orders/{order.pk}/").content.decode()
    assert ana.post(f"/billing/orders/{order.pk}/invoice/").status_code == 404


def test_billing_pages_queries_do_not_grow(aquakids, ana):
    from billing.tests.helpers import new_order

    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert ana.get(url).status_code == 200
        return len(queries)

    urls = ["/", "/billing/", "/billing/?tab=payments"]
    connection.set_tenant(aquakids)
    family = Guardian.objects.get(user__email="ana@aquakids.test").family
    for url in urls:  # what a process reads once, whatever the page
        count(url)
    connection.set_tenant(aquakids)
    new_order(family=family, title="Extra")  # pages are cached per data version: a new one
    before = {u: count(u) for u in urls}
    connection.set_tenant(aquakids)
    for n in range(8):
        new_order(family=family, title=f"Extra {n}")
    after = {u: count(u) for u in urls}
    # Never more: a page of invoices may hold no credit note, which saves its query.
    assert all(after[u] <= before[u] for u in urls), (before, after)
    assert before["/"] == 16  # portal/tests/test_dashboard.py DASHBOARD_QUERIES


def test_every_billing_url_is_not_found_for_another_family(aquakids, ben):
    from django.urls import resolve

    from billing import services
    from billing.models import Payment
    from billing.urls import urlpatterns

    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 2")
    ana_g = Guardian.objects.get(user__email="ana@aquakids.test")
    method = services.payment_method_save(guardian=ana_g, stripe_payment_method_id=card())
    payment = Payment.objects.filter(family__name="Novak").first()
    document = Document.objects.create(family=order.family, kind="statement", status="done")
    note = services.credit_note_issue(
        order=order, amount=Decimal("1.00"), reason="Goodwill", actor_user=None
    )
    urls = [
        f"/billing/credit-notes/{note.pk}/pdf/",
        f"/billing/orders/{order.pk}/",
        f"/billing/orders/{order.pk}/pay/",
        f"/billing/orders/{order.pk}/pay-in-a-tab/",
        f"/billing/orders/{order.pk}/apply-credit/",
        f"/billing/orders/{order.pk}/promo-code/",
        f"/billing/orders/{order.pk}/invoice/",
        f"/billing/payments/{payment.pk}/",
        f"/billing/payments/{payment.pk}/check/",
        f"/billing/methods/{method.pk}/",
        f"/billing/methods/{method.pk}/delete/",
        f"/billing/documents/{document.pk}/",
        f"/billing/documents/{document.pk}/download/",
    ]
    with_ids = {p.name for p in urlpatterns if "<int:" in str(p.pattern)}
    walked = {resolve(u, urlconf="portal.urls").url_name for u in urls}
    assert with_ids <= walked, with_ids - walked
    for url in urls:
        statuses = {
            "get": ben.get(url).status_code,
            "post": ben.post(url, {"stripe_payment_method": "pm_x"}).status_code,
        }
        assert set(statuses.values()) <= {404, 405} and 404 in statuses.values(), (url, statuses)
    assert PaymentMethod.objects.filter(pk=method.pk).exists()
    assert services.order_outstanding(order) > 0
