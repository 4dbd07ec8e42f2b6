"""Holes found in review, each pinned by a test."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from conftest import client_for
from enrollments import services as enrollment_services
from enrollments.exceptions import EnrollmentError
from enrollments.models import CalendarFeed, Class, Enrollment, Session
from families import services as family_services
from families.exceptions import InvitationInvalid, NotAllowed
from families.models import Guardian, Student

pytestmark = pytest.mark.django_db


def primary(aquakids):
    connection.set_tenant(aquakids)
    return Guardian.objects.select_related("user", "family").get(user__email="ana@aquakids.test")


def test_a_transfer_to_another_level_is_refused_even_when_posted(aquakids, ana):
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia")
    enrollment = Enrollment.objects.get(student=mia, status="active", kind="regular")
    other_level = Class.objects.create(
        programme=enrollment.klass.programme,
        location=enrollment.klass.location,
        level=Class.objects.exclude(level=enrollment.klass.level).first().level,
        weekday=3,
        start_time="18:00",
        capacity=5,
        term_start=enrollment.klass.term_start,
        term_end=enrollment.klass.term_end,
    )
    response = ana.post(
        f"/enrolments/{enrollment.pk}/transfer/", {"to": other_level.pk}, follow=True
    )
    assert "same level" in response.content.decode()
    assert Enrollment.objects.get(pk=enrollment.pk).status == "active"


def test_the_primary_cannot_take_over_a_working_login(aquakids, ana):
    ana_g = primary(aquakids)
    sam = Guardian.objects.select_related("user").get(user__email="sam@aquakids.test")
    with pytest.raises(NotAllowed, match="can log in already"):
        family_services.invitation_send(
            guardian=sam, actor=ana_g, email="mine@example.com", base_url="http://x"
        )
    response = ana.post(f"/account/guardians/{sam.pk}/invite/", {"email": "mine@example.com"})
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    sam.user.refresh_from_db()
    assert sam.user.email == "sam@aquakids.test" and not sam.invitations.exists()


def test_accepting_over_an_active_login_is_refused(aquakids):
    ana_g = primary(aquakids)
    grace = family_services.guardian_add(
        family=ana_g.family, actor=ana_g, first_name="Grace", last_name="Novak"
    )
    invitation = family_services.invitation_send(
        guardian=grace, actor=ana_g, email="grace@example.com", base_url="http://x"
    )
    token = family_services._invitation_token(invitation)
    family_services.invitation_accept(token=token, password="first-pass-123")
    # Even a link that was somehow still open cannot reset a working login.
    invitation.accepted_at = None
    invitation.save(update_fields=["accepted_at"])
    with pytest.raises(InvitationInvalid):
        family_services.invitation_accept(token=token, password="takeover-pass-9")


def test_location_choice_does_not_redirect_off_site(ana):
    for target in ["/\\evil.example", "//evil.example", "https://evil.example/"]:
        response = ana.post("/location/", {"location": "", "next": target})
        assert response["Location"] == "/", target
    # A control character stays part of a same-site path (percent-encoded).
    tabbed = ana.post("/location/", {"next": "/\tevil"})["Location"]
    assert tabbed.startswith("/") and not tabbed.startswith("//") and "://" not in tabbed
    assert ana.post("/location/", {"next": "/calendar/"})["Location"] == "/calendar/"


def test_absences_only_for_attended_classes_and_never_twice(aquakids, ana):
    connection.set_tenant(aquakids)
    leo = Student.objects.get(first_name="Leo")
    waiting = Enrollment.objects.get(student=leo, status="waitlisted")
    assert ana.get(f"/students/{leo.pk}/absences/by-enrolment/{waiting.pk}/").status_code == 404
    ana_g = primary(aquakids)
    with pytest.raises(EnrollmentError):
        enrollment_services.absence_report_by_enrollment(
            enrollment=waiting,
            actor=ana_g,
            sessions=list(waiting.klass.sessions.filter(starts_at__gt=timezone.now())[:1]),
        )
    active = Enrollment.objects.get(student=leo, status="active", kind="regular")
    session = Session.objects.filter(klass=active.klass, starts_at__gt=timezone.now()).first()
    enrollment_services.absence_report_by_enrollment(
        enrollment=active, actor=ana_g, sessions=[session]
    )
    with pytest.raises(EnrollmentError, match="at least one"):
        enrollment_services.absence_report_by_enrollment(
            enrollment=active, actor=ana_g, sessions=[session]
        )


def test_adding_a_guardian_with_someone_elses_email_changes_nothing(aquakids, ana):
    connection.set_tenant(aquakids)
    before = Guardian.objects.count()
    response = ana.post(
        "/account/guardians/add/",
        {
            "first_name": "Eve",
            "last_name": "X",
            "email": "sam@aquakids.test",
            "send_invitation": "on",
        },
    )
    assert "belongs to another guardian" in response.content.decode()
    assert Guardian.objects.count() == before


def test_revoking_a_guardian_resets_the_calendar_links(aquakids, ana):
    ana.get("/calendar/")
    connection.set_tenant(aquakids)
    live = set(CalendarFeed.objects.filter(revoked_at__isnull=True).values_list("token", flat=True))
    assert len(live) == 3
    sam = Guardian.objects.get(user__email="sam@aquakids.test")
    ana.post(f"/account/guardians/{sam.pk}/revoke/")
    for token in live:
        assert client_for("aquakids").get(f"/calendar/{token}.ics").status_code == 404


def test_bad_guardian_ids_are_refused_not_errors(ana):
    # Not a number: a 400 page naming the parameter (portal.params); no such guardian: 404.
    refused = ana.get("/account/contacts/phone/add/?guardian=abc")
    assert refused.status_code == 400
    assert "“guardian” must be a whole number" in refused.content.decode()
    assert ana.get("/account/contacts/phone/add/?guardian=999999").status_code == 404
    assert ana.post("/account/contacts/phone/1/assign/", {"guardian": "x"}).status_code in (
        400,
        404,
    )
