"""Absences, their tokens and bookings under real concurrency: threads, real
commits, real PostgreSQL (the `race_provider` schema)."""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import partial

from django.db import connections, transaction
from django_tenants.utils import tenant_context

from benefits import rules, selectors, services
from benefits.models import MakeupToken, Pass, TokenEvent
from enrollments import services as enrollment_services
from enrollments.models import Absence, Enrollment, Session
from portal import clock
from portal.exceptions import PortalError

from .factories import family_with_child, sibling_class


def race(provider, attempts) -> list[str]:
    """Each attempt in its own thread and connection, all released at once:
    "ok", or "refused: <the message>", or the unexpected error."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []

    def run(attempt):
        try:
            with tenant_context(provider):
                barrier.wait(timeout=30)
                attempt()
                outcomes.append("ok")
        except PortalError as error:
            outcomes.append(f"refused: {error}")
        except Exception as error:  # surfaced by the assertions
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return sorted(outcomes)


def upcoming(klass, after):
    return list(Session.objects.filter(klass=klass, starts_at__gt=after).order_by("starts_at"))


def absent_for_two_sessions():
    """A child with an absence for two sessions (a token each), and a
    session of a sibling class to make up in."""
    family, guardian, student, home = family_with_child()
    other = sibling_class(home)
    enrollment = Enrollment.objects.get(student=student)
    missed = upcoming(home, clock.now() + timedelta(days=2))[:2]
    absence = enrollment_services.absence_report_by_enrollment(
        enrollment=enrollment, actor=guardian, sessions=missed
    )
    tokens = list(MakeupToken.objects.filter(student=student).order_by("pk"))
    makeup_session = upcoming(other, clock.now() + timedelta(hours=3))[0]
    return guardian, student, absence, tokens, makeup_session


def test_the_same_absence_cancelled_ten_times_at_once(committed, race_provider):
    with tenant_context(race_provider):
        guardian, student, absence, tokens, session = absent_for_two_sessions()
        makeup = services.makeup_book(token=tokens[0], session=session, actor=guardian)
    outcomes = race(
        race_provider,
        [lambda: enrollment_services.absence_cancel(absence=absence, actor=guardian)] * 10,
    )
    assert outcomes == ["ok"] + ["refused: This absence was cancelled already."] * 9
    with tenant_context(race_provider):
        assert Absence.objects.get(pk=absence.pk).cancelled_at is not None
        for token in tokens:
            kinds = [e.kind for e in TokenEvent.objects.filter(token=token)]
            assert kinds.count("revoked") == 1, kinds
        assert [e.kind for e in TokenEvent.objects.filter(token=tokens[0])].count("returned") == 1
        assert Enrollment.objects.get(pk=makeup.pk).status == "cancelled"


def test_a_token_booked_while_its_absence_is_cancelled(committed, race_provider):
    """Whichever comes first, the end is the same: the absence cancelled, its
    tokens revoked, and no make-up place left booked with them."""
    seen = set()
    for _round in range(4):
        with tenant_context(race_provider):
            guardian, student, absence, tokens, session = absent_for_two_sessions()
        outcomes = race(
            race_provider,
            [
                partial(enrollment_services.absence_cancel, absence=absence, actor=guardian),
                partial(services.makeup_book, token=tokens[1], session=session, actor=guardian),
            ],
        )
        assert "ok" in outcomes and all(o == "ok" or o.startswith("refused") for o in outcomes)
        seen.add(tuple(outcomes))
        with tenant_context(race_provider):
            assert Absence.objects.get(pk=absence.pk).cancelled_at is not None
            for token in tokens:
                assert selectors.token_in_family(student.family, token.pk).state == rules.REVOKED
            assert not Enrollment.objects.filter(
                student=student, kind="makeup", status="active"
            ).exists()
    # Each outcome is one of the two consistent ones.
    assert seen <= {
        ("ok", "ok"),
        ("ok", "refused: This token can no longer be used (revoked)."),
    }, seen


def test_two_bookings_of_one_child_to_one_session_at_once(committed, race_provider):
    with tenant_context(race_provider):
        family, guardian, student, home = family_with_child()
        session = upcoming(sibling_class(home), clock.now() + timedelta(hours=3))[0]

    def book(kind):
        def attempt():
            with transaction.atomic():  # no class lock: the database decides
                enrollment_services.single_booking_create(
                    student=student, session=session, kind=kind
                )

        return attempt

    outcomes = race(race_provider, [book("dropin"), book("trial")])
    name = student.first_name
    assert outcomes == ["ok", f"refused: {name} is booked at this session already."]

    # Through the services: a token and a punch card for the same session.
    with tenant_context(race_provider):
        later = upcoming(session.klass, session.ends_at)[0]
        token = services.token_issue(student=student, reason="goodwill")
        card = services.pass_create(family=family, kind=Pass.Kind.PUNCH, name="Two", punches=2)
    outcomes = race(
        race_provider,
        [
            lambda: services.makeup_book(token=token, session=later, actor=guardian),
            lambda: services.pass_book(
                pass_obj=card, student=student, session=later, actor=guardian
            ),
        ],
    )
    assert outcomes[0] == "ok" and outcomes[1].startswith("refused: ")
    assert "Already booked for this session." in outcomes[1]
    with tenant_context(race_provider):
        assert (
            Enrollment.objects.filter(student=student, session=later, status="active").count() == 1
        )
