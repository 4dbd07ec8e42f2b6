from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import COPY, SCREENSHOTS, assert_accessible, log_in

# In the copy of Aqua Kids: the booking (and the token's history) stays.
pytestmark = [pytest.mark.browser, pytest.mark.django_db, pytest.mark.usefixtures("demo_copy")]


def test_ana_books_a_makeup_and_the_token_moves_to_pending(portal_server, page):
    log_in(page, portal_server, COPY, "ana@aquakids.test")
    benefits = page.locator("#benefits")
    expect(benefits).to_contain_text("Make-up token")
    assert_accessible(page)
    page.screenshot(path=str(SCREENSHOTS / "benefits-360.png"), full_page=True)

    benefits.locator(".list-row", has_text="Mia").get_by_role("link", name="Book a make-up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Book a make-up for Mia")
    page.get_by_text("Why can’t I book these?").click()
    expect(page.locator(".why-not")).to_contain_text("This token is for Tivoli Pool")
    assert_accessible(page)
    page.screenshot(path=str(SCREENSHOTS / "book-makeup-360.png"), full_page=True)
    first = page.locator(".offer").first
    first.get_by_role("button", name=re.compile("Book")).click()
    expect(page.locator(".messages")).to_contain_text("The token is now pending")
    pending = page.locator("#history")
    expect(pending).to_contain_text("Booked for")
    expect(pending.locator(".token-row", has_text="Booked for").first).to_contain_text("Pending")
    assert_accessible(page)

    page.goto(portal_server.url(COPY, "/"))
    expect(page.locator("#upcoming")).to_contain_text("Make-up")
