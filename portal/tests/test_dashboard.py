from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import client_for, login
from families.models import Family, Guardian, Student

pytestmark = pytest.mark.django_db


def student(provider, first_name):
    connection.set_tenant(provider)
    return Student.objects.get(first_name=first_name)


def test_dashboard_shows_the_shell_family_bar_sections_and_quick_menu(ana):
    html = ana.get("/").content.decode()
    assert 'aria-label="Family members"' in html
    assert "Whole family" in html
    for section in ("payments", "upcoming", "bookings", "benefits", "orders"):
        assert f'id="{section}"' in html
        assert f'href="#{section}"' in html  # quick menu entry
    assert 'class="quick-menu"' in html


def test_focusing_a_child_filters_child_sections_and_explains_family_sections(aquakids, ana):
    mia = student(aquakids, "Mia")
    html = ana.get(f"/?child={mia.pk}").content.decode()
    bookings = html.split('id="bookings"')[1].split("</section>")[0]
    assert "Swim Level 2" in bookings and "Swim Level 1" not in bookings
    assert "For Mia" in bookings
    everyone = ana.get("/").content.decode().split('id="bookings"')[1].split("</section>")[0]
    assert "Swim Level 2" in everyone and "Swim Level 1" in everyone
    payments = html.split('id="payments"')[1].split("</section>")[0]
    assert "Payments are for the whole family" in payments
    assert "Autumn term: Swim Level 1" in payments  # Leo's order stays while Mia is focused
    orders = html.split('id="orders"')[1].split("</section>")[0]
    assert "Shared by the whole family" in orders
    # Whole family: no note.
    whole = ana.get("/").content.decode()
    assert "Shared by the whole family" not in whole and "Payments are for the whole" not in whole


def test_focus_is_an_htmx_fragment_and_also_a_full_page(aquakids, ana):
    mia = student(aquakids, "Mia")
    fragment = ana.get(f"/?child={mia.pk}", HTTP_HX_REQUEST="true")
    assert "HX-Request" in fragment["Vary"]
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="dashboard"')
    assert "<html" not in body
    assert f'id="focus-{mia.pk}" class="chip is-active"' in body
    full = ana.get(f"/?child={mia.pk}").content.decode()
    assert "<html" in full and "Mia’s dashboard" in full


def test_another_familys_child_or_a_bad_id_is_not_found(aquakids, ana):
    noah = student(aquakids, "Noah")
    assert ana.get(f"/?child={noah.pk}").status_code == 404
    assert ana.get("/?child=abc").status_code == 404
    assert ana.get(f"/sections/bookings/?child={noah.pk}").status_code == 404


def test_a_section_on_its_own_as_page_and_fragment(aquakids, ana):
    page = ana.get("/sections/orders/")
    assert page.status_code == 200 and b"<html" in page.content
    fragment = ana.get("/sections/orders/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="orders"')
    assert ana.get("/sections/nothing-here/").status_code == 404


def test_staff_without_a_family_get_a_pointer_to_admin(aquakids):
    client = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    html = client.get("/").content.decode()
    assert "This account has no family yet" in html
    assert "/admin/" in html


DASHBOARD_QUERIES = 16


def dashboard_queries(client, url="/"):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_dashboard_queries_do_not_grow_with_the_family(aquakids, ana):
    small = dashboard_queries(ana)
    connection.set_tenant(aquakids)
    family = Family.objects.get(name="Novak")
    for n in range(12):
        Student.objects.create(family=family, first_name=f"Kid{n}", last_name="Novak")
    for n in range(5):
        Guardian.objects.create(family=family, first_name=f"Aunt{n}", last_name="Novak")
    large = dashboard_queries(ana)
    assert large == small
    # Pinned: search_path, login with family and data version, the children, one
    # or two reads per section, and five for the make-up tokens' advice
    # (benefits.selectors.token_advice). A change here is a decision.
    assert large == DASHBOARD_QUERIES
    mia = student(aquakids, "Mia")
    with CaptureQueriesContext(connection) as fragment:
        ana.get(f"/?child={mia.pk}", HTTP_HX_REQUEST="true")
    assert len(fragment) <= small


def test_htmx_fragments_make_few_queries(aquakids, ana):
    """Fragments a parent's clicks fetch, rendered afresh: at most 5 queries
    (search_path, the parent with family and data version, the children,
    then the fragment's own reads); the benefits summary reads four kinds of
    benefit, one query each, and five more for the tokens' advice (the
    children's classes, the upcoming sessions, their places)."""
    mia = student(aquakids, "Mia")
    counts = {}
    for url in [
        "/billing/?tab=charges&part=history",
        "/billing/?tab=payments&part=history",
        "/sections/upcoming/",
        f"/sections/bookings/?child={mia.pk}",
        "/sections/payments/",
        "/sections/orders/",
        "/sections/benefits/",
    ]:
        with CaptureQueriesContext(connection) as queries:
            response = ana.get(url, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and response["X-Page-Cache"] == "miss"
        counts[url] = len(queries)
    benefits = counts.pop("/sections/benefits/")
    assert all(count <= 5 for count in counts.values()), counts
    assert benefits == 12
    whole = dashboard_queries(ana)
    assert all(count < whole for count in counts.values()), counts
