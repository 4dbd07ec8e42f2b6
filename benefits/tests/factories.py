from __future__ import annotations

from datetime import timedelta

from accounts.models import User
from enrollments.tests.factories import ClassFactory, FamilyFactory, StudentFactory, enrol
from families.models import Family, Guardian
from portal.clock import today


def family_with_child(*, login: str | None = None):
    """A family with a primary guardian (optionally with a login) and a child
    enrolled in a class of its own level, which has a sibling class to make up in."""
    family: Family = FamilyFactory.create()
    user = User.objects.create_user(login, "long-enough-pass") if login else None
    guardian = Guardian.objects.create(
        family=family, user=user, first_name="Pat", last_name=family.name, is_primary=True
    )
    student = StudentFactory(family=family, last_name=family.name)
    home = ClassFactory(capacity=10, weekday=0)
    enrol(student, home)
    return family, guardian, student, home


def sibling_class(home, **kwargs):
    """Another class of the same programme, level and location, later in the week."""
    return ClassFactory(
        programme=home.programme,
        location=home.location,
        level=home.level,
        weekday=kwargs.pop("weekday", 3),
        capacity=kwargs.pop("capacity", 10),
        term_start=today() - timedelta(weeks=1),
        **kwargs,
    )
