from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from enrollments import selectors, services
from enrollments.exceptions import ClassFull, EnrollmentError, FeatureOff
from enrollments.models import (
    Absence,
    AbsenceMark,
    Class,
    Enrollment,
    Session,
)
from families.exceptions import NotAllowed
from families.models import Guardian
from portal.clock import today
from providers.models import Provider

from .factories import ClassFactory, StudentFactory, enrol

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(in_aquakids):
    return Guardian.objects.select_related("user", "family").get(user__email="ana@aquakids.test")


def test_sessions_keep_local_time_across_daylight_saving(in_aquakids):
    klass = ClassFactory(
        weekday=0,
        start_time=time(17, 0),
        term_start=date(2026, 10, 12),
        term_end=date(2026, 11, 2),
        sessions=False,
    )
    assert services.sessions_generate(klass=klass) == 4
    assert services.sessions_generate(klass=klass) == 0  # idempotent
    zone = ZoneInfo("Europe/Ljubljana")
    sessions = list(klass.sessions.order_by("starts_at"))
    assert [s.starts_at.astimezone(zone).time() for s in sessions] == [time(17, 0)] * 4
    # Summer time ends on 25 October 2026: 15:00 UTC before, 16:00 UTC after.
    assert [s.starts_at.astimezone(ZoneInfo("UTC")).hour for s in sessions] == [15, 15, 16, 16]


def test_a_full_class_waitlists_and_the_waitlist_takes_no_place(in_aquakids):
    klass = ClassFactory(capacity=1)
    first = enrol(StudentFactory(), klass)
    second = enrol(StudentFactory(), klass)
    assert first.status == Enrollment.Status.ACTIVE
    assert second.status == Enrollment.Status.WAITLISTED
    assert (
        selectors.with_free_places(Class.objects.filter(pk=klass.pk), on=today()).get().taken == 1
    )
    assert [c.action for c in second.changes.all()] == ["waitlisted"]


def test_transfer_moves_the_place_and_keeps_history(ana):
    mia = ana.family.students.get(first_name="Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    target = Class.objects.get(programme=enrollment.klass.programme, weekday=2)
    new = services.enrollment_transfer(enrollment=enrollment, to_class=target, actor=ana)
    enrollment.refresh_from_db()
    assert enrollment.status == "transferred" and enrollment.transferred_to == new
    assert enrollment.end_date == today() - timedelta(days=1)
    assert new.klass == target and new.status == "active" and new.start_date == today()
    assert [c.action for c in enrollment.changes.all()][-1] == "transferred"
    assert new.changes.get().note.startswith("Transferred from")
    upcoming = selectors.upcoming_sessions([mia], limit=20)
    assert {i.klass.pk for i in upcoming} == {target.pk}


def test_transfer_refuses_full_classes_other_programmes_and_when_switched_off(ana, aquakids):
    mia = ana.family.students.get(first_name="Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    full = Class.objects.get(programme=enrollment.klass.programme, weekday=5)
    with pytest.raises(ClassFull):
        services.enrollment_transfer(enrollment=enrollment, to_class=full, actor=ana)
    other = Class.objects.exclude(programme=enrollment.klass.programme).first()
    with pytest.raises(EnrollmentError, match="same programme"):
        services.enrollment_transfer(enrollment=enrollment, to_class=other, actor=ana)
    Provider.objects.filter(pk=aquakids.pk).update(transfer_enabled=False)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    target = Class.objects.get(programme=enrollment.klass.programme, weekday=2)
    with pytest.raises(FeatureOff):
        services.enrollment_transfer(enrollment=enrollment, to_class=target, actor=ana)
    enrollment.refresh_from_db()
    assert enrollment.status == "active"


def test_only_guardians_allowed_to_manage_enrolments_may(ana):
    sam = Guardian.objects.get(user__email="sam@aquakids.test")
    enrollment = Enrollment.objects.get(student__first_name="Mia", status="active", kind="regular")
    with pytest.raises(NotAllowed, match="may not change"):
        services.enrollment_drop(enrollment=enrollment, actor=sam)
    sam.can_manage_enrollments = True
    services.enrollment_drop(enrollment=enrollment, actor=sam)
    assert Enrollment.objects.get(pk=enrollment.pk).status == "dropped"


def test_drop_releases_future_sessions_and_keeps_the_past(ana):
    mia = ana.family.students.get(first_name="Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    past_before = selectors.attendance_history([enrollment])[enrollment.pk]
    services.enrollment_drop(enrollment=enrollment, actor=ana)
    enrollment.refresh_from_db()
    assert enrollment.status == "dropped"
    assert selectors.upcoming_sessions([mia]) == []
    assert len(selectors.attendance_history([enrollment])[enrollment.pk]) == len(past_before)
    with pytest.raises(EnrollmentError):
        services.enrollment_drop(enrollment=enrollment, actor=ana)
    with pytest.raises(RuntimeError):
        enrollment.delete()


def test_waitlist_cancel(ana):
    leo_wait = Enrollment.objects.get(student__first_name="Leo", status="waitlisted")
    services.waitlist_cancel(enrollment=leo_wait, actor=ana)
    leo_wait.refresh_from_db()
    assert leo_wait.status == "cancelled"
    with pytest.raises(EnrollmentError):
        services.waitlist_cancel(enrollment=leo_wait, actor=ana)


def test_absence_by_date_marks_sessions_across_enrolments_and_can_be_cancelled(ana):
    leo = ana.family.students.get(first_name="Leo")
    enrol_extra = ClassFactory(weekday=2, start_time=time(18, 0), capacity=5)
    enrol(leo, enrol_extra)
    zone = ZoneInfo("Europe/Ljubljana")
    next_wed = today() + timedelta(days=(2 - today().weekday()) % 7 or 7)
    start = datetime.combine(next_wed, time(12, 0), zone)
    absence = services.absence_report_by_date(
        student=leo,
        actor=ana,
        starts_at=start,
        ends_at=start + timedelta(hours=8),
        reason="Dentist",
    )
    marked = {m.session.klass_id for m in absence.marks.select_related("session")}
    assert len(marked) == 2  # both Wednesday classes that day
    upcoming = selectors.upcoming_sessions([leo], limit=10)
    assert any(i.absence_reported for i in upcoming)
    services.absence_cancel(absence=absence, actor=ana)
    assert not any(i.absence_reported for i in selectors.upcoming_sessions([leo], limit=10))
    assert AbsenceMark.objects.filter(absence=absence).count() == 2  # kept, but inactive


def test_absence_rules(ana):
    leo = ana.family.students.get(first_name="Leo")
    now = timezone.now()
    with pytest.raises(EnrollmentError, match="end in the future"):
        services.absence_report_by_date(
            student=leo,
            actor=ana,
            starts_at=now - timedelta(days=3),
            ends_at=now - timedelta(days=2),
        )
    with pytest.raises(EnrollmentError, match="nothing to report"):
        services.absence_report_by_date(
            student=leo,
            actor=ana,
            starts_at=now + timedelta(minutes=1),
            ends_at=now + timedelta(minutes=2),
        )
    enrollment = Enrollment.objects.get(student=leo, status="active", kind="regular")
    sessions = list(Session.objects.filter(klass=enrollment.klass, starts_at__gt=now)[:2])
    absence = services.absence_report_by_enrollment(
        enrollment=enrollment, actor=ana, sessions=sessions
    )
    assert absence.marks.count() == 2
    Absence.objects.filter(pk=absence.pk).update(starts_at=now - timedelta(minutes=1))
    with pytest.raises(EnrollmentError, match="has started"):
        services.absence_cancel(absence=Absence.objects.get(pk=absence.pk), actor=ana)


def test_checkin_token_is_opaque_and_stable(ana):
    mia = ana.family.students.get(first_name="Mia")
    token = services.student_checkin_token(student=mia)
    assert len(token) >= 40 and str(mia.pk) != token
    assert services.student_checkin_token(student=mia) == token
    leo = ana.family.students.get(first_name="Leo")
    assert services.student_checkin_token(student=leo) != token


def test_session_cancel_notifies_the_guardians_of_booked_students(
    ana, django_capture_on_commit_callbacks
):
    from django.core import mail

    mia = ana.family.students.get(first_name="Mia")
    klass = Enrollment.objects.get(student=mia, status="active", kind="regular").klass
    session = klass.sessions.filter(starts_at__gt=timezone.now(), status="scheduled").first()
    with django_capture_on_commit_callbacks(execute=True):
        notified = services.session_cancel(session=session, reason="Lifeguard ill")
    assert "ana@aquakids.test" in notified and "sam@aquakids.test" in notified
    assert "ben@aquakids.test" not in notified
    assert {tuple(m.to) for m in mail.outbox} == {(e,) for e in notified}
    assert "Lifeguard ill" in mail.outbox[0].body and "Mia" in mail.outbox[0].body
    session.refresh_from_db()
    assert session.is_cancelled and session.sequence == 1
