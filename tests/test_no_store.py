"""Nothing a logged-in person is shown stays in a browser or proxy cache:
every page, fragment and document answers `Cache-Control: no-store`, those
served from the page cache too."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from conftest import client_for, login
from portal.tenancy import use_provider

# Public on purpose: the provider's logo (the same for everyone).
PUBLIC = {"provider_logo"}


def tenant_paths() -> list[tuple[str, str]]:
    """(name, path) of every GET-able route on a provider's host, parameters
    filled with 1 or a word: the answer may be a 404, but still no-store."""
    found: list[tuple[str, str]] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                space = pattern.namespace or namespace
                if space == "admin":
                    continue  # the admin is covered by test_admin_walk
                walk(pattern.url_patterns, route, space)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace else str(pattern.name)
                if pattern.name in PUBLIC or "(?P" in route or route.startswith("^"):
                    continue
                path = re.sub(r"<int:\w+>", "1", route)
                path = re.sub(r"<slug:\w+>", "overview", path)
                path = re.sub(r"<(str:)?\w+>", "word", path)
                found.append((name, "/" + path))

    walk(get_resolver("portal.urls").url_patterns, "", "")
    return found


PATHS = tenant_paths()


def test_the_walk_covers_the_parent_pages():
    names = {name for name, _ in PATHS}
    assert {"dashboard", "billing:overview", "benefits:makeups", "families:account"} <= names
    assert len(PATHS) > 40


@pytest.mark.parametrize(("name", "path"), PATHS, ids=[name for name, _ in PATHS])
def test_every_answer_to_a_logged_in_parent_is_no_store(ana, name, path):
    response = ana.get(path)
    assert response["Cache-Control"] == "no-store", (path, response.status_code)


def test_a_page_served_from_the_page_cache_is_no_store(ana):
    first = ana.get("/billing/")
    second = ana.get("/billing/")
    assert (first["X-Page-Cache"], second["X-Page-Cache"]) == ("miss", "hit")
    assert first["Cache-Control"] == second["Cache-Control"] == "no-store"


def test_staff_desk_pages_and_csv_exports_are_no_store(aquakids):
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    for path in ("/staff/", "/staff/money/", "/staff/money/?export=payments", "/admin/"):
        response = desk.get(path)
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "no-store", path
    assert desk.get("/staff/money/?export=payments")["Content-Type"].startswith("text/csv")


def test_a_pdf_download_is_no_store(aquakids, ana, django_capture_on_commit_callbacks):
    from billing.models import Document, Invoice

    use_provider(aquakids)
    invoice = Invoice.objects.filter(order__family__name="Novak").first()
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post(f"/billing/orders/{invoice.order_id}/invoice/")
    document = Document.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    download = ana.get(f"/billing/documents/{document.pk}/download/")
    assert download["Content-Type"] == "application/pdf"
    assert download["Cache-Control"] == "no-store"


def test_a_calendar_feed_is_no_store(aquakids, ana):
    from enrollments.models import CalendarFeed

    ana.get("/calendar/")
    use_provider(aquakids)
    feed = CalendarFeed.objects.filter(family__name="Novak", revoked_at__isnull=True).first()
    assert feed is not None
    response = client_for("aquakids").get(f"/calendar/{feed.token}.ics")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_the_logo_stays_public_and_anonymous_pages_are_untouched(aquakids, ana):
    assert ana.get("/healthz")["Cache-Control"] == "no-store"
    assert "Cache-Control" not in client_for("aquakids").get("/healthz")


def test_pages_reached_by_a_secret_link_are_no_store_without_a_login(aquakids):
    visitor = client_for("aquakids")
    for path in ("/invitations/not-a-real-token/", "/billing/continue/not-a-real-token/"):
        response = visitor.get(path)
        assert response["Cache-Control"] == "no-store", (path, response.status_code)
