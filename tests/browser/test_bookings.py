from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import COPY, SCREENSHOTS, assert_accessible, log_in

# In the copy of Aqua Kids: the transfer (and its history) stays.
pytestmark = [pytest.mark.browser, pytest.mark.django_db, pytest.mark.usefixtures("demo_copy")]


def test_ana_transfers_leo_and_sees_bookings_update(portal_server, page):
    log_in(page, portal_server, COPY, "ana@aquakids.test")
    bar = page.get_by_role("navigation", name="Family members")
    bar.get_by_role("link", name="Leo", exact=True).click()
    page.wait_for_url(re.compile(r"\?child=\d+$"))
    bookings = page.locator("#bookings")
    expect(bookings).to_contain_text("Wednesday 16:00")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-leo-360.png"), full_page=True)

    bookings.get_by_role("link", name=re.compile("Manage.*Swim Level 1")).first.click()
    page.wait_for_url(re.compile(r"/students/\d+/enrollments/$"))
    assert_accessible(page)
    current = page.locator(".enrollment", has_text="Wednesday 16:00")
    current.get_by_role("link", name="Transfer").click()
    assert_accessible(page)
    option = page.locator(".transfer-option", has_text="Tuesday 16:30")
    expect(page.locator(".transfer-option", has_text="Saturday 09:00")).to_contain_text("Full")
    option.get_by_role("link", name=re.compile("Choose")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm the transfer")
    assert_accessible(page)
    page.get_by_role("button", name="Transfer").click()
    expect(page.locator(".messages")).to_contain_text(
        "Leo now goes to Swim Level 1 · Tuesday 16:30"
    )

    page.get_by_role("link", name="Attendance").click()
    expect(page.locator("#student-tab")).to_contain_text("Transferred")
    page.goto(portal_server.url(COPY, "/"))
    bar = page.get_by_role("navigation", name="Family members")
    bar.get_by_role("link", name="Leo", exact=True).click()
    bookings = page.locator("#bookings")
    expect(bookings).to_contain_text("Tuesday 16:30")
    expect(bookings).not_to_contain_text("Wednesday 16:00")
    expect(page.locator("#upcoming")).to_contain_text("Tivoli Pool")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-leo-after-transfer-360.png"), full_page=True)
