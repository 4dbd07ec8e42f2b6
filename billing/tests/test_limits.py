"""PDFs a login asks for are limited per minute (portal.limits.PDF): past
the limit the statement form answers 429 with when to ask again, an invoice
or credit note button a 429 page; another login is not affected."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from billing.models import Document, Order
from conftest import client_for, login
from portal import limits

pytestmark = pytest.mark.django_db


def test_statements_past_the_limit_are_refused_with_a_retry_time(aquakids, ana):
    for _ in range(limits.PDF.allowed):
        assert ana.post("/billing/documents/", {"kind": "statement"}).status_code == 302
    refused = ana.post("/billing/documents/", {"kind": "statement"})
    html = refused.content.decode()
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert re.search(r"Too many tries\. Try again in (1 minute|\d\d? seconds)\.", html)
    assert "Please correct the dates below." not in html
    connection.set_tenant(aquakids)
    assert Document.objects.filter(requested_by__email="ana@aquakids.test").count() == 10
    # Another login of the family has its own budget.
    sam = login(client_for("aquakids"), aquakids, "sam@aquakids.test")
    assert sam.post("/billing/documents/", {"kind": "statement"}).status_code == 302


def test_an_invoice_pdf_past_the_limit_is_a_429_page(aquakids, ana):
    connection.set_tenant(aquakids)
    order = Order.objects.filter(family__name="Novak").order_by("pk").first()
    for _ in range(limits.PDF.allowed):
        ana.post("/billing/documents/", {"kind": "ledger"})
    refused = ana.post(f"/billing/orders/{order.pk}/invoice/")
    assert refused.status_code == 429 and refused["Retry-After"]
    html = refused.content.decode()
    assert "Too many tries. Try again in" in html
    assert f"/billing/orders/{order.pk}/" in html  # the way back
