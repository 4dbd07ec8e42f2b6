"""Dashboard sections contributed by the families app."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.sections import Level, Section, Viewer, register


def guardians_context(viewer: Viewer) -> dict:
    return {"guardians": list(viewer.family.guardians.all()), "me": viewer.guardian}


register(
    Section(
        key="guardians",
        title=_("Guardians"),
        level=Level.FAMILY,
        template="families/sections.html#guardians",
        order=90,
        context=guardians_context,
    )
)
