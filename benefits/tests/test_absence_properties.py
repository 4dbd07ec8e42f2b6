"""Property test: whatever a family does with absences, cancellations,
make-up bookings and time, a missed session has at most one usable token,
and a cancelled absence leaves none."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benefits import rules, selectors, services
from benefits.models import MakeupToken
from enrollments import services as enrollment_services
from enrollments.models import Absence, AbsenceMark, Enrollment, Session
from portal import clock
from portal.exceptions import PortalError

from .factories import family_with_child, sibling_class

HOME_SESSIONS = 5
OTHER_SESSIONS = 4

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("report"),
            st.frozensets(st.integers(0, HOME_SESSIONS - 1), min_size=1, max_size=3),
        ),
        st.tuples(st.just("report_by_date"), st.integers(0, HOME_SESSIONS - 1)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("book"), st.integers(0, 5), st.integers(0, OTHER_SESSIONS - 1)),
        st.tuples(st.just("unbook"), st.integers(0, 5)),
        st.tuples(st.just("advance"), st.integers(1, 9)),
    ),
    min_size=1,
    max_size=10,
)


def check(student) -> None:
    active = set(
        AbsenceMark.objects.filter(
            absence__student=student, absence__cancelled_at__isnull=True
        ).values_list("session_id", flat=True)
    )
    usable: Counter[int | None] = Counter()
    tokens = selectors.tokens_with_state(MakeupToken.objects.filter(student=student))
    for token in tokens:
        if rules.token_state(token) in (rules.AVAILABLE, rules.PENDING):
            usable[token.source_session_id] += 1
            # A usable absence token belongs to an absence still reported.
            assert token.source_session_id in active, token
    assert all(n <= 1 for n in usable.values()), usable
    cancelled = AbsenceMark.objects.filter(
        absence__student=student, absence__cancelled_at__isnull=False
    ).values_list("session_id", flat=True)
    for session_id in set(cancelled) - active:
        assert usable[session_id] == 0, session_id
    # Every make-up place still booked is held by the token that booked it
    # (none stays booked on a token that was taken back).
    held = set()
    for with_events in MakeupToken.objects.filter(student=student).prefetch_related("events"):
        applied = rules.applied_event(with_events)
        if applied is not None:
            held.add(applied.enrollment_id)
    booked = set(
        Enrollment.objects.filter(student=student, kind="makeup", status="active").values_list(
            "pk", flat=True
        )
    )
    assert booked == held, (booked, held)


@pytest.mark.django_db
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_absences_cancellations_and_bookings_keep_one_token_per_missed_session(in_aquakids, steps):
    clock.reset()
    family, guardian, student, home = family_with_child()
    other = sibling_class(home)
    enrollment = Enrollment.objects.get(student=student)
    start = clock.now()
    home_sessions = list(
        Session.objects.filter(klass=home, starts_at__gt=start + timedelta(days=2)).order_by(
            "starts_at"
        )[:HOME_SESSIONS]
    )
    other_sessions = list(
        Session.objects.filter(klass=other, starts_at__gt=start + timedelta(hours=3)).order_by(
            "starts_at"
        )[:OTHER_SESSIONS]
    )
    try:
        for step in steps:
            op = step[0]
            absences = list(Absence.objects.filter(student=student).order_by("pk"))
            tokens = list(MakeupToken.objects.filter(student=student).order_by("pk"))
            bookings = list(
                Enrollment.objects.filter(student=student, kind="makeup").order_by("pk")
            )
            try:
                if op == "report":
                    enrollment_services.absence_report_by_enrollment(
                        enrollment=enrollment,
                        actor=guardian,
                        sessions=[home_sessions[i] for i in sorted(step[1])],
                    )
                elif op == "report_by_date":
                    session = home_sessions[step[1]]
                    enrollment_services.absence_report_by_date(
                        student=student,
                        actor=guardian,
                        starts_at=session.starts_at - timedelta(hours=1),
                        ends_at=session.ends_at + timedelta(hours=1),
                    )
                elif op == "cancel" and absences:
                    enrollment_services.absence_cancel(
                        absence=absences[step[1] % len(absences)], actor=guardian
                    )
                elif op == "book" and tokens:
                    services.makeup_book(
                        token=tokens[step[1] % len(tokens)],
                        session=other_sessions[step[2]],
                        actor=guardian,
                    )
                elif op == "unbook" and bookings:
                    services.single_booking_cancel(
                        enrollment=bookings[step[1] % len(bookings)], actor=guardian
                    )
                elif op == "advance":
                    clock.advance(timedelta(days=step[1]))
            except PortalError:
                pass  # a refusal is an answer; the invariants must hold either way
            check(student)
    finally:
        clock.reset()
