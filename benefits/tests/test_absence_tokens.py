"""Make-up tokens follow their absence: cancelling it takes them back (and
the make-ups still to come), a make-up that took place keeps the absence,
and a token lasts from the session it replaces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from accounts.models import User
from benefits import rules, selectors, services
from benefits.models import MakeupToken, TokenEvent
from benefits.services import BenefitError
from conftest import client_for, login
from enrollments import services as enrollment_services
from enrollments.exceptions import EnrollmentError
from enrollments.models import Absence, Enrollment, Session
from enrollments.tests.factories import ClassFactory, enrol
from portal import clock
from portal.clock import local, today
from providers.models import Provider

from .factories import family_with_child, sibling_class

pytestmark = pytest.mark.django_db


def upcoming(klass, after=None):
    return list(
        Session.objects.filter(
            klass=klass, starts_at__gt=after or clock.now() + timedelta(hours=3)
        ).order_by("starts_at")
    )


def state(token):
    return selectors.token_in_family(token.student.family, token.pk).state


def absence_tokens(student):
    return list(
        MakeupToken.objects.filter(student=student, reason="absence").order_by(
            "source_session__starts_at"
        )
    )


def test_cancelling_an_absence_takes_back_its_tokens_and_future_makeups(
    in_aquakids, django_capture_on_commit_callbacks
):
    family, guardian, student, home = family_with_child(login="away@example.test")
    other = sibling_class(home)
    enrollment = Enrollment.objects.get(student=student)
    missed = upcoming(home, after=clock.now() + timedelta(days=2))[:2]
    absence = enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=missed
    )
    booked_with, unused = absence_tokens(student)
    makeup = services.makeup_book(token=booked_with, session=upcoming(other)[0], actor=guardian)
    assert state(booked_with) == rules.PENDING and state(unused) == rules.AVAILABLE
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        enrollment_services.absence_cancel(absence=absence, actor=guardian)
    assert state(booked_with) == rules.REVOKED and state(unused) == rules.REVOKED
    assert Enrollment.objects.get(pk=makeup.pk).status == "cancelled"
    kinds = [e.kind for e in TokenEvent.objects.filter(token=booked_with).order_by("at", "pk")]
    assert kinds == ["issued", "applied", "returned", "revoked"]
    told = [m for m in mail.outbox if m.subject.startswith("Make-up cancelled")]
    assert len(told) == 1 and told[0].to == ["away@example.test"]
    assert other.programme.name in told[0].body and "was cancelled" in told[0].body
    # Nothing left to book with.
    assert not selectors.token_groups([student]).available


def test_an_absence_whose_makeup_took_place_cannot_be_cancelled(in_aquakids, aquakids):
    family, guardian, student, home = family_with_child(login="used@example.test")
    other = sibling_class(home)
    enrollment = Enrollment.objects.get(student=student)
    soon = upcoming(other, after=clock.now() + timedelta(days=1))[0]
    # The missed session comes after the make-up (tokens may be used ahead).
    missed = upcoming(home, after=soon.ends_at + timedelta(days=7))[0]
    absence = enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=[missed]
    )
    (token,) = absence_tokens(student)
    makeup = services.makeup_book(token=token, session=soon, actor=guardian)
    clock.travel_to(soon.ends_at + timedelta(hours=1))
    with pytest.raises(BenefitError, match="that make-up has taken place"):
        enrollment_services.absence_cancel(absence=absence, actor=guardian)
    assert Absence.objects.get(pk=absence.pk).cancelled_at is None
    assert state(token) == rules.SPENT
    assert Enrollment.objects.get(pk=makeup.pk).status == "active"
    # The page says why, where the button was.
    client = login(client_for("aquakids"), aquakids, "used@example.test")
    page = client.post(f"/absences/{absence.pk}/cancel/", follow=True).content.decode()
    assert "that make-up has taken place, so the absence stays" in page
    connection.set_tenant(aquakids)
    assert Absence.objects.get(pk=absence.pk).cancelled_at is None


def test_a_token_for_a_far_absence_lasts_past_the_lesson_it_replaces(in_aquakids, aquakids):
    Provider.objects.filter(pk=aquakids.pk).update(absence_until_term_end=True)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    family, guardian, student, home = family_with_child()
    long_term = ClassFactory(weekday=2, capacity=5, term_end=today() + timedelta(weeks=30))
    enrollment = enrol(student, long_term)
    far = upcoming(long_term, after=clock.now() + timedelta(weeks=20))[0]
    enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=[far]
    )
    token = MakeupToken.objects.get(student=student, source_session=far)
    missed_on = local(far.starts_at).date()
    assert token.expires_on == missed_on + timedelta(days=60)
    # The same for an absence the office records (staff are not bound).
    desk = User.objects.get(email="desk@aquakids.test")
    farther = upcoming(long_term, after=far.ends_at + timedelta(weeks=2))[0]
    enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=desk, sessions=[farther]
    )
    later = MakeupToken.objects.get(student=student, source_session=farther)
    assert later.expires_on == local(farther.starts_at).date() + timedelta(days=60)


def test_reported_again_after_a_cancellation_the_same_token_comes_back(in_aquakids):
    family, guardian, student, home = family_with_child()
    enrollment = Enrollment.objects.get(student=student)
    missed = upcoming(home, after=clock.now() + timedelta(days=2))[:1]
    first = enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=missed
    )
    (token,) = absence_tokens(student)
    enrollment_services.absence_cancel(absence=first, actor=guardian)
    assert state(token) == rules.REVOKED
    enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=missed
    )
    assert absence_tokens(student) == [token]
    assert state(token) == rules.AVAILABLE
    # A by-date absence over the same session marks nothing new.
    with pytest.raises(EnrollmentError, match="has an absence reported already"):
        enrollment_services.absence_report_by_date(
            student=student,
            actor=guardian,
            starts_at=missed[0].starts_at - timedelta(minutes=5),
            ends_at=missed[0].ends_at,
        )


def test_a_token_of_a_session_the_school_cancelled_stays(in_aquakids):
    family, guardian, student, home = family_with_child()
    enrollment = Enrollment.objects.get(student=student)
    missed = upcoming(home, after=clock.now() + timedelta(days=2))[:1]
    absence = enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=missed
    )
    enrollment_services.session_cancel(session=missed[0], reason="Pool closed")
    enrollment_services.absence_cancel(absence=absence, actor=guardian)
    (token,) = absence_tokens(student)
    assert state(token) == rules.AVAILABLE


@pytest.mark.parametrize("leave", ["transfer", "drop"])
def test_leaving_the_class_takes_back_the_tokens_of_its_sessions_still_to_come(
    in_aquakids, aquakids, django_capture_on_commit_callbacks, leave
):
    """Report the term away, then transfer or drop: the child no longer
    misses those sessions, so their tokens go, with the make-up booked with
    one; a token for a session before the move stays."""
    Provider.objects.filter(pk=aquakids.pk).update(transfer_enabled=True, drop_enabled=True)
    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    family, guardian, student, home = family_with_child(login=f"{leave}@example.test")
    other = sibling_class(home)
    enrollment = Enrollment.objects.get(student=student)
    first, *later = upcoming(home, after=clock.now() + timedelta(days=1))[:4]
    absence = enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=[first, *later]
    )
    kept, booked_with, *unused = absence_tokens(student)
    makeup = services.makeup_book(token=booked_with, session=upcoming(other)[0], actor=guardian)
    mail.outbox.clear()
    # The day of the first missed session: it is past, the others still to come.
    clock.travel_to(local(first.ends_at) + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        if leave == "transfer":
            enrollment_services.enrollment_transfer(
                enrollment=enrollment, to_class=other, actor=guardian
            )
        else:
            enrollment_services.enrollment_drop(enrollment=enrollment, actor=guardian)
    assert state(kept) == rules.AVAILABLE
    assert state(booked_with) == rules.REVOKED
    assert [state(t) for t in unused] == [rules.REVOKED] * len(unused)
    assert Enrollment.objects.get(pk=makeup.pk).status == "cancelled"
    assert [m.to for m in mail.outbox if m.subject.startswith("Make-up cancelled")] == [
        [f"{leave}@example.test"]
    ]
    assert Absence.objects.filter(pk=absence.pk).exists()
