"""Make-up requests: the service judges eligibility and permission, a family
can withdraw a request while it waits, "past" means past, and a student has
one active booking per session whatever path books it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from benefits import selectors, services
from benefits.models import MakeupRequest
from benefits.services import BenefitError
from conftest import client_for, login
from enrollments import services as enrollment_services
from enrollments.exceptions import EnrollmentError
from enrollments.models import Enrollment, Session
from enrollments.tests.factories import ClassFactory
from families.exceptions import NotAllowed
from families.models import Guardian
from portal import clock, formatting
from portal.clock import today
from providers.models import Provider

from .factories import family_with_child, sibling_class

pytestmark = pytest.mark.django_db


@pytest.fixture
def requests_mode(aquakids, in_aquakids):
    Provider.objects.filter(pk=aquakids.pk).update(
        makeup_requests_enabled=True, makeup_tokens_enabled=False
    )
    provider = Provider.objects.get(pk=aquakids.pk)
    connection.set_tenant(provider)
    return provider


def first_after(klass, after):
    return Session.objects.filter(klass=klass, starts_at__gt=after).order_by("starts_at")[0]


def test_the_request_rule_lives_in_the_service(requests_mode):
    family, guardian, student, home = family_with_child()
    sibling = sibling_class(home, term_end=today() + timedelta(weeks=12))
    tomorrow = clock.now() + timedelta(days=1)
    elsewhere = first_after(ClassFactory(), tomorrow)  # another programme
    with pytest.raises(BenefitError, match="your child's own programme"):
        services.makeup_request(student=student, session=elsewhere, actor=guardian)
    with pytest.raises(BenefitError, match="own class"):
        services.makeup_request(
            student=student, session=first_after(home, tomorrow), actor=guardian
        )
    far = first_after(sibling, clock.now() + timedelta(weeks=7))
    with pytest.raises(BenefitError, match="in the next 6 weeks"):
        services.makeup_request(student=student, session=far, actor=guardian)
    past = Session.objects.filter(klass=sibling, starts_at__lt=clock.now()).first()
    with pytest.raises(BenefitError, match="Booking closes"):
        services.makeup_request(student=student, session=past, actor=guardian)
    fine = first_after(sibling, tomorrow)
    made = services.makeup_request(student=student, session=fine, actor=guardian, note="Flu")
    assert made.status == "pending" and made.requested_by is None
    assert MakeupRequest.objects.filter(student=student).count() == 1


def test_a_guardian_who_may_not_manage_enrolments_cannot_request(requests_mode, aquakids):
    family, primary, student, home = family_with_child()
    other = Guardian.objects.create(family=family, first_name="Kim", last_name="T")
    session = first_after(sibling_class(home), clock.now() + timedelta(days=1))
    with pytest.raises(NotAllowed, match="may manage enrolments"):
        services.makeup_request(student=student, session=session, actor=other)
    made = services.makeup_request(student=student, session=session, actor=primary)
    with pytest.raises(NotAllowed, match="may manage enrolments"):
        services.makeup_request_withdraw(request=made, actor=other)
    # Sam (the Novaks' second guardian) sees no request page.
    sam = login(client_for("aquakids"), aquakids, "sam@aquakids.test")
    connection.set_tenant(aquakids)
    mia = Guardian.objects.get(user__email="sam@aquakids.test").family.students.first()
    assert sam.get(f"/benefits/makeups/request/{mia.pk}/").status_code == 403
    page = sam.get("/benefits/makeups/").content.decode()
    assert f"/benefits/makeups/request/{mia.pk}/" not in page
    assert "Only a guardian who may manage enrolments can ask for make-ups." in page


def test_a_family_withdraws_a_pending_request_and_staff_see_it(requests_mode, aquakids):
    ana_guardian = Guardian.objects.get(user__email="ana@aquakids.test")
    mia = ana_guardian.family.students.get(first_name="Mia")
    own = Enrollment.objects.filter(student=mia, kind="regular", status="active")[0].klass
    sibling = ClassFactory(programme=own.programme, level=own.level, location=own.location)
    session = first_after(sibling, clock.now() + timedelta(days=1))
    made = services.makeup_request(student=mia, session=session, actor=ana_guardian)
    ana = login(client_for("aquakids"), aquakids, "ana@aquakids.test")
    page = ana.get("/benefits/makeups/").content.decode()
    action = f"/benefits/makeups/requests/{made.pk}/withdraw/"
    assert action in page and "Withdraw request" in page
    after = ana.post(action, follow=True).content.decode()
    assert "Your request is withdrawn." in after and "Withdrawn" in after
    assert action not in after
    connection.set_tenant(aquakids)
    made.refresh_from_db()
    assert made.status == MakeupRequest.Status.WITHDRAWN
    assert made.decided_by == ana_guardian.user and made.decided_at is not None
    with pytest.raises(BenefitError, match="answered this request already"):
        services.makeup_request_withdraw(request=made, actor=ana_guardian)
    staff = User.objects.get(email="desk@aquakids.test")
    with pytest.raises(BenefitError, match="The family withdrew this request"):
        services.makeup_request_decide(request=made, approve=True, actor=staff)
    assert not Enrollment.objects.filter(student=mia, session=session).exists()
    # The office's list shows it, withdrawn.
    admin = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    listing = admin.get("/admin/benefits/makeuprequest/?status__exact=withdrawn")
    assert listing.status_code == 200 and "Withdrawn" in listing.content.decode()
    assert mia.first_name in listing.content.decode()


def test_past_makeups_are_those_that_happened(requests_mode, aquakids):
    family, guardian, student, home = family_with_child(login="past@example.test")
    sibling = sibling_class(home, weekday=2)
    gone = Session.objects.filter(klass=sibling, starts_at__lt=clock.now()).order_by("starts_at")[0]
    coming = first_after(sibling, clock.now() + timedelta(days=1))
    for session in (gone, coming):
        enrollment_services.lock_class(sibling.pk)
        enrollment_services.single_booking_create(student=student, session=session, kind="makeup")
    assert [e.session_id for e in selectors.past_makeups([student])] == [gone.pk]
    assert [e.session_id for e in selectors.upcoming_makeups([student])] == [coming.pk]
    when = {s.pk: formatting.moment(s.starts_at, "weekday_year") for s in (gone, coming)}
    page = login(client_for("aquakids"), aquakids, "past@example.test").get("/benefits/makeups/")
    html = page.content.decode()
    upcoming = html.split("Upcoming make-ups")[1].split("Past make-ups")[0]
    past = html.split("Past make-ups")[1]
    assert when[coming.pk] in upcoming and when[coming.pk] not in past
    assert when[gone.pk] in past


def test_one_active_booking_per_student_and_session(in_aquakids):
    family, guardian, student, home = family_with_child()
    session = first_after(sibling_class(home), clock.now() + timedelta(days=1))
    first = enrollment_services.single_booking_create(
        student=student, session=session, kind="dropin"
    )
    with pytest.raises(EnrollmentError, match="is booked at this session already"):
        enrollment_services.single_booking_create(student=student, session=session, kind="makeup")
    # The database itself refuses, whatever path writes.
    with pytest.raises(IntegrityError, match="one_active_booking_per_student_and_session"):
        with transaction.atomic():
            Enrollment.objects.create(
                student=student,
                klass_id=session.klass_id,
                session=session,
                kind="trial",
                start_date=today(),
                end_date=today(),
            )
    # A cancelled booking leaves the place free to book again.
    enrollment_services.single_booking_cancel(enrollment=first)
    again = enrollment_services.single_booking_create(
        student=student, session=session, kind="makeup"
    )
    assert again.status == "active"
    assert Enrollment.objects.filter(student=student, session=session).count() == 2
