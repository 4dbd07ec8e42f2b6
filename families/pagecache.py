"""Family pages served from the cache, exactly as fresh as the database.

A page is cached under its family's data version (families/changes.py:
PostgreSQL records every change a family may see), so a change in any table,
by any path, makes the next request render afresh. The key also holds who is
looking, the path with every query parameter (sorted), the HTMX variant, the
provider's settings, the language, the day and the choices the page reads
from the session; an entry lives at most PAGE_SECONDS, which bounds what only
the clock changes (a session that has just started, a booking window closing;
every action checks those again on the server).

Every input is in the key by construction: query parameters are all in it,
whatever the view reads, and a page declares the session choices it reads
(`@family_page(session_inputs=("location_id",))`). While a page renders for
the cache its session is watched: a page that reads a choice it did not
declare is served but not cached (and logged), so a forgotten declaration
costs speed, never shows one browser's choice to another.

The CSRF token is the only part of a page that belongs to one browser: pages
are rendered with a placeholder that is replaced on the way out. Pages with
messages to show, and staff viewing as a family, are never cached.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone

from families import changes
from families.selectors import guardian_for_request
from families.staff import SESSION_KEY as VIEW_AS_SESSION_KEY
from portal import clock

PAGE_SECONDS = 60
CSRF_PLACEHOLDER = "csrf-token-of-this-request-0f3c9a"

logger = logging.getLogger(__name__)

# Session choices the base template reads, in every page's key: a login made
# by the pay hand-off (billing.views.PAY_ONLY_SESSION) shows a page without the
# family's navigation.
EVERY_PAGE_SESSION_INPUTS = ("pay_only",)


def _session_key_handled(name: str) -> bool:
    """Keys any cached page may read without declaring them: Django's own
    (starting with "_": the login, messages) and staff's "view as a family",
    with which no page is cached (page_key)."""
    return name.startswith("_") or name == VIEW_AS_SESSION_KEY


def family_page(
    view: Callable[..., Any] | None = None, *, session_inputs: tuple[str, ...] = ()
) -> Any:
    """For GET views whose page depends only on the family's data, the
    guardian, the URL and the provider, and on the session choices named in
    `session_inputs` (e.g. "location_id", the parent's current location)."""
    if view is None:
        return lambda inner: family_page(inner, session_inputs=session_inputs)
    declared = tuple(sorted(set(session_inputs) | set(EVERY_PAGE_SESSION_INPUTS)))

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        key = page_key(request, declared)
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
            watched = WatchedSession(request.session)
            request.session = watched
            try:
                response = view(request, *args, **kwargs)
            finally:
                request.session = watched.store
            undeclared = sorted(
                name
                for name in watched.read
                if name not in declared and not _session_key_handled(name)
            )
            if undeclared:
                logger.warning(
                    "%s read %s from the session without declaring it (family_page "
                    "session_inputs): not cached",
                    request.path,
                    ", ".join(undeclared),
                )
            cacheable = not (
                undeclared or response.status_code != 200 or response.streaming or response.cookies
            )
            if cacheable:
                cache.set(
                    key,
                    (response.content, response["Content-Type"], response.get("Vary", "")),
                    seconds_to_keep(request),
                )
            elif response.streaming:
                return response
        response.content = response.content.replace(
            CSRF_PLACEHOLDER.encode(), get_token(request).encode()
        )
        response["X-Page-Cache"] = "hit" if cached is not None else "miss"
        return response

    wrapper.family_page = True  # type: ignore[attr-defined]
    wrapper.session_inputs = declared  # type: ignore[attr-defined]
    return wrapper


class WatchedSession:
    """The request's session, noting every key read or written (a page
    rendered for the cache must depend only on what its key holds)."""

    ALL = "*every key*"

    def __init__(self, store: Any) -> None:
        self.store = store
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.read.add(key)
        self.store[key] = value

    def __delitem__(self, key: str) -> None:
        self.read.add(key)
        del self.store[key]

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self.store

    def __iter__(self) -> Iterator[str]:
        self.read.add(self.ALL)
        return iter(self.store.keys())

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.store.get(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        self.read.add(key)
        return self.store.pop(key, *default)

    def setdefault(self, key: str, value: Any) -> Any:
        self.read.add(key)
        return self.store.setdefault(key, value)

    def keys(self) -> Any:
        self.read.add(self.ALL)
        return self.store.keys()

    def values(self) -> Any:
        self.read.add(self.ALL)
        return self.store.values()

    def items(self) -> Any:
        self.read.add(self.ALL)
        return self.store.items()


def sorted_query(request) -> str:
    """Every query parameter, in one order whatever order the URL gave
    (a parameter's own values keep theirs)."""
    return urlencode(sorted(request.GET.lists(), key=lambda item: item[0]), doseq=True)


def page_key(request, session_inputs: tuple[str, ...] = ()) -> str | None:
    if not settings.PAGE_CACHE:
        return None
    if request.method != "GET" or not request.user.is_authenticated:
        return None
    if request.session.get(VIEW_AS_SESSION_KEY) or len(messages.get_messages(request)):
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
        clock.today().isoformat(),
        request.headers.get("HX-Request", ""),
        request.headers.get("HX-Boosted", ""),
        request.path,
        sorted_query(request),
        *(f"{name}={request.session.get(name)!r}" for name in session_inputs),
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
