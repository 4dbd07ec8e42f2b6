from __future__ import annotations

import re

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from benefits.models import MakeupToken, TokenEvent
from conftest import undo_history
from enrollments.models import Enrollment, EnrollmentChange

from .conftest import SCREENSHOTS, assert_accessible, committed, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def undo_makeup():
    yield

    def undo():
        with schema_context("aquakids"):
            token = MakeupToken.objects.get(student__first_name="Mia", reason="absence")
            applied = TokenEvent.objects.filter(token=token).exclude(kind="issued")
            bookings = Enrollment.objects.filter(pk__in=applied.values("enrollment"))
            ids = list(bookings.values_list("pk", flat=True))
            applied.delete()
            with undo_history():
                EnrollmentChange.objects.filter(enrollment_id__in=ids).delete()
            Enrollment.objects.filter(pk__in=ids).delete()

    committed(undo)


def test_ana_books_a_makeup_and_the_token_moves_to_pending(portal_server, page, undo_makeup):
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
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

    page.goto(portal_server.url("aquakids", "/"))
    expect(page.locator("#upcoming")).to_contain_text("Make-up")
