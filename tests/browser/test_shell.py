from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import SCREENSHOTS, assert_accessible, log_in

# django_db: so the test database is set up; the server thread commits on its own.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_ana_logs_in_and_sees_the_shell_in_aquakids_colours(portal_server, page):
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
    topbar = page.locator("header.topbar")
    assert topbar.evaluate("el => getComputedStyle(el).backgroundColor") == rgb("#0b63ce")
    assert page.get_by_role("heading", level=1).inner_text() == "The Novak family"
    family_bar = page.get_by_role("navigation", name="Family members")
    assert family_bar.get_by_role("link", name="Mia", exact=True).is_visible()
    assert page.get_by_role("navigation", name="Jump to section").is_visible()
    # Fits a 360 px phone: nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-360.png"), full_page=True)


def test_focusing_a_child_swaps_in_place_and_back_works(portal_server, page):
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
    page.get_by_role("navigation", name="Family members").get_by_role(
        "link", name="Mia", exact=True
    ).click()
    page.wait_for_url(re.compile(r"\?child=\d+$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Mia’s dashboard"
    bookings = page.locator("#bookings")
    assert "Swim Level 2" in bookings.inner_text()
    assert "Swim Level 1" not in bookings.inner_text()
    assert "Payments are for the whole family" in page.locator("#payments").inner_text()
    # Keyboard focus stays on the chip that was activated, and it is announced.
    expect(page.locator("#live")).to_have_text("Showing Mia")
    assert page.evaluate("document.activeElement.id").startswith("focus-")
    assert_accessible(page)
    # Clicking the focused child again shows the whole family.
    page.locator("a.chip.is-active").click()
    page.wait_for_url(portal_server.url("aquakids", "/"))
    assert page.get_by_role("heading", level=1).inner_text() == "The Novak family"
    page.go_back()
    page.wait_for_url(re.compile(r"\?child=\d+$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Mia’s dashboard"
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Mia’s dashboard"


def test_leaps_has_its_own_colours_and_people(portal_server, page):
    log_in(page, portal_server, "leaps", "cara@leaps.test")
    topbar = page.locator("header.topbar")
    assert topbar.evaluate("el => getComputedStyle(el).backgroundColor") == rgb("#8e24aa")
    names = page.get_by_role("navigation", name="Family members").inner_text()
    assert "Ella" in names and "Finn" in names and "Zoe" in names and "Mia" not in names
    assert_accessible(page)
