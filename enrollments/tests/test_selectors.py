"""The one definition of free places: a class's (regular enrolment from a
date) and a session's (who holds a place on the day)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from enrollments import selectors, services
from enrollments.models import Absence, AbsenceMark, Class, Enrollment, Session
from portal.clock import today

from .factories import ClassFactory, StudentFactory, enrol


def test_class_places_count_who_holds_a_place_from_the_day(in_aquakids):
    klass = ClassFactory(capacity=3, sessions=False)
    enrol(StudentFactory(), klass)
    later = enrol(StudentFactory(), klass, start_date=today() + timedelta(weeks=2))
    ended = enrol(StudentFactory(), klass)
    Enrollment.objects.filter(pk=ended.pk).update(end_date=today() - timedelta(days=1))
    assert later.status == Enrollment.Status.ACTIVE
    # Starts later still holds a place (conservative); ended yesterday does not.
    assert selectors.class_free_places(klass, on=today()) == 1
    # Seen from before the end date, the ended enrolment holds its place too.
    assert selectors.class_free_places(klass, on=today() - timedelta(days=7)) == 0


def test_waitlist_holds_no_place_and_free_never_goes_below_zero(in_aquakids):
    klass = ClassFactory(capacity=1, sessions=False)
    enrol(StudentFactory(), klass)
    waiting = enrol(StudentFactory(), klass)
    assert waiting.status == Enrollment.Status.WAITLISTED
    assert selectors.class_free_places(klass, on=today()) == 0
    Class.objects.filter(pk=klass.pk).update(capacity=0)  # staff lowered it
    annotated = selectors.with_free_places(Class.objects.filter(pk=klass.pk), on=today()).get()
    assert (annotated.taken, annotated.free) == (1, 0)


def test_many_classes_in_one_query(in_aquakids):
    classes = [ClassFactory(capacity=2, sessions=False) for _ in range(3)]
    enrol(StudentFactory(), classes[0])
    with CaptureQueriesContext(connection) as queries:
        free = {
            c.pk: c.free
            for c in selectors.with_free_places(
                Class.objects.filter(pk__in=[c.pk for c in classes]), on=today()
            )
        }
    assert len(queries) == 1
    assert free == {classes[0].pk: 1, classes[1].pk: 2, classes[2].pk: 2}


def test_session_places_free_an_absent_regular_and_count_single_bookings(in_aquakids):
    klass = ClassFactory(capacity=2)
    first = enrol(StudentFactory(), klass)
    second = enrol(StudentFactory(), klass)
    session = Session.objects.filter(klass=klass, starts_at__date__gt=today()).first()
    assert selectors.session_free_places(session).free == 0

    absence = Absence.objects.create(
        student=first.student,
        kind=Absence.Kind.choices[0][0],
        starts_at=session.starts_at,
        ends_at=session.ends_at,
    )
    AbsenceMark.objects.create(absence=absence, session=session, enrollment=first)
    places = selectors.session_free_places(session)
    assert places.booked == {second.student_id}
    assert places.free == 1

    guest = StudentFactory()
    services.single_booking_create(student=guest, session=session, kind=Enrollment.Kind.MAKEUP)
    places = selectors.session_free_places(session)
    assert places.booked == {second.student_id, guest.pk}
    assert (places.taken, places.free) == (2, 0)


def test_session_places_query_count_does_not_grow(in_aquakids):
    def count_for(n_classes: int) -> int:
        classes: list[Class] = [ClassFactory.create(capacity=3) for _ in range(n_classes)]
        for klass in classes:
            enrol(StudentFactory(), klass)
        sessions = list(Session.objects.filter(klass__in=classes).select_related("klass"))
        with CaptureQueriesContext(connection) as queries:
            selectors.session_places(sessions)
        return len(queries)

    assert count_for(1) == count_for(4) == 3
