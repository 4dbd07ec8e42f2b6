"""The front desk: the day's sessions and what needs attention, a roster
that takes attendance through the service, the skills grid, a family's
whole picture with its actions, and search by a phone in any format."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from benefits.models import MakeupRequest
from conftest import client_for, login
from enrollments import services
from enrollments.models import (
    Absence,
    AbsenceMark,
    Attendance,
    Enrollment,
    Evaluation,
    Level,
    Session,
    Skill,
    WaitlistOffer,
)
from enrollments.tests.factories import ClassFactory, StudentFactory, enrol
from families.models import ContactEmail, ContactPhone, Family, FamilyNote, Guardian
from portal.clock import local, today

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(aquakids):
    return login(client_for("aquakids"), aquakids, "desk@aquakids.test")


@pytest.fixture
def tonight(aquakids):
    """A class meeting today, with two regular children (one reported absent)
    and a make-up child booked into today's session."""
    connection.set_tenant(aquakids)
    level = Level.objects.create(name="Desk level", order=9)
    skills = [Skill.objects.create(level=level, name=f"Skill {n}", order=n) for n in range(3)]
    klass = ClassFactory(weekday=today().weekday(), start_time=time(23, 0), level=level)
    session = Session.objects.get(klass=klass, starts_at__date=today())
    regular, absent, makeup = StudentFactory(), StudentFactory(), StudentFactory()
    enrol(regular, klass)
    enrol(absent, klass)
    desk_user = User.objects.get(email="desk@aquakids.test")
    # Reported earlier (made here directly: the service takes future sessions
    # only, and tonight's may have ended when the suite runs late).
    absence = Absence.objects.create(
        student=absent,
        kind=Absence.Kind.BY_DATE,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        reason="Dentist",
        created_by=desk_user,
    )
    AbsenceMark.objects.create(
        absence=absence, session=session, enrollment=Enrollment.objects.get(student=absent)
    )
    single = services.single_booking_create(
        student=makeup, session=session, kind=Enrollment.Kind.MAKEUP, actor_user=desk_user
    )
    return {
        "klass": klass,
        "session": session,
        "regular": regular,
        "absent": absent,
        "makeup": makeup,
        "single": single,
        "skills": skills,
    }


def test_the_staff_home_lists_todays_sessions_and_what_needs_attention(desk, aquakids, tonight):
    page = desk.get("/staff/").content.decode()
    session = tonight["session"]
    assert f'href="/staff/sessions/{session.pk}/"' in page
    assert tonight["klass"].location.name in page
    assert "1 absent" in page and "1 make-up or trial" in page
    # Places held: the regular child and the make-up child (the absent one freed hers).
    assert "2 of 4 places" in page
    # The absence reported for today, with its reason.
    assert f"{tonight['absent'].first_name} {tonight['absent'].last_name}" in page
    assert "Dentist" in page
    assert "Families owing money" in page


def test_the_staff_home_reads_a_fixed_number_of_queries_however_busy_the_day(
    desk, aquakids, tonight
):
    def count():
        connection.set_tenant(aquakids)
        with CaptureQueriesContext(connection) as queries:
            assert desk.get("/staff/").status_code == 200
        return len(queries)

    before = count()
    connection.set_tenant(aquakids)
    for _ in range(3):
        klass = ClassFactory(weekday=today().weekday(), start_time=time(22, 0))
        for _ in range(2):
            enrol(StudentFactory(), klass)
    assert count() == before


def test_the_roster_marks_make_ups_and_absences_and_saves_attendance_in_one_go(
    desk, aquakids, tonight
):
    session = tonight["session"]
    page = desk.get(f"/staff/sessions/{session.pk}/").content.decode()
    assert "3 children expected" in page
    assert "Make-up" in page and "Absence reported" in page and "Dentist" in page
    connection.set_tenant(aquakids)
    regular = Enrollment.objects.get(student=tonight["regular"])
    saved = desk.post(
        f"/staff/sessions/{session.pk}/",
        {f"mark-{regular.pk}": "late", "everyone": "present"},
        follow=True,
    )
    assert "Attendance saved for 3 children." in saved.content.decode()
    connection.set_tenant(aquakids)
    marks = {
        a.enrollment.student_id: a.status
        for a in Attendance.objects.filter(session=session).select_related("enrollment")
    }
    assert marks == {
        tonight["regular"].pk: "late",
        tonight["absent"].pk: "excused",  # reported absent: excused, not absent
        tonight["makeup"].pk: "present",
    }
    # Saving again with nothing changed writes nothing.
    again = desk.post(f"/staff/sessions/{session.pk}/", {}, follow=True)
    assert "Nothing changed." in again.content.decode()


def test_staff_who_may_not_take_attendance_are_told_and_nothing_is_saved(aquakids, tonight):
    from django.contrib.auth.models import Permission

    connection.set_tenant(aquakids)
    viewer = User.objects.create_user(email="viewer@aquakids.test", password="Sample-pass-4821")
    User.objects.filter(pk=viewer.pk).update(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_session", content_type__app_label="enrollments")
    )
    client = login(client_for("aquakids"), aquakids, "viewer@aquakids.test")
    session = tonight["session"]
    connection.set_tenant(aquakids)
    regular = Enrollment.objects.get(student=tonight["regular"])
    page = client.post(f"/staff/sessions/{session.pk}/", {f"mark-{regular.pk}": "present"})
    assert "You may not take attendance." in page.content.decode()
    connection.set_tenant(aquakids)
    assert not Attendance.objects.filter(session=session).exists()


def test_one_click_moves_a_skill_on_and_a_second_click_the_same_day_corrects_it(
    desk, aquakids, tonight
):
    klass, skill, child = tonight["klass"], tonight["skills"][0], tonight["regular"]
    page = desk.get(f"/staff/classes/{klass.pk}/skills/").content.decode()
    assert "Skill 0" in page and child.first_name in page
    url = f"/staff/classes/{klass.pk}/skills/"
    cell = desk.post(
        url,
        {"student": child.pk, "skill": skill.pk, "status": "working"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert f'id="cell-{child.pk}-{skill.pk}"' in cell and "Working on it" in cell
    assert 'name="status" value="achieved"' in cell  # the next click
    desk.post(url, {"student": child.pk, "skill": skill.pk, "status": "achieved"})
    connection.set_tenant(aquakids)
    evaluations = list(Evaluation.objects.filter(student=child, skill=skill))
    assert [e.status for e in evaluations] == ["achieved"]  # corrected, not piled up
    # A skill of another level is refused.
    other = Skill.objects.create(level=Level.objects.create(name="Other", order=10), name="X")
    assert (
        desk.post(url, {"student": child.pk, "skill": other.pk, "status": "working"}).status_code
        == 404
    )


@pytest.mark.parametrize(
    "typed", ["041 555 123", "+386 41 555 123", "00386 41 555 123", "041/555-123", "555123"]
)
def test_search_finds_a_family_by_a_phone_in_any_format(desk, aquakids, typed):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")
    assert ContactPhone.objects.filter(family=novak, number="+38641555123").exists()
    found = desk.get("/staff/search/", {"q": typed})
    assert found.status_code == 302 and found.url == f"/staff/families/{novak.pk}/"


def test_search_by_a_childs_or_guardians_name_lists_each_match(desk, aquakids):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")
    StudentFactory(first_name="Nina", last_name="Novakova")
    page = desk.get("/staff/search/", {"q": "novak"}).content.decode()
    assert "2 families found" in page and "Nina Novakova (child)" in page
    assert page.count(f'href="/staff/families/{novak.pk}/"') == 1
    assert "Leo Novak (child)" in page and "Ana Novak (guardian)" in page
    assert "Nobody matches" in desk.get("/staff/search/", {"q": "Zzyzx"}).content.decode()
    leo = desk.get("/staff/search/", {"q": "leo nov"})
    assert leo.status_code == 302


def test_a_familys_picture_shows_everything_and_records_a_make_up_decision(desk, aquakids):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")
    leo = novak.students.get(first_name="Leo")
    own = Enrollment.objects.filter(student=leo, kind="regular", status="active").first().klass
    # Another class of Leo's programme and level: one a family may ask for.
    sibling = ClassFactory(programme=own.programme, level=own.level, location=own.location)
    session = Session.objects.filter(
        klass=sibling, starts_at__gt=timezone.now() + timedelta(days=1)
    ).first()
    ana = Guardian.objects.get(user__email="ana@aquakids.test")
    from benefits import services as benefit_services
    from providers.models import Provider

    Provider.objects.filter(pk=aquakids.pk).update(
        makeup_requests_enabled=True, makeup_tokens_enabled=False
    )
    aquakids.refresh_from_db()
    connection.set_tenant(aquakids)

    request = benefit_services.makeup_request(student=leo, session=session, actor=ana)
    page = desk.get(f"/staff/families/{novak.pk}/").content.decode()
    for expected in (
        "Mia Novak",
        "Leo Novak",
        "Waitlisted",
        "ana@aquakids.test",
        "+386 41 555 123",
        "Owes",
        "Recent payments",
        "Make-up requests waiting",
        "View as this family",
    ):
        assert expected in page, expected
    mail.outbox.clear()
    decided = desk.post(
        f"/staff/make-up-requests/{request.pk}/decide/",
        {"decision": "approve", "answer": "See you there", "next": f"/staff/families/{novak.pk}/"},
    )
    assert decided.status_code == 302 and decided.url == f"/staff/families/{novak.pk}/"
    assert "Approved: Leo is booked in." in desk.get(decided.url).content.decode()
    connection.set_tenant(aquakids)
    request.refresh_from_db()
    assert request.status == MakeupRequest.Status.APPROVED
    assert request.enrollment.session_id == session.pk
    assert request.decision_note == "See you there"
    # Twice is refused by the service, not booked twice.
    again = desk.post(
        f"/staff/make-up-requests/{request.pk}/decide/", {"decision": "approve"}, follow=True
    )
    assert "This request was answered already." in again.content.decode()
    connection.set_tenant(aquakids)
    assert Enrollment.objects.filter(student=leo, session=session).count() == 1


def test_the_family_picture_reads_a_fixed_number_of_queries_as_the_family_grows(desk, aquakids):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")

    def count():
        connection.set_tenant(aquakids)
        with CaptureQueriesContext(connection) as queries:
            assert desk.get(f"/staff/families/{novak.pk}/").status_code == 200
        return len(queries)

    before = count()
    connection.set_tenant(aquakids)
    klass = ClassFactory()
    for _ in range(2):
        enrol(StudentFactory(family=novak), klass)
    FamilyNote.objects.create(family=novak, text="Prefers e-mail", author_name="Desk")
    grandma = Guardian.objects.create(family=novak, first_name="Vera", last_name="Novak")
    ContactPhone.objects.create(family=novak, guardian=grandma, number="+38641555777")
    ContactEmail.objects.create(family=novak, guardian=grandma, email="vera@example.com")
    home = ContactPhone.objects.create(family=novak, number="+38615550199", kind="home")
    later = Session.objects.filter(klass=klass, starts_at__gt=timezone.now()).first()
    for child in novak.students.all():
        MakeupRequest.objects.create(student=child, session=later, missed_session=later)
    assert count() == before
    # The family's own phone (no guardian's) is on the picture too.
    page = desk.get(f"/staff/families/{novak.pk}/").content.decode()
    assert str(home.number) in page and "vera@example.com" in page


def test_staff_notes_are_kept_by_the_database(desk, aquakids):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")
    saved = desk.post(f"/staff/families/{novak.pk}/notes/", {"text": "Pays cash"}, follow=True)
    assert "Note saved." in saved.content.decode() and "Pays cash" in saved.content.decode()
    assert (
        "Write the note first."
        in desk.post(
            f"/staff/families/{novak.pk}/notes/", {"text": "  "}, follow=True
        ).content.decode()
    )
    connection.set_tenant(aquakids)
    note = FamilyNote.objects.get(family=novak)
    assert note.author_name == "Front desk (staff)"
    with pytest.raises(DatabaseError), transaction.atomic():
        FamilyNote.objects.filter(pk=note.pk).update(text="changed")


def test_a_free_place_is_offered_to_the_next_child_on_the_waitlist(desk, aquakids):
    connection.set_tenant(aquakids)
    klass = ClassFactory(capacity=1)
    first = enrol(StudentFactory(), klass)
    waiting = enrol(StudentFactory(), klass)
    assert waiting.status == "waitlisted"
    desk_user = User.objects.get(email="desk@aquakids.test")
    services.enrollment_drop(enrollment=first, actor=desk_user)
    home = desk.get("/staff/").content.decode()
    assert f'action="/staff/classes/{klass.pk}/offer-next/"' in home
    desk.post(f"/staff/classes/{klass.pk}/offer-next/")
    connection.set_tenant(aquakids)
    offer = WaitlistOffer.objects.get(enrollment=waiting)
    assert offer.state == "open" and offer.offered_by_name == "Front desk (staff)"
    refused = desk.post(f"/staff/classes/{klass.pk}/offer-next/", follow=True).content.decode()
    assert "no free place" in refused


def test_another_providers_family_is_not_found_here(desk, aquakids, leaps):
    connection.set_tenant(aquakids)
    beyond = Family.objects.order_by("-pk").first().pk + 1000
    connection.set_tenant(leaps)
    family = Family.objects.create(pk=beyond, name="Only at Leaps")
    assert desk.get(f"/staff/families/{family.pk}/").status_code == 404
    assert "Only at Leaps" not in desk.get("/staff/search/", {"q": "Leaps"}).content.decode()


def test_the_desk_records_a_phoned_in_absence_with_the_parents_rules(desk, aquakids, tonight):
    child = tonight["regular"]
    connection.set_tenant(aquakids)
    session = (
        Session.objects.filter(klass=tonight["klass"], starts_at__date__gt=today())
        .order_by("starts_at")
        .first()
    )
    url = f"/staff/students/{child.pk}/absence/"
    page = desk.get(url).content.decode()
    assert f"Report an absence for {child.first_name}" in page
    day = local(session.starts_at).date().isoformat()
    wrong = desk.post(url, {"starts_at": f"{day}T23:59", "ends_at": f"{day}T00:00"})
    assert "“Back on” must be after “Away from”." in wrong.content.decode()
    assert 'aria-invalid="true"' in wrong.content.decode()
    saved = desk.post(
        url, {"starts_at": f"{day}T00:00", "ends_at": f"{day}T23:59", "reason": "Flu"}, follow=True
    )
    assert "Absence recorded for" in saved.content.decode()
    connection.set_tenant(aquakids)
    absence = Absence.objects.get(student=child)
    assert absence.reason == "Flu" and absence.marks.filter(session=session).exists()
    assert absence.created_by.email == "desk@aquakids.test"


def test_the_family_list_in_the_admin_finds_a_local_phone_and_links_the_picture(desk, aquakids):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")
    page = desk.get("/admin/families/family/", {"q": "041 555 123"}).content.decode()
    assert f'href="/staff/families/{novak.pk}/"' in page
    assert "Okafor" not in page
    everyone = desk.get("/admin/families/family/").content.decode()
    assert "Okafor" in everyone


def test_a_staff_login_reads_staff_pages_in_its_own_language_and_parents_keep_theirs(
    desk, aquakids
):
    assert 'lang="en"' in desk.get("/staff/").content.decode()
    saved = desk.post("/staff/language/", {"language": "de", "next": "/staff/"})
    assert saved.status_code == 302 and saved.url == "/staff/"
    for url in ("/staff/", "/admin/"):
        page = desk.get(url)
        assert page.headers["Content-Language"] == "de"
        assert 'lang="de"' in page.content.decode(), url
    # The portal itself keeps the provider's language, for staff too.
    assert desk.get("/healthz").headers.get("Content-Language", "en") == "en"
    refused = desk.post("/staff/language/", {"language": "xx"}, follow=True)
    assert "Choose one of the languages offered." in refused.content.decode()
    desk.post("/staff/language/", {"language": ""})
    assert desk.get("/staff/").headers["Content-Language"] == "en"


def test_attendance_waits_for_the_day_and_a_cancelled_session_takes_none(desk, aquakids, tonight):
    connection.set_tenant(aquakids)
    regular = Enrollment.objects.get(student=tonight["regular"])
    later = (
        Session.objects.filter(klass=tonight["klass"], starts_at__date__gt=today())
        .order_by("starts_at")
        .first()
    )
    page = desk.post(f"/staff/sessions/{later.pk}/", {f"mark-{regular.pk}": "present"})
    assert "Attendance is taken on the day of the session." in page.content.decode()
    connection.set_tenant(aquakids)
    Session.objects.filter(pk=tonight["session"].pk).update(status="cancelled")
    page = desk.post(f"/staff/sessions/{tonight['session'].pk}/", {"everyone": "present"})
    assert "This session is cancelled" in page.content.decode()
    connection.set_tenant(aquakids)
    assert not Attendance.objects.filter(enrollment=regular).exists()


def test_a_child_dropped_after_being_marked_stays_on_that_roster(desk, aquakids, tonight):
    connection.set_tenant(aquakids)
    session, regular = tonight["session"], Enrollment.objects.get(student=tonight["regular"])
    desk_user = User.objects.get(email="desk@aquakids.test")
    services.attendance_record(
        session=session, enrollment=regular, status="present", actor=desk_user
    )
    Enrollment.objects.filter(pk=regular.pk).update(
        status="dropped", end_date=today() - timedelta(days=1)
    )
    page = desk.get(f"/staff/sessions/{session.pk}/").content.decode()
    assert tonight["regular"].first_name in page and "3 children expected" in page


def test_bad_addresses_and_values_are_refused_without_errors(desk, aquakids, tonight):
    klass, skill = tonight["klass"], tonight["skills"][0]
    for day in ("9999-12-31", "0001-01-01", "yesterday"):
        assert desk.get("/staff/", {"day": day}).status_code == 200
    # A number that is not one: a 400 page naming the parameter (portal.params).
    assert desk.get(f"/staff/classes/{klass.pk}/skills/", {"session": "abc"}).status_code == 400
    url = f"/staff/classes/{klass.pk}/skills/"
    assert desk.post(url, {"student": "abc", "skill": skill.pk}).status_code == 400
    refused = desk.post(url, {"student": tonight["regular"].pk, "skill": "x"})
    assert (
        refused.status_code == 400 and "“skill” must be a whole number" in refused.content.decode()
    )
    assert desk.post(url, {"student": 999999, "skill": skill.pk}).status_code == 404
    # A child who is not in this class cannot be evaluated through it.
    connection.set_tenant(aquakids)
    stranger = StudentFactory()
    assert desk.post(url, {"student": stranger.pk, "skill": skill.pk}).status_code == 404
    # A refused mark answers the grid's cell (not the whole page) with the reason.
    cell = desk.post(
        url,
        {"student": tonight["regular"].pk, "skill": skill.pk, "status": "perfect"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert cell.lstrip().startswith("<td") and "Choose not started, working on it" in cell


def test_e_mails_to_families_keep_the_providers_language_whoever_sends_them(
    desk, aquakids, django_capture_on_commit_callbacks
):
    connection.set_tenant(aquakids)
    User.objects.filter(email="desk@aquakids.test").update(language="de")
    klass = ClassFactory(capacity=1)
    first = enrol(StudentFactory(), klass)
    waiting = enrol(StudentFactory(), klass)
    guardian = Guardian.objects.create(
        family=waiting.student.family, first_name="Pat", last_name="Test", is_primary=True
    )
    guardian.user = User.objects.create_user(email="pat@aquakids.test", password="x-Pass-4821")
    guardian.save()
    services.enrollment_drop(enrollment=first, actor=User.objects.get(email="desk@aquakids.test"))
    assert desk.get("/staff/").headers["Content-Language"] == "de"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        desk.post(f"/staff/classes/{klass.pk}/offer-next/")
    connection.set_tenant(aquakids)
    offer = WaitlistOffer.objects.get(enrollment=waiting)
    [sent] = [m for m in mail.outbox if m.to == ["pat@aquakids.test"]]
    weekday = local(offer.expires_at).strftime("%A")  # English, as the provider's
    assert weekday in sent.body, sent.body


def test_an_evaluation_names_who_recorded_it(desk, aquakids, tonight):
    klass, skill, child = tonight["klass"], tonight["skills"][1], tonight["regular"]
    desk.post(
        f"/staff/classes/{klass.pk}/skills/",
        {"student": child.pk, "skill": skill.pk, "status": "working"},
    )
    connection.set_tenant(aquakids)
    assert Evaluation.objects.get(student=child, skill=skill).recorded_by_name == (
        "Front desk (staff)"
    )


def test_the_staff_home_shows_what_the_books_checks_found_lately(desk, aquakids):
    from billing.services import finding_record
    from portal import clock

    connection.set_tenant(aquakids)
    family = Family.objects.get(name="Novak")
    with clock.moved_to(clock.now() - timedelta(days=8)):
        finding_record(source="check", code="old", message="Fixed a while ago")
    for _ in range(2):  # found again by the next day's check: one line
        finding_record(
            source="check",
            code="order_below_zero",
            message="Order #00002 is below zero",
            family=family,
        )
    finding_record(
        source="reconciliation",
        code="settled",
        message="Settled by reconciliation",
        severity="info",
    )
    page = desk.get("/staff/").content.decode()
    books = page[page.index('id="books-title"') :]
    books = books[: books.index("</section>")]
    assert books.count("Order #00002 is below zero") == 1
    assert f'href="/staff/families/{family.pk}/"' in books
    assert "Fixed a while ago" not in books and "Settled by reconciliation" not in books
    assert 'href="/admin/billing/finding/?severity__exact=problem"' in books
    assert '<span class="desk-count">1</span>' in books


def test_the_books_panel_is_for_staff_who_may_see_findings(aquakids):
    from django.contrib.auth.models import Permission

    connection.set_tenant(aquakids)
    viewer = User.objects.create_user(email="viewer@aquakids.test", password="Sample-pass-4821")
    User.objects.filter(pk=viewer.pk).update(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_session", content_type__app_label="enrollments")
    )
    client = login(client_for("aquakids"), aquakids, "viewer@aquakids.test")
    page = client.get("/staff/").content.decode()
    assert "Today at the desk" in page and 'id="books-title"' not in page
    connection.set_tenant(aquakids)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_finding", content_type__app_label="billing")
    )
    page = client.get("/staff/").content.decode()
    assert 'id="books-title"' in page and "Nothing found: the books hold." in page
