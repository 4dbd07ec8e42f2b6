from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from icalendar import Calendar

from conftest import client_for, login
from enrollments.models import CalendarFeed, Class, Enrollment, Session
from families.models import Student
from portal import formatting
from portal.clock import today
from providers.models import Provider

from .factories import ClassFactory, StudentFactory, enrol

pytestmark = pytest.mark.django_db


def novak(aquakids, name):
    connection.set_tenant(aquakids)
    return Student.objects.get(first_name=name, last_name="Novak")


def switch(provider, **settings):
    Provider.objects.filter(pk=provider.pk).update(**settings)


def test_upcoming_sessions_show_cancellation_and_livestream(aquakids, ana):
    mia = novak(aquakids, "Mia")
    html = ana.get(f"/sections/upcoming/?child={mia.pk}").content.decode()
    assert "Swim Level 2" in html and "Tivoli Pool" in html and "Marta Kovač" in html
    cancelled = html.split("is-cancelled")[1].split("</li>")[0]
    assert "Cancelled" in cancelled and "Pool maintenance" in cancelled
    assert "https://live.aquakids.example/dryland" in cancelled and "Join livestream" in cancelled
    assert "17:00–17:45" in html  # provider's local time
    assert "/policies/" in html and "/calendar/" in html
    switch(aquakids, livestream_enabled=False)
    assert "Join livestream" not in ana.get(f"/sections/upcoming/?child={mia.pk}").content.decode()


def test_bookings_show_active_and_waitlisted(aquakids, ana):
    leo = novak(aquakids, "Leo")
    html = ana.get(f"/sections/bookings/?child={leo.pk}").content.decode()
    assert "Enrolled" in html and "Waitlisted" in html
    assert html.count('class="list-row booking"') == 2


def test_student_tabs_are_pages_and_fragments(aquakids, ana):
    mia = novak(aquakids, "Mia")
    for tab, text in [
        ("enrollments", "Current enrolments"),
        ("attendance", "sessions so far"),
        ("evaluations", "Streamline glide 3 m"),
        ("absences", "Report an absence by date"),
        ("qr", "<svg"),
    ]:
        page = ana.get(f"/students/{mia.pk}/{tab}/")
        assert page.status_code == 200 and text in page.content.decode(), tab
        fragment = ana.get(f"/students/{mia.pk}/{tab}/", HTTP_HX_REQUEST="true").content.decode()
        assert fragment.lstrip().startswith('<div id="student-tab"') and text in fragment, tab
    evaluations = ana.get(f"/students/{mia.pk}/evaluations/").content.decode()
    assert "Achieved" in evaluations and "Working on it" in evaluations
    assert "Not evaluated yet" in evaluations and "Lovely long glide!" in evaluations
    attendance = ana.get(f"/students/{mia.pk}/attendance/").content.decode()
    assert "Present" in attendance and "Absent" in attendance


def test_qr_code_encodes_an_opaque_token(aquakids, ana):
    mia = novak(aquakids, "Mia")
    ana.get(f"/students/{mia.pk}/qr/")
    mia.refresh_from_db()
    assert mia.checkin_token and len(mia.checkin_token) > 30


def test_waitlist_and_past_enrolments_show_and_hide(aquakids, ana):
    leo = novak(aquakids, "Leo")
    html = ana.get(f"/students/{leo.pk}/enrollments/").content.decode()
    assert "Saturday 09:00" in html and "Hide waitlisted enrolments" in html
    hidden = ana.get(f"/students/{leo.pk}/enrollments/?waitlist=0").content.decode()
    assert "Saturday 09:00" not in hidden and "Show 1 waitlisted enrolment" in hidden


@pytest.mark.parametrize(
    ("setting", "tab", "url_name"),
    [
        ("qr_codes_enabled", "qr", None),
        ("future_absences_enabled", "absences", "absences/by-date/"),
    ],
)
def test_switched_off_tabs_are_hidden_and_refuse(aquakids, ana, setting, tab, url_name):
    mia = novak(aquakids, "Mia")
    switch(aquakids, **{setting: False})
    assert (
        f"/students/{mia.pk}/{tab}/"
        not in ana.get(f"/students/{mia.pk}/enrollments/").content.decode()
    )
    assert ana.get(f"/students/{mia.pk}/{tab}/").status_code == 404
    if url_name:
        assert ana.get(f"/students/{mia.pk}/{url_name}").status_code == 404


@pytest.mark.parametrize(
    ("setting", "button", "path"),
    [
        ("drop_enabled", "Drop", "drop"),
        ("transfer_enabled", "Transfer", "transfer"),
    ],
)
def test_switched_off_actions_are_hidden_and_refuse(aquakids, ana, setting, button, path):
    mia = novak(aquakids, "Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    page = ana.get(f"/students/{mia.pk}/enrollments/").content.decode()
    assert f"/enrolments/{enrollment.pk}/{path}/" in page
    switch(aquakids, **{setting: False})
    page = ana.get(f"/students/{mia.pk}/enrollments/").content.decode()
    assert f"/enrolments/{enrollment.pk}/{path}/" not in page
    assert ana.get(f"/enrolments/{enrollment.pk}/{path}/").status_code == 404
    assert ana.post(f"/enrolments/{enrollment.pk}/{path}/").status_code == 404
    assert Enrollment.objects.get(pk=enrollment.pk).status == "active"


def test_leaving_the_waitlist_when_switched_off(aquakids, ana):
    waiting = Enrollment.objects.get(student=novak(aquakids, "Leo"), status="waitlisted")
    switch(aquakids, cancel_waitlist_enabled=False)
    assert ana.post(f"/enrolments/{waiting.pk}/leave-waitlist/").status_code == 404
    switch(aquakids, cancel_waitlist_enabled=True)
    page = ana.get(f"/enrolments/{waiting.pk}/leave-waitlist/").content.decode()
    assert "Take Leo off the waitlist?" in page
    assert ana.post(f"/enrolments/{waiting.pk}/leave-waitlist/").status_code == 302
    assert Enrollment.objects.get(pk=waiting.pk).status == "cancelled"


def test_transfer_journey_confirms_what_happens_first(aquakids, ana):
    mia = novak(aquakids, "Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    options = ana.get(f"/enrolments/{enrollment.pk}/transfer/").content.decode()
    assert "Wednesday 17:00" in options and "Kodeljevo Pool" in options
    full = Class.objects.get(programme=enrollment.klass.programme, weekday=5)
    target = Class.objects.get(programme=enrollment.klass.programme, weekday=2)
    assert f"?to={full.pk}" not in options and "Full" in options
    confirm = ana.get(f"/enrolments/{enrollment.pk}/transfer/?to={target.pk}").content.decode()
    assert "Confirm the transfer" in confirm and "Effective" in confirm
    assert re.search(r"\d+ remaining sessions in the old class are released", confirm)
    assert Enrollment.objects.get(pk=enrollment.pk).status == "active"  # nothing yet
    done = ana.post(f"/enrolments/{enrollment.pk}/transfer/", {"to": target.pk})
    assert done.status_code == 302
    assert Enrollment.objects.get(pk=enrollment.pk).status == "transferred"
    bookings = ana.get(f"/sections/bookings/?child={mia.pk}").content.decode()
    assert "Wednesday 17:00" in bookings and "Monday 17:00" not in bookings
    # A full class cannot be forced through the URL.
    new = Enrollment.objects.get(student=mia, status="active", kind="regular")
    response = ana.post(f"/enrolments/{new.pk}/transfer/", {"to": full.pk}, follow=True)
    assert "last place in that class was just taken" in response.content.decode()


def test_drop_journey(aquakids, ana):
    mia = novak(aquakids, "Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    confirm = ana.get(f"/enrolments/{enrollment.pk}/drop/").content.decode()
    assert "Drop Mia from Swim Level 2?" in confirm and "are released" in confirm
    assert "Tell us as early as you can" in confirm  # the provider's cancellation policy
    ana.post(f"/enrolments/{enrollment.pk}/drop/")
    assert Enrollment.objects.get(pk=enrollment.pk).status == "dropped"
    assert "No upcoming sessions" in ana.get(f"/sections/upcoming/?child={mia.pk}").content.decode()


def test_guardians_without_permission_see_no_actions_and_are_refused(aquakids):
    sam = login(client_for("aquakids"), aquakids, "sam@aquakids.test")
    mia = novak(aquakids, "Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    page = sam.get(f"/students/{mia.pk}/enrollments/").content.decode()
    assert f"/enrolments/{enrollment.pk}/drop/" not in page
    assert sam.post(f"/enrolments/{enrollment.pk}/drop/").status_code == 403


def test_future_absence_forms(aquakids, ana):
    leo = novak(aquakids, "Leo")
    bad = ana.post(
        f"/students/{leo.pk}/absences/by-date/",
        {"starts_at": "2030-01-10T10:00", "ends_at": "2030-01-09T10:00", "reason": "Trip"},
    ).content.decode()
    assert "must be after" in bad and 'value="Trip"' in bad and 'value="2030-01-10T10:00"' in bad
    enrollment = Enrollment.objects.get(student=leo, status="active", kind="regular")
    page = ana.get(f"/students/{leo.pk}/absences/by-enrolment/{enrollment.pk}/").content.decode()
    session_ids = re.findall(r'name="sessions" value="(\d+)"', page)
    assert len(session_ids) >= 2
    response = ana.post(
        f"/students/{leo.pk}/absences/by-enrolment/{enrollment.pk}/",
        {"sessions": session_ids[:2], "reason": "Grandma's birthday"},
    )
    assert response.status_code == 302
    listing = ana.get(f"/students/{leo.pk}/absences/").content.decode()
    assert "Grandma" in listing and "2 sessions" in listing
    upcoming = ana.get(f"/sections/upcoming/?child={leo.pk}").content.decode()
    assert "Absence reported" in upcoming


def test_calendar_feed_content_and_reset(aquakids, ana):
    page = ana.get("/calendar/").content.decode()
    urls = re.findall(r'value="(http://aquakids\.localhost/calendar/[^"]+\.ics)"', page)
    assert len(urls) == 3  # whole family, Mia, Leo
    family_url = urls[0].replace("http://aquakids.localhost", "")
    anonymous = client_for("aquakids")
    response = anonymous.get(family_url)
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    assert calendar.get("X-WR-TIMEZONE") == "Europe/Ljubljana"
    assert any(c.name == "VTIMEZONE" for c in calendar.walk())
    events = [c for c in calendar.walk("VEVENT")]
    summaries = {str(e["SUMMARY"]) for e in events}
    assert {"Mia: Swim Level 2", "Leo: Swim Level 1"} <= summaries
    assert "Noah" not in response.content.decode()
    cancelled = [e for e in events if str(e["STATUS"]) == "CANCELLED"]
    assert len(cancelled) == 1 and "live.aquakids.example" in str(cancelled[0]["URL"])
    assert b"TZID=Europe/Ljubljana:" in response.content
    monday = [e for e in events if str(e["SUMMARY"]).startswith("Mia")][0]
    assert monday["DTSTART"].dt.hour == 17

    # Cancel another session: the feed says so with a higher SEQUENCE.
    # One of Leo's regular classes (his drop-ins and waitlisted class are
    # not in his feed), whichever weekday today is.
    session = Session.objects.filter(
        klass__enrollments__student__first_name="Leo",
        klass__enrollments__kind="regular",
        klass__enrollments__status="active",
        starts_at__gt=timezone.now(),
        status="scheduled",
    ).first()
    session.status = "cancelled"
    session.sequence += 1
    session.save()
    again = Calendar.from_ical(anonymous.get(family_url).content)
    uid = f"session-{session.pk}-student-{novak(aquakids, 'Leo').pk}@aquakids.localhost"
    event = next(e for e in again.walk("VEVENT") if str(e["UID"]) == uid)
    assert str(event["STATUS"]) == "CANCELLED" and event["SEQUENCE"] == 1

    ana.post("/calendar/reset/", {"student": ""})
    assert anonymous.get(family_url).status_code == 404
    new_page = ana.get("/calendar/").content.decode()
    new_url = re.findall(r'value="http://aquakids\.localhost(/calendar/[^"]+\.ics)"', new_page)[0]
    assert new_url != family_url and anonymous.get(new_url).status_code == 200
    assert CalendarFeed.objects.filter(revoked_at__isnull=False).count() == 1


def test_pages_queries_do_not_grow_with_enrolments(aquakids, ana):
    mia = novak(aquakids, "Mia")

    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert ana.get(url).status_code == 200
        return len(queries)

    urls = [
        "/",
        f"/?child={mia.pk}",
        f"/students/{mia.pk}/enrollments/",
        f"/students/{mia.pk}/attendance/",
        f"/students/{mia.pk}/evaluations/",
        f"/students/{mia.pk}/absences/",
        "/sections/upcoming/",
    ]
    before = {url: count(url) for url in urls}
    connection.set_tenant(aquakids)
    for weekday in range(4):
        enrol(mia, ClassFactory(weekday=weekday, capacity=5))
        enrol(novak(aquakids, "Leo"), ClassFactory(weekday=weekday, capacity=5))
    after = {url: count(url) for url in urls}
    assert after == before
    assert before["/"] == 16, before  # portal/tests/test_dashboard.py DASHBOARD_QUERIES
    assert before[f"/?child={mia.pk}"] <= 16


def test_every_url_of_this_app_is_not_found_for_another_family(aquakids, ben):
    from django.urls import resolve

    from enrollments.urls import urlpatterns

    connection.set_tenant(aquakids)
    mia = novak(aquakids, "Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    waiting = Enrollment.objects.get(student__first_name="Leo", status="waitlisted")
    from enrollments import services
    from families.models import Guardian

    ana_g = Guardian.objects.get(user__email="ana@aquakids.test")
    session = Session.objects.filter(klass=enrollment.klass, starts_at__gt=timezone.now()).first()
    absence = services.absence_report_by_enrollment(
        enrollment=enrollment, actor=ana_g, sessions=[session]
    )
    urls = [
        f"/students/{mia.pk}/{tab}/"
        for tab in ("enrollments", "attendance", "evaluations", "absences", "qr")
    ]
    urls += [
        f"/students/{mia.pk}/absences/by-date/",
        f"/students/{mia.pk}/absences/by-enrolment/{enrollment.pk}/",
        f"/absences/{absence.pk}/cancel/",
        f"/enrolments/{waiting.pk}/leave-waitlist/",
        f"/enrolments/{enrollment.pk}/drop/",
        f"/enrolments/{enrollment.pk}/transfer/",
        f"/enrolments/{enrollment.pk}/transfer/?to={enrollment.klass_id}",
    ]
    with_ids = {p.name for p in urlpatterns if "<int:" in str(p.pattern)}
    walked = {resolve(url.split("?")[0], urlconf="portal.urls").url_name for url in urls}
    assert with_ids <= walked, with_ids - walked
    for url in urls:
        statuses = {"get": ben.get(url).status_code, "post": ben.post(url, {"to": 1}).status_code}
        assert set(statuses.values()) <= {404, 405} and 404 in statuses.values(), (url, statuses)
    # Ben's calendar reset cannot touch Mia's feed either.
    assert ben.post("/calendar/reset/", {"student": mia.pk}).status_code == 404
    assert Enrollment.objects.get(pk=enrollment.pk).status == "active"
    assert absence.marks.count() == 1 and not type(absence).objects.get(pk=absence.pk).cancelled_at


def test_past_enrolments_read_plainly(aquakids, ana):
    """No "Show 0 past enrolments" link; an enrolment dropped before it began
    says so instead of "3 Dec 2026 to 2 Dec 2026"."""
    mia = novak(aquakids, "Mia")
    kid = StudentFactory(family=mia.family, first_name="Ivy")
    enrollment = enrol(kid, ClassFactory(capacity=5))
    page = ana.get(f"/students/{kid.pk}/enrollments/").content.decode()
    assert "No past enrolments." in page and "Show 0 past" not in page
    Enrollment.objects.filter(pk=enrollment.pk).update(
        status="dropped", start_date=today(), end_date=today() - timedelta(days=1)
    )
    page = ana.get(f"/students/{kid.pk}/enrollments/?past=1").content.decode()
    assert f"Cancelled before it started ({formatting.day(today())})" in page
    assert " to " + formatting.day(today() - timedelta(days=1)) not in page


def test_the_portal_has_a_favicon(aquakids, ana):
    assert re.search(r'<link rel="icon" href="[^"]+favicon\.svg"', ana.get("/").content.decode())
