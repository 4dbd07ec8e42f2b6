"""Family pages served from the cache, exactly as fresh as the database.

A page is cached under its family's data version (families/changes.py:
PostgreSQL records every change a family may see), so a change in any table,
by any path, makes the next request render afresh. The key also holds who is
looking, the URL and HTMX variant, the provider's settings, the parent's
current location and the day; an entry lives at most PAGE_SECONDS, which
bounds what only the clock changes (a session that has just started, a
booking window closing; every action checks those again on the server).

The CSRF token is the only part of a page that belongs to one browser: pages
are rendered with a placeholder that is replaced on the way out. Pages with
messages to show, and staff viewing as a family, are never cached.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone

from families import changes
from families.selectors import guardian_for_request
from portal import clock

PAGE_SECONDS = 60
CSRF_PLACEHOLDER = "csrf-token-of-this-request-0f3c9a"


def family_page(view):
    """For GET views whose page depends only on the family's data, the
    guardian, the URL and the provider."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        key = page_key(request)
        if key is None:
            return view(request, *args, **kwargs)
        cached = cache.get(key)
        if cached is not None:
            content, content_type, vary = cached
            response = HttpResponse(content, content_type=content_type)
            if vary:
                response["Vary"] = vary
        else:
            request.csrf_placeholder = True
            response = view(request, *args, **kwargs)
            if response.status_code != 200 or response.streaming or response.cookies:
                return response
            cache.set(
                key,
                (response.content, response["Content-Type"], response.get("Vary", "")),
                seconds_to_keep(request),
            )
        response.content = response.content.replace(
            CSRF_PLACEHOLDER.encode(), get_token(request).encode()
        )
        response["X-Page-Cache"] = "hit" if cached is not None else "miss"
        return response

    return wrapper


def page_key(request) -> str | None:
    if not settings.PAGE_CACHE:
        return None
    if request.method != "GET" or not request.user.is_authenticated:
        return None
    if request.session.get("view_as_family") or len(messages.get_messages(request)):
        return None
    guardian = guardian_for_request(request)
    if guardian is None:
        return None
    if guardian.user_id == request.user.pk and hasattr(request.user, "family_version"):
        version = request.user.family_version  # read with the parent (families.backends)
    else:
        version = changes.data_version(guardian.family_id)
    parts = [
        str(version or 0),
        str(guardian.pk),
        str(request.user.pk),
        provider_fingerprint(request.tenant),
        request.LANGUAGE_CODE,
        str(request.session.get("location_id", "")),  # the parent's current location
        clock.today().isoformat(),
        request.headers.get("HX-Request", ""),
        request.headers.get("HX-Boosted", ""),
        request.get_full_path(),
    ]
    return "page:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def provider_fingerprint(provider) -> str:
    """Changes with any of the provider's settings (a changed provider is a
    new object: portal.middleware.TenantMiddleware)."""
    found = getattr(provider, "_page_fingerprint", None)
    if found is None:
        values = [(f.attname, str(getattr(provider, f.attname))) for f in provider._meta.fields]
        found = hashlib.sha256(repr(values).encode()).hexdigest()[:16]
        provider._page_fingerprint = found
    return found


def seconds_to_keep(request) -> int:
    """PAGE_SECONDS, or less when the provider's day ends sooner."""
    now = timezone.localtime()
    midnight = timezone.make_aware(datetime.combine(now.date() + timedelta(days=1), time()))
    return max(1, min(PAGE_SECONDS, int((midnight - now).total_seconds())))


def csrf_placeholder(request) -> dict:
    """Context processor: while a page is rendered for the cache, the CSRF
    token is a placeholder (family_page puts this request's token in)."""
    if getattr(request, "csrf_placeholder", False):
        return {"csrf_token": CSRF_PLACEHOLDER}
    return {}
