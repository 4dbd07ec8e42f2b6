"""Test data for classes and enrolments, built in the current provider schema."""

from __future__ import annotations

from datetime import time, timedelta

import factory

from enrollments import services
from enrollments.models import Class, Location, Programme
from families.models import Family, Student
from portal.clock import today


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    name = factory.Sequence(lambda n: f"Test pool {n}")


class ProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Programme

    name = factory.Sequence(lambda n: f"Test programme {n}")


class ClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Class
        skip_postgeneration_save = True

    programme = factory.SubFactory(ProgrammeFactory)
    location = factory.SubFactory(LocationFactory)
    weekday = 0
    start_time = time(17, 0)
    capacity = 4
    term_start = factory.LazyFunction(lambda: today() - timedelta(weeks=4))
    term_end = factory.LazyFunction(lambda: today() + timedelta(weeks=8))

    @factory.post_generation
    def sessions(self, create, extracted, **kwargs):
        if create and extracted is not False:
            services.sessions_generate(klass=self)


class FamilyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Family

    name = factory.Sequence(lambda n: f"Family{n}")


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Student

    family = factory.SubFactory(FamilyFactory)
    first_name = factory.Sequence(lambda n: f"Kid{n}")
    last_name = "Test"


def enrol(student, klass, **kwargs):
    return services.enrollment_create(
        student=student,
        klass=klass,
        start_date=kwargs.pop("start_date", klass.term_start),
        **kwargs,
    )
