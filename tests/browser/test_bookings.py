from __future__ import annotations

import re

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from conftest import undo_history
from enrollments.models import Enrollment, EnrollmentChange

from .conftest import SCREENSHOTS, assert_accessible, committed, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def restore_enrollments():
    """Put the Novak family's enrolments back as they were after the test."""

    def snapshot():
        with schema_context("aquakids"):
            return {
                e.pk: (e.status, e.end_date, e.transferred_to_id)
                for e in Enrollment.objects.filter(student__family__name="Novak")
            }

    before = committed(snapshot)
    yield

    def restore():
        with schema_context("aquakids"):
            family = Enrollment.objects.filter(student__family__name="Novak")
            added = family.exclude(pk__in=before)
            for pk, (status, end_date, moved_to) in before.items():
                family.filter(pk=pk).update(
                    status=status, end_date=end_date, transferred_to=moved_to
                )
            with undo_history():
                EnrollmentChange.objects.filter(enrollment__in=added).delete()
                EnrollmentChange.objects.filter(
                    enrollment__in=family, action="transferred"
                ).delete()
            added.delete()

    committed(restore)


def test_ana_transfers_leo_and_sees_bookings_update(portal_server, page, restore_enrollments):
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
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
    page.goto(portal_server.url("aquakids", "/"))
    bar = page.get_by_role("navigation", name="Family members")
    bar.get_by_role("link", name="Leo", exact=True).click()
    bookings = page.locator("#bookings")
    expect(bookings).to_contain_text("Tuesday 16:30")
    expect(bookings).not_to_contain_text("Wednesday 16:00")
    expect(page.locator("#upcoming")).to_contain_text("Tivoli Pool")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-leo-after-transfer-360.png"), full_page=True)
