"""Absences a parent reports reach a bounded time ahead (staff are not bound),
and only a guardian who may manage enrolments reports or cancels them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from accounts.models import User
from conftest import client_for, login
from enrollments import services
from enrollments.exceptions import EnrollmentError
from enrollments.models import Absence, Enrollment, Session
from families.exceptions import NotAllowed
from families.models import Guardian
from portal import clock
from portal.clock import today
from providers.models import Provider

from .factories import ClassFactory, StudentFactory, enrol

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(in_aquakids):
    return Guardian.objects.select_related("user", "family").get(user__email="ana@aquakids.test")


@pytest.fixture
def sam(in_aquakids):
    """Ana's partner: a guardian of the family who may not manage enrolments."""
    guardian = Guardian.objects.get(user__email="sam@aquakids.test")
    assert not guardian.may_manage_enrollments
    return guardian


def set_provider(aquakids, **settings):
    Provider.objects.filter(pk=aquakids.pk).update(**settings)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))


def test_a_parent_cannot_report_an_absence_over_years_but_staff_can(ana, in_aquakids):
    leo = ana.family.students.get(first_name="Leo")
    starts = clock.now() + timedelta(days=2)
    ends = clock.now() + timedelta(days=4 * 365)  # "2026-12-05 to 2030-12-31"
    with pytest.raises(EnrollmentError, match="up to 8 weeks ahead") as refused:
        services.absence_report_by_date(student=leo, actor=ana, starts_at=starts, ends_at=ends)
    assert refused.value.field == "ends_at"
    assert not Absence.objects.filter(student=leo).exists()
    # Within the eight weeks: fine.
    within = services.absence_report_by_date(
        student=leo, actor=ana, starts_at=starts, ends_at=clock.now() + timedelta(weeks=7)
    )
    assert within.marks.count() >= 1
    services.absence_cancel(absence=within, actor=ana)
    # The office records what the family phoned in, however long.
    desk = User.objects.get(email="desk@aquakids.test")
    recorded = services.absence_report_by_date(
        student=leo, actor=desk, starts_at=starts, ends_at=ends
    )
    assert recorded.marks.count() >= within.marks.count()


def test_the_provider_may_let_absences_reach_the_end_of_term(in_aquakids, aquakids):
    set_provider(aquakids, absence_max_weeks=2, absence_until_term_end=False)
    family_guardian = Guardian.objects.create(
        family=StudentFactory().family, first_name="Pat", last_name="T", is_primary=True
    )
    student = family_guardian.family.students.get()
    klass = ClassFactory(term_end=today() + timedelta(weeks=10))
    enrollment = enrol(student, klass)
    last_day = clock.local(klass.sessions.order_by("-starts_at")[0].ends_at) + timedelta(hours=1)
    starts = clock.now() + timedelta(days=1)
    with pytest.raises(EnrollmentError, match="up to 2 weeks ahead"):
        services.absence_report_by_date(
            student=student, actor=family_guardian, starts_at=starts, ends_at=last_day
        )
    late = list(Session.objects.filter(klass=klass).order_by("-starts_at")[:1])
    with pytest.raises(EnrollmentError, match="up to 2 weeks ahead") as refused:
        services.absence_report_by_enrollment(
            enrollment=enrollment, actor=family_guardian, sessions=late
        )
    assert refused.value.field == "sessions"

    set_provider(aquakids, absence_until_term_end=True)
    absence = services.absence_report_by_date(
        student=student, actor=family_guardian, starts_at=starts, ends_at=last_day
    )
    assert absence.marks.count() >= 9
    beyond = clock.now() + timedelta(weeks=12)
    with pytest.raises(EnrollmentError, match="up to the end of the term"):
        services.absence_report_by_date(
            student=student, actor=family_guardian, starts_at=starts, ends_at=beyond
        )


def test_the_form_says_how_far_ahead_next_to_the_field(aquakids, ana):
    client = login(client_for("aquakids"), aquakids, "ana@aquakids.test")
    connection.set_tenant(aquakids)
    leo = ana.family.students.get(first_name="Leo")
    page = client.get(f"/students/{leo.pk}/absences/by-date/").content.decode()
    assert "You can report absences until" in page
    starts = clock.local(clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    ends = clock.local(clock.now() + timedelta(days=1500)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/students/{leo.pk}/absences/by-date/",
        {"starts_at": starts, "ends_at": ends, "reason": "World tour"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "up to 8 weeks ahead" in html and "contact the office" in html
    assert 'value="World tour"' in html and f'value="{ends}"' in html
    # Next to the "Back on" field.
    error = html.split('id="id_ends_at_error"')[1].split("</ul>")[0]
    assert "up to 8 weeks ahead" in error


def test_a_guardian_who_may_not_manage_enrolments_cannot_report_or_cancel(aquakids, ana, sam):
    leo = ana.family.students.get(first_name="Leo")
    enrollment = Enrollment.objects.get(student=leo, status="active", kind="regular")
    session = Session.objects.filter(klass=enrollment.klass, starts_at__gt=clock.now()).first()
    with pytest.raises(NotAllowed, match="may manage enrolments"):
        services.absence_report_by_enrollment(enrollment=enrollment, actor=sam, sessions=[session])
    with pytest.raises(NotAllowed, match="may manage enrolments"):
        services.absence_report_by_date(
            student=leo,
            actor=sam,
            starts_at=clock.now() + timedelta(days=1),
            ends_at=clock.now() + timedelta(days=3),
        )
    absence = services.absence_report_by_enrollment(
        enrollment=enrollment, actor=ana, sessions=[session]
    )
    with pytest.raises(NotAllowed, match="may manage enrolments"):
        services.absence_cancel(absence=absence, actor=sam)
    assert Absence.objects.get(pk=absence.pk).cancelled_at is None

    # The pages hide the buttons and refuse the requests.
    client = login(client_for("aquakids"), aquakids, "sam@aquakids.test")
    tab = client.get(f"/students/{leo.pk}/absences/").content.decode()
    assert "Report an absence by date" not in tab
    assert f"/absences/{absence.pk}/cancel/" not in tab
    assert "Only a guardian who may manage enrolments" in tab
    assert client.get(f"/students/{leo.pk}/absences/by-date/").status_code == 403
    assert client.post(f"/absences/{absence.pk}/cancel/").status_code == 403
    connection.set_tenant(aquakids)
    assert Absence.objects.get(pk=absence.pk).cancelled_at is None
    ana_page = login(client_for("aquakids"), aquakids, "ana@aquakids.test")
    assert (
        f"/absences/{absence.pk}/cancel/"
        in ana_page.get(f"/students/{leo.pk}/absences/").content.decode()
    )
