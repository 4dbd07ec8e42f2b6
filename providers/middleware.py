"""Websites that frame the portal without being allowed to: the browser
refuses them (CSP frame-ancestors, portal.middleware); this notes which
websites tried, so staff can allow their own with one click (the embed page)."""

from __future__ import annotations

import logging
from hashlib import sha1

from django.core.cache import cache

from portal.middleware import UNFRAMED

from .branding import origin_normalise
from .services import framing_attempt_record

log = logging.getLogger(__name__)

# A busy page framed by a foreign website writes at most once a window per
# website; the requests in between are counted in the cache.
WINDOW_SECONDS = 60


class FramingAttemptMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.headers.get("Sec-Fetch-Dest") == "iframe":
            try:
                origin = refused_origin(request)
                if origin is not None:
                    note(request.tenant.pk, origin)
            except Exception:
                # Noting is a courtesy: the page is served regardless.
                log.warning("could not note a refused framing", exc_info=True)
        return self.get_response(request)


def refused_origin(request) -> str | None:
    """The framing website, if it is neither the portal itself nor one of the
    provider's allowed websites."""
    provider = getattr(request, "tenant", None)
    if provider is None or provider.is_public or request.path.startswith(UNFRAMED):
        return None
    origin = origin_normalise(_origin_part(request.headers.get("Referer", "")))
    if origin is None:
        return None
    own = origin_normalise(f"{request.scheme}://{request.get_host()}")
    if origin == own or origin in provider.allowed_frame_origins:
        return None
    return origin


def _origin_part(referer: str) -> str:
    scheme, _sep, rest = referer.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else ""


def note_keys(provider_id: int, origin: str) -> tuple[str, str]:
    """The cache keys of a website's count since the last write, and of its
    write window."""
    key = f"framing:{provider_id}:{sha1(origin.encode()).hexdigest()}"
    return f"{key}:n", f"{key}:w"


def note(provider_id: int, origin: str) -> None:
    count_key, window_key = note_keys(provider_id, origin)
    _incr(count_key)
    if not cache.add(window_key, 1, WINDOW_SECONDS):
        return
    seen = int(cache.get(count_key) or 1)
    try:
        cache.decr(count_key, seen)
    except ValueError:  # expired meanwhile
        pass
    framing_attempt_record(provider_id=provider_id, origin=origin, seen=seen)


def _incr(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # not there yet
        cache.add(key, 0, 24 * 3600)
        cache.incr(key)
