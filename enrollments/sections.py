"""Dashboard sections of the enrollments app (both child-level)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.sections import Level, Section, Viewer, register

from . import selectors


def _open_enrollments(viewer: Viewer):
    return viewer.memo(
        "open_enrollments", lambda: selectors.open_enrollments(viewer.focused_students)
    )


def upcoming_context(viewer: Viewer) -> dict:
    return {
        "items": selectors.upcoming_sessions(
            viewer.focused_students, limit=6, enrollments=_open_enrollments(viewer)
        ),
        "show_livestream": viewer.provider.livestream_enabled,
        "many_children": len(viewer.focused_students) > 1,
    }


def bookings_context(viewer: Viewer) -> dict:
    return {
        **selectors.bookings(viewer.focused_students, enrollments=_open_enrollments(viewer)),
        "many_children": len(viewer.focused_students) > 1,
    }


register(
    Section(
        key="upcoming",
        title=_("Upcoming sessions"),
        level=Level.CHILD,
        template="enrollments/sections.html#upcoming",
        order=30,
        context=upcoming_context,
    )
)
register(
    Section(
        key="bookings",
        title=_("Bookings"),
        level=Level.CHILD,
        template="enrollments/sections.html#bookings",
        order=40,
        context=bookings_context,
    )
)
