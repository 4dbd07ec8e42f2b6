"""The Benefits section of the dashboard: make-ups and passes follow the
focused child; credits and family discounts are shared by the family."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.sections import Level, Section, Viewer, register

from . import selectors


def benefits_context(viewer: Viewer) -> dict:
    provider = viewer.provider
    students = viewer.focused_students
    location_id = viewer.request.session.get("location_id")
    return {
        # Summaries only, one query each; histories are a click away.
        "tokens": (
            selectors.token_groups(students, location_id, with_history=False)
            if provider.makeup_tokens_enabled
            else None
        ),
        "requests_mode": provider.makeup_requests_enabled and not provider.makeup_tokens_enabled,
        "passes": selectors.pass_groups(viewer.family, students, with_history=False),
        "credit_balance": selectors.family_credit_balance(viewer.family),
        "discounts": selectors.discount_groups(viewer.family, students, with_history=False),
        "focus": viewer.focus,
    }


register(
    Section(
        key="benefits",
        title=_("Benefits"),
        level=Level.CHILD,
        template="benefits/sections.html#benefits",
        order=50,
        context=benefits_context,
    )
)
