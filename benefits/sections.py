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
    tokens = None
    if provider.makeup_tokens_enabled:
        tokens = selectors.token_groups(students, location_id, with_history=False)
        selectors.token_advice(tokens.available)  # what to do with one hard to use
    return {
        # Summaries only, one query each; histories are a click away.
        "tokens": tokens,
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
