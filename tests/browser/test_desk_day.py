"""A day at the front desk, in Chromium: the desk opens today's roster from
the staff home and takes attendance, finds a family by a phone number typed
in local format and approves a make-up request from the family's picture;
the parent then sees both."""

from __future__ import annotations

import shutil
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.tenancy import use_provider, use_public_schema
from providers.models import Provider

from .conftest import COPY, ROOT, SCREENSHOTS, assert_accessible, committed, log_in
from .test_front_desk import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
DOCS = ROOT / "docs"


@pytest.fixture
def evening_squad(demo_copy):
    """A class of its own meeting today with Leo in it, and Mia asking for a
    make-up place in it next week (in the copy of Aqua Kids: they stay)."""

    def make():
        from benefits.models import MakeupRequest
        from enrollments import services
        from enrollments.models import Class, Programme, Session
        from families.models import Guardian, Student

        provider = Provider.objects.get(slug=COPY)
        before = provider.makeup_requests_enabled
        Provider.objects.filter(pk=provider.pk).update(makeup_requests_enabled=True)
        now = datetime.now(ZoneInfo(provider.time_zone))
        day = now.date()
        # Under way: started within the last hour (the parent's history lists
        # sessions that have started).
        start = time(0, 0) if now.hour == 0 else time(now.hour - 1, 0)
        use_provider(provider)  # sessions are made in the provider's time zone
        try:
            template = Class.objects.order_by("pk").first()
            klass = Class.objects.create(
                programme=Programme.objects.create(name="Evening squad"),
                location=template.location,
                level=template.level,
                weekday=day.weekday(),
                start_time=start,
                capacity=6,
                term_start=day - timedelta(weeks=2),
                term_end=day + timedelta(weeks=6),
            )
            services.sessions_generate(klass=klass)
            leo = Student.objects.get(first_name="Leo", last_name="Novak")
            mia = Student.objects.get(first_name="Mia", last_name="Novak")
            services.enrollment_create(student=leo, klass=klass, start_date=klass.term_start)
            next_week = Session.objects.filter(
                klass=klass, starts_at__date=day + timedelta(weeks=1)
            ).get()
            MakeupRequest.objects.create(
                student=mia,
                session=next_week,
                note="Mia missed Monday",
                requested_by=Guardian.objects.get(user__email="ana@aquakids.test").user,
            )
            return klass.pk, leo.pk, before
        finally:
            use_public_schema()

    pk, leo, before = committed(make)
    yield {"klass": pk, "leo": leo}
    # The provider's setting goes back; what the day made stays, as it would.
    committed(lambda: Provider.objects.filter(slug=COPY).update(makeup_requests_enabled=before))


def keep(name: str) -> None:
    """The README's pictures of the staff pages are taken here."""
    shutil.copyfile(SCREENSHOTS / name, DOCS / name)


def test_a_day_at_the_desk_and_the_parent_sees_it(portal_server, browser, evening_squad):
    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    admin_log_in(desk, portal_server, "desk@aquakids.test")
    desk.goto(portal_server.url(COPY, "/staff/"))
    expect(desk.get_by_role("heading", name="Today at the desk")).to_be_visible()
    requests = desk.locator("section", has=desk.get_by_role("heading", name="Make-up requests"))
    expect(requests).to_contain_text("Mia Novak")
    assert_accessible(desk)
    desk.screenshot(path=str(SCREENSHOTS / "desk-home.png"), full_page=True)
    keep("desk-home.png")

    # Today's roster, attendance taken in one screen.
    desk.get_by_role("link", name="Evening squad").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Evening squad")
    leo = desk.get_by_role("row", name="Leo Novak")
    leo.get_by_text("Present", exact=True).click()
    assert_accessible(desk)
    desk.screenshot(path=str(SCREENSHOTS / "desk-roster.png"), full_page=True)
    keep("desk-roster.png")
    desk.get_by_role("button", name="Save attendance").click()
    expect(desk.locator(".messagelist")).to_contain_text("Attendance saved for one child.")
    expect(leo.get_by_role("radio", name="Present")).to_be_checked()

    # A parent rings: the desk types the number as the parent says it.
    desk.get_by_label("Find a family").fill("041 555 123")
    desk.get_by_role("button", name="Search").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("The Novak family")
    assert_accessible(desk)
    desk.screenshot(path=str(SCREENSHOTS / "desk-family.png"), full_page=True)
    keep("desk-family.png")
    request = desk.locator("article.desk-request", has_text="Mia Novak")
    request.get_by_label("Answer to the family (optional)").fill("See you next week!")
    request.get_by_role("button", name="Approve").click()
    expect(desk.locator(".messagelist")).to_contain_text("Approved: Mia is booked in.")
    expect(desk.locator("article.desk-request")).to_have_count(0)
    desk.context.close()

    # The parent, on a phone, sees both.
    parent = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(parent, portal_server, COPY, "ana@aquakids.test")
    makeup = parent.locator("#upcoming .session-row", has_text="Mia · Evening squad")
    expect(makeup).to_contain_text("Make-up")
    parent.goto(portal_server.url(COPY, f"/students/{evening_squad['leo']}/attendance/"))
    expect(parent.locator("main .attendance").first).to_contain_text("Present")
    parent.context.close()
