"""Family pages from the cache: never older than the database, never another
browser's CSRF token, never another family's page."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import LedgerEntry
from conftest import HOSTS, login
from families.models import Family
from providers.models import Provider

pytestmark = pytest.mark.django_db


def get(client, url="/"):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response, len(queries)


def test_a_second_look_is_served_from_the_cache_with_few_queries(aquakids, ana):
    first, _ = get(ana)
    again, queries = get(ana)
    assert first["X-Page-Cache"] == "miss" and again["X-Page-Cache"] == "hit"
    assert queries <= 2  # search_path; the login with its family and data version
    strip = re.compile(rb'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": )"[^"]+"')
    assert strip.sub(b"", first.content) == strip.sub(b"", again.content)


def test_any_change_to_the_family_shows_at_once(aquakids, ana):
    get(ana)
    connection.set_tenant(aquakids)
    family = Family.objects.get(name="Novak")
    LedgerEntry.objects.create(
        family=family, kind="adjustment", amount=Decimal("1234.56"), description="Late fee"
    )
    page, _ = get(ana, "/billing/")
    assert page["X-Page-Cache"] == "miss"
    dashboard, _ = get(ana)
    assert dashboard["X-Page-Cache"] == "miss"


def test_a_provider_setting_shows_at_once(aquakids, ana):
    get(ana)
    connection.set_schema_to_public()
    Provider.objects.filter(pk=aquakids.pk).update(name="Aqua Kids Renamed")
    page, _ = get(ana)
    assert page["X-Page-Cache"] == "miss" and b"Aqua Kids Renamed" in page.content


def test_each_browser_gets_its_own_working_csrf_token(aquakids):
    browsers = []
    for _ in range(2):
        client = Client(HTTP_HOST=HOSTS["aquakids"], enforce_csrf_checks=True)
        browsers.append(login(client, aquakids, "ana@aquakids.test"))
    get(browsers[0])
    pages = [get(browser)[0] for browser in browsers]
    assert [p["X-Page-Cache"] for p in pages] == ["hit", "hit"]
    for browser, page in zip(browsers, pages, strict=True):
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
        response = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": token.decode()})
        assert response.status_code == 302  # accepted: not 403


def test_another_family_never_gets_this_familys_page(aquakids, ana, ben):
    get(ana)
    theirs, _ = get(ben)
    assert theirs["X-Page-Cache"] == "miss"
    assert b"Okafor" in theirs.content and b"Mia" not in theirs.content
