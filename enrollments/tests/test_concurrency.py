"""Capacity under concurrency: real threads, real commits, real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django_tenants.utils import tenant_context

from enrollments import selectors, services
from enrollments.exceptions import ClassFull
from enrollments.models import Class, Enrollment, Programme, WaitlistOffer
from families.models import Guardian
from portal.clock import today
from providers.models import Provider

from .factories import ClassFactory, StudentFactory, enrol


@pytest.mark.parametrize("racers", [2, 8])
def test_parents_racing_for_the_last_place_never_overfill_it(committed, race_provider, racers):
    """Threads transfer different students into a class with one free place
    (a class and families of the test's own, in the session's race provider)."""
    Provider.objects.filter(pk=race_provider.pk).update(transfer_enabled=True)
    race_provider.transfer_enabled = True  # parents may transfer here
    provider = race_provider
    with tenant_context(provider):
        programme = Programme.objects.create(name="Race programme")
        target = ClassFactory(programme=programme, capacity=1, sessions=False)
        starts = [
            ClassFactory(programme=programme, capacity=racers, sessions=False) for _ in range(1)
        ]
        parents = []
        for n in range(racers):
            student = StudentFactory()
            guardian = Guardian.objects.create(
                family=student.family, first_name=f"P{n}", last_name="Race", is_primary=True
            )
            parents.append((guardian, enrol(student, starts[0])))
    barrier = threading.Barrier(racers)
    outcomes = []

    def move(guardian, enrollment):
        try:
            with tenant_context(provider):
                barrier.wait()
                services.enrollment_transfer(enrollment=enrollment, to_class=target, actor=guardian)
                outcomes.append("moved")
        except ClassFull:
            outcomes.append("full")
        except Exception as error:  # shown in the assertion below
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=move, args=p) for p in parents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["full"] * (racers - 1) + ["moved"]
    with tenant_context(provider):
        taken = selectors.with_free_places(Class.objects.filter(pk=target.pk), on=today())
        assert taken.get().taken == 1


def _race(provider, *calls):
    """Run the calls in threads released together; what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            with tenant_context(provider):
                barrier.wait()
                outcomes[index] = call()
        except Exception as error:  # noqa: BLE001  (compared below)
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _staff(provider, email, role):
    from accounts import roles
    from providers.services import staff_user_ensure

    return staff_user_ensure(
        provider=provider,
        email=email,
        password="Race-pass-1234",
        full_name=email,
        role=getattr(roles, role),
    )


def test_two_staff_enrolling_the_last_place_one_gets_it_the_other_the_waitlist(
    committed, race_provider
):
    desk_a = _staff(race_provider, "desk-a@race.test", "FRONT_DESK")
    desk_b = _staff(race_provider, "desk-b@race.test", "FRONT_DESK")
    with tenant_context(race_provider):
        klass = ClassFactory(capacity=1, sessions=False)
        kids = [StudentFactory(), StudentFactory()]
    outcomes = _race(
        race_provider,
        *[
            lambda kid=kid, who=who: services.enrollment_create(
                student=kid, klass=klass, start_date=klass.term_start, actor=who
            )
            for kid, who in zip(kids, [desk_a, desk_b], strict=True)
        ],
    )
    assert sorted(o.status for o in outcomes) == ["active", "waitlisted"], outcomes
    with tenant_context(race_provider):
        assert selectors.class_free_places(klass, on=today()) == 0
        assert Enrollment.objects.filter(klass=klass, status="active").count() == 1


def test_staff_and_a_parent_racing_for_the_last_place_never_overfill_it(committed, race_provider):
    desk = _staff(race_provider, "desk-c@race.test", "FRONT_DESK")
    Provider.objects.filter(pk=race_provider.pk).update(transfer_enabled=True)
    race_provider.transfer_enabled = True  # parents may transfer here
    with tenant_context(race_provider):
        programme = Programme.objects.create(name="Mixed race")
        target = ClassFactory(programme=programme, capacity=1, sessions=False)
        start = ClassFactory(programme=programme, capacity=2, sessions=False)
        mover = StudentFactory()
        parent = Guardian.objects.create(
            family=mover.family, first_name="Pat", last_name="Race", is_primary=True
        )
        current = enrol(mover, start)
        walk_in = StudentFactory()
    outcomes = _race(
        race_provider,
        lambda: services.enrollment_create(
            student=walk_in, klass=target, start_date=target.term_start, actor=desk
        ),
        lambda: services.enrollment_transfer(enrollment=current, to_class=target, actor=parent),
    )
    staff_result, parent_result = outcomes
    if isinstance(parent_result, ClassFull):
        assert staff_result.status == "active"
    else:
        assert parent_result.status == "active", outcomes
        assert staff_result.status == "waitlisted", outcomes
    with tenant_context(race_provider):
        assert Enrollment.objects.filter(klass=target, status="active").count() == 1


def test_two_desks_marking_the_same_skill_at_once_leave_one_evaluation(committed, race_provider):
    from enrollments.models import Evaluation, Level, Skill

    desk_a = _staff(race_provider, "desk-a@race.test", "FRONT_DESK")
    desk_b = _staff(race_provider, "desk-b@race.test", "FRONT_DESK")
    with tenant_context(race_provider):
        level = Level.objects.create(name="Race level", order=50)
        skill = Skill.objects.create(level=level, name="Race skill")
        kid = StudentFactory()
    outcomes = _race(
        race_provider,
        lambda: services.evaluation_record(
            student=kid, skill=skill, status="working", actor=desk_a
        ),
        lambda: services.evaluation_record(
            student=kid, skill=skill, status="achieved", actor=desk_b
        ),
    )
    assert all(isinstance(o, Evaluation) for o in outcomes), outcomes
    with tenant_context(race_provider):
        kept = list(Evaluation.objects.filter(student=kid, skill=skill))
        assert len(kept) == 1 and kept[0].status in ("working", "achieved")


def test_two_desks_offering_the_same_free_place_offer_it_once(committed, race_provider):
    desk_a = _staff(race_provider, "desk-a@race.test", "FRONT_DESK")
    desk_b = _staff(race_provider, "desk-b@race.test", "FRONT_DESK")
    with tenant_context(race_provider):
        klass = ClassFactory(capacity=1, sessions=False)
        first = enrol(StudentFactory(), klass)
        enrol(StudentFactory(), klass)
        enrol(StudentFactory(), klass)
        services.enrollment_drop(enrollment=first, actor=desk_a)
    outcomes = _race(
        race_provider,
        lambda: services.waitlist_offer_next(klass=klass, actor=desk_a),
        lambda: services.waitlist_offer_next(klass=klass, actor=desk_b),
    )
    offered = [o for o in outcomes if isinstance(o, WaitlistOffer)]
    refused = [o for o in outcomes if isinstance(o, ClassFull)]
    assert len(offered) == 1 and len(refused) == 1, outcomes
    with tenant_context(race_provider):
        assert WaitlistOffer.objects.filter(enrollment__klass=klass, state="open").count() == 1
