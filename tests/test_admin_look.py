"""The admin's frame: the provider's name and brand colour per request (a
neutral one on the platform's host), a sidebar that shows each role only
what it may open, and dates day first in the portal's English."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.utils import formats, translation

from conftest import client_for, login
from portal.theme import NEUTRAL, Theme

pytestmark = pytest.mark.django_db


def brand_variables(html: str) -> dict[str, str]:
    style = re.search(r'<style id="brand-colours">(.*?)</style>', html, re.S)
    assert style, "no brand colours on the page"
    return dict(re.findall(r"--brand-(\d+):(#[0-9a-f]{6});", style.group(1)))


def test_a_providers_admin_wears_its_name_and_colours(aquakids):
    html = login(client_for("aquakids"), aquakids, "staff@aquakids.test").get("/admin/")
    html = html.content.decode()
    assert aquakids.name in html
    scale = brand_variables(html)
    assert scale == aquakids.theme.scale()
    # Unfold's primary scale reads those variables.
    assert re.search(r"--color-primary-600:\s*var\(--brand-600\)", html)


def test_the_login_page_too(aquakids):
    html = client_for("aquakids").get("/admin/login/").content.decode()
    assert aquakids.name in html
    assert brand_variables(html)["600"] == aquakids.theme.primary_ink


def test_the_platform_admin_is_neutral(db):
    connection.set_schema_to_public()
    html = client_for("public").get("/admin/login/").content.decode()
    assert "Family portal: platform" in html
    assert brand_variables(html) == Theme.from_colours(NEUTRAL, NEUTRAL).scale()


def test_white_text_on_the_brands_buttons_reaches_aa():
    from portal.theme import WHITE, contrast

    for colour in ["#ffb703", "#8e24aa", "#0b63ce", "#e0e0e0", "#00ff00"]:
        assert contrast(Theme.from_colours(colour, colour).scale()["600"], WHITE) >= 4.5


def test_the_sidebar_shows_each_role_what_it_may_open(aquakids):
    def sidebar(email):
        connection.set_tenant(aquakids)
        return login(client_for("aquakids"), aquakids, email).get("/admin/").content.decode()

    owner = sidebar("staff@aquakids.test")
    desk = sidebar("desk@aquakids.test")
    for label in ["Families", "Sessions", "Make-up requests", "Orders", "Attendance"]:
        assert label in owner
        assert label in desk
    for label in ["Staff logins", "Roles", "Branding and settings"]:
        assert label in owner
        assert label not in desk, label
    assert 'href="/staff/"' in desk


def test_dates_in_the_portals_english_are_day_first():
    with translation.override("en"):
        assert formats.date_format(_date(), "SHORT_DATE_FORMAT") == "03/12/2026"
        assert formats.date_format(_date()) == "3 Dec 2026"
    with translation.override("en-gb"):
        assert formats.get_format("SHORT_DATE_FORMAT") == "d/m/Y"
        assert formats.get_format("TIME_FORMAT") == "P"  # Django's British formats
    with translation.override("de"):
        assert formats.date_format(_date(), "SHORT_DATE_FORMAT") == "03.12.2026"


def _date():
    import datetime

    return datetime.date(2026, 12, 3)
