"""Capacity under concurrency: real threads, real commits, real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django_tenants.utils import tenant_context

from conftest import undo_history
from enrollments import selectors, services
from enrollments.exceptions import ClassFull
from enrollments.models import Class, Enrollment, EnrollmentChange, Programme
from families.models import Guardian
from portal.clock import today
from providers.models import Provider

from .factories import ClassFactory, StudentFactory, enrol


@pytest.mark.parametrize("racers", [2, 8])
def test_parents_racing_for_the_last_place_never_overfill_it(committed, racers):
    """Threads transfer different students into a class with one free place."""
    provider = Provider.objects.get(slug="aquakids")
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
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes) == ["full"] * (racers - 1) + ["moved"]
        with tenant_context(provider):
            taken = selectors.with_free_places(Class.objects.filter(pk=target.pk), on=today())
            assert taken.get().taken == 1
    finally:
        with tenant_context(provider):
            enrollments = Enrollment.objects.filter(klass__programme=programme)
            with undo_history():
                EnrollmentChange.objects.filter(enrollment__in=enrollments).delete()
            Enrollment.objects.filter(
                klass__programme=programme, transferred_to__isnull=False
            ).update(transferred_to=None)
            enrollments.delete()
            Class.objects.filter(programme=programme).delete()
            programme.delete()
            for guardian, _ in parents:
                guardian.family.delete()
