"""Reads for the provider's staff pages."""

from __future__ import annotations

from .models import FramingAttempt, Provider


def framing_attempts_refused(provider: Provider, limit: int = 50) -> list[FramingAttempt]:
    """Websites that framed the portal and were refused, latest first; a
    website allowed since is left out."""
    allowed = set(provider.allowed_frame_origins)
    attempts = FramingAttempt.objects.filter(provider=provider).order_by("-last_seen", "-pk")
    return [
        attempt for attempt in attempts[: limit + len(allowed)] if attempt.origin not in allowed
    ][:limit]
