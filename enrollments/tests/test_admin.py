from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from conftest import client_for, login
from enrollments.models import Class, Session, weekly_dates

from .factories import ClassFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


def test_class_list_shows_enrolled_count_capacity_and_waitlist(staff):
    html = staff.get("/admin/enrollments/class/").content.decode()
    assert "2 / 2" in html  # the full Saturday Level 2 class
    assert "enrolled / capacity" in html.lower()


def test_generate_sessions_for_a_term(staff, in_aquakids):
    klass = ClassFactory(sessions=False)
    response = staff.post(
        "/admin/enrollments/class/",
        {"action": "generate_sessions", "_selected_action": [klass.pk]},
        follow=True,
    )
    expected = len(list(weekly_dates(klass.term_start, klass.term_end, klass.weekday)))
    assert expected >= 12 and klass.sessions.count() == expected
    assert f"{expected} sessions created." in response.content.decode()


def test_cancel_a_session_from_admin_notifies_families(
    staff, in_aquakids, django_capture_on_commit_callbacks
):
    klass = Class.objects.get(
        enrollments__student__first_name="Mia",
        enrollments__status="active",
        enrollments__kind="regular",
    )
    session = klass.sessions.filter(starts_at__gt=timezone.now(), status="scheduled").first()
    chosen = {"action": "cancel_sessions", "_selected_action": [session.pk]}
    # The action asks for the reason and an optional livestream link first.
    form = staff.post("/admin/enrollments/session/", chosen).content.decode()
    assert 'name="reason"' in form and 'name="livestream_url"' in form
    # A missing reason is refused on the form; nothing is cancelled.
    refused = staff.post("/admin/enrollments/session/", {**chosen, "preview": "1"}).content
    assert b"This field is required" in refused
    assert not Session.objects.get(pk=session.pk).is_cancelled
    filled = {
        **chosen,
        "reason": "The pool heating failed.",
        "livestream_url": "https://live.example/dryland",
    }
    preview = staff.post("/admin/enrollments/session/", {**filled, "preview": "1"})
    shown = preview.content.decode()
    assert "ana@aquakids.test, sam@aquakids.test" in shown
    assert "The pool heating failed." in shown and "https://live.example/dryland" in shown
    assert "make-up token" in shown
    assert not Session.objects.get(pk=session.pk).is_cancelled and not mail.outbox
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/admin/enrollments/session/", {**filled, "apply": "1"}, follow=True)
    assert "2 guardian(s) notified" in response.content.decode()
    cancelled = Session.objects.get(pk=session.pk)
    assert cancelled.is_cancelled and cancelled.livestream_url == "https://live.example/dryland"
    assert sorted(m.to[0] for m in mail.outbox) == ["ana@aquakids.test", "sam@aquakids.test"]
    assert "https://live.example/dryland" in mail.outbox[0].body


def test_session_page_shows_absences_reported_in_advance(staff, in_aquakids):
    from enrollments import services
    from enrollments.models import Enrollment
    from families.models import Guardian

    ana = Guardian.objects.get(user__email="ana@aquakids.test")
    enrollment = Enrollment.objects.get(student__first_name="Mia", status="active", kind="regular")
    session = enrollment.klass.sessions.filter(starts_at__gt=timezone.now(), status="scheduled")[0]
    services.absence_report_by_enrollment(
        enrollment=enrollment, actor=ana, sessions=[session], reason="Cold"
    )
    html = staff.get(f"/admin/enrollments/session/{session.pk}/change/").content.decode()
    assert "Absences reported in advance" in html and "Mia Novak" in html
    listing = staff.get("/admin/enrollments/session/", {"q": "Swim Level 2"}).content.decode()
    assert "absences reported" in listing.lower()
