from __future__ import annotations

from django.conf import settings
from django.utils.functional import SimpleLazyObject

from portal.theme import NEUTRAL, Theme


def portal(request):
    provider = getattr(request, "tenant", None)
    if provider is None:
        return {}

    def guardian():
        from families.selectors import guardian_for_request

        return guardian_for_request(request)

    def viewing_as():
        from families.staff import viewing_as as current

        return current(request) if hasattr(request, "session") else None

    def brand_scale_css():
        # The admin's colours (settings.UNFOLD["COLORS"] reads these variables).
        theme = Theme.from_colours(NEUTRAL, NEUTRAL) if provider.is_public else provider.theme
        return theme.scale_css()

    return {
        "brand_scale_css": brand_scale_css,
        "viewing_as": SimpleLazyObject(viewing_as),
        "provider": provider,
        "theme_css": provider.theme.css(),
        "current_guardian": SimpleLazyObject(guardian),
        "DEBUG_OUTBOX": settings.DEBUG,
    }
