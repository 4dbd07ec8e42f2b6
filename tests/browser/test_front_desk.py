"""The front desk in the admin, in Chromium: a cancelled session reaches the
family with its livestream link and a make-up token; enrolling into a full
class offers the waitlist."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from .conftest import COPY, SCREENSHOTS, assert_accessible, in_copy, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
LIVESTREAM = "https://live.aquakids.example/heating"


def admin_log_in(page, portal_server, email: str, slug: str = COPY) -> None:
    page.goto(portal_server.url(slug, "/admin/login/?next=/admin/"))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("portal-demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(portal_server.url(slug, "/admin/"))


@pytest.fixture
def mias_next_session(demo_copy):
    """Mia's next regular session (in the copy of Aqua Kids: it stays
    cancelled, with the tokens its cancellation gave)."""

    def find():
        from enrollments.models import Enrollment, Session

        enrollment = Enrollment.objects.get(
            student__first_name="Mia", status="active", kind="regular"
        )
        return (
            Session.objects.filter(
                klass=enrollment.klass, status="scheduled", starts_at__gt=timezone.now()
            )
            .order_by("starts_at")
            .values_list("pk", flat=True)
            .first()
        )

    return in_copy(find)


def test_the_desk_cancels_a_session_and_the_family_sees_the_livestream_and_a_token(
    portal_server, browser, mias_next_session
):
    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    admin_log_in(desk, portal_server, "desk@aquakids.test")
    desk.goto(portal_server.url(COPY, f"/admin/enrollments/session/?id={mias_next_session}"))
    desk.locator(f'input[name="_selected_action"][value="{mias_next_session}"]').check()
    desk.locator('select[name="action"]').select_option("cancel_sessions")
    desk.get_by_role("button", name="Run").click()
    expect(desk.get_by_role("heading", name="Cancel sessions")).to_be_visible()
    # The reason is required: refused on the form, nothing cancelled.
    desk.get_by_role("button", name="Preview").click()
    expect(desk.get_by_role("alert").first).to_contain_text("This field is required")
    desk.get_by_label("Reason, as families will read it").fill("The pool heating failed.")
    desk.get_by_label("Livestream link instead (optional)").fill(LIVESTREAM)
    desk.get_by_role("button", name="Preview").click()
    preview = desk.locator(".preview")
    expect(preview).to_contain_text("ana@aquakids.test")
    expect(preview).to_contain_text("make-up token")
    expect(preview).to_contain_text(LIVESTREAM)
    desk.screenshot(path=str(SCREENSHOTS / "admin-cancel-preview.png"), full_page=True)
    desk.get_by_role("button", name="Cancel and notify").click()
    expect(desk.locator(".messagelist")).to_contain_text("guardian(s) notified")
    desk.context.close()

    parent = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(parent, portal_server, COPY, "ana@aquakids.test")
    upcoming = parent.locator("#upcoming")
    cancelled = upcoming.locator(".session-row.is-cancelled").first
    expect(cancelled).to_contain_text("The pool heating failed.")
    expect(cancelled.get_by_role("link", name=re.compile("Join livestream"))).to_have_attribute(
        "href", LIVESTREAM
    )
    assert_accessible(parent)
    parent.screenshot(path=str(SCREENSHOTS / "dashboard-cancelled-390.png"), full_page=True)
    parent.goto(portal_server.url(COPY, "/benefits/makeups/"))
    expect(parent.locator("main")).to_contain_text("Session cancelled by the school")
    parent.context.close()


@pytest.fixture
def full_class(demo_copy):
    """A class of its own with every place taken, and Leo not in it."""

    def make():
        from enrollments.models import Class
        from enrollments.services import enrollment_create
        from families.models import Student

        template = Class.objects.filter(is_active=True).order_by("pk").first()
        klass = Class.objects.create(
            programme=template.programme,
            location=template.location,
            weekday=5,
            start_time=template.start_time,
            capacity=1,
            term_start=template.term_start,
            term_end=template.term_end,
        )
        holder = Student.objects.exclude(first_name="Leo").order_by("pk").first()
        enrollment_create(student=holder, klass=klass, start_date=klass.term_start)
        return klass.pk, str(klass)

    return in_copy(make)


def test_the_desk_enrols_into_a_full_class_and_is_offered_the_waitlist(
    portal_server, browser, full_class
):
    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    admin_log_in(desk, portal_server, "desk@aquakids.test")
    desk.goto(portal_server.url(COPY, "/admin/enrollments/enrollment/add/"))
    desk.locator(".field-student .select2-selection").click()
    desk.locator(".select2-search__field").fill("Leo")
    desk.locator(".select2-results__option", has_text="Leo Novak").click()
    pk, name = full_class
    desk.locator(".field-klass .select2-selection").click()
    desk.locator(".select2-search__field").fill(name.split(" · ")[0])
    desk.locator(".select2-results__option", has_text=name).click()
    expect(desk.locator("#id_klass")).to_have_value(str(pk))
    desk.get_by_role("button", name="Save", exact=True).click()
    expect(desk.locator(".errorlist").first).to_contain_text(
        "This class is full: put the child on its waitlist"
    )
    desk.screenshot(path=str(SCREENSHOTS / "admin-enrol-full.png"), full_page=True)
    desk.get_by_label("If the class is full, put the child on its waitlist").check()
    desk.get_by_role("button", name="Save", exact=True).click()
    expect(desk.locator(".messagelist")).to_contain_text("Done: Waitlisted.")
    desk.context.close()
