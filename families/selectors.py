"""Reads for family pages, scoped to the logged-in guardian's family."""

from __future__ import annotations

from django.http import Http404

from .models import Guardian, Student


def guardian_for_user(user) -> Guardian | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Guardian.objects.select_related("family").filter(user=user).first()


def guardian_for_request(request) -> Guardian | None:
    """The guardian behind this request, looked up once per request."""
    if not hasattr(request, "_portal_guardian"):
        request._portal_guardian = guardian_for_user(request.user)
    return request._portal_guardian


def family_students(family) -> list[Student]:
    return list(Student.objects.filter(family=family))


def focused_student(students: list[Student], raw: str | None) -> Student | None:
    """The child named by `?child=`, which must belong to this family (else 404)."""
    if not raw:
        return None
    for student in students:
        if str(student.pk) == raw:
            return student
    raise Http404("No such child in this family.")
