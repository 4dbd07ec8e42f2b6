"""How often something may be done: one mechanism for every limit.

A limit allows `times` tries per `window` seconds for one key (a family, a
login, an e-mail address, a client address). Tries are counted in the cache
(Redis): `add` starts the window and `incr` counts, atomically, so requests
racing each other cannot slip past the count. Cache keys carry the provider's
schema (settings.CACHES), so each provider counts on its own.

Every limit fails open: while the cache is unreachable nothing is counted or
refused, and each uncounted try is logged to "portal.limits" (the cache also
logs its own error to "portal.cache"). A parent is never locked out because
Redis is down; `make drill` checks that pages and PDFs keep working.

The README's "Limits" section lists each limit and what the user sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from portal.exceptions import PortalError

log = logging.getLogger(__name__)
OUTAGE = (RedisError, OSError, ConnectionInterrupted)

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


@dataclass(frozen=True)
class Limit:
    """`times` tries per `window` seconds for each key. `times_setting` and
    `window_setting` name settings that override them (read on every use);
    `factor` multiplies the tries (the login limit per client address is ten
    times the one per e-mail address)."""

    name: str
    times: int
    window: int
    times_setting: str = ""
    window_setting: str = ""
    factor: int = 1

    @property
    def allowed(self) -> int:
        times = getattr(settings, self.times_setting) if self.times_setting else self.times
        return int(times) * self.factor

    @property
    def seconds(self) -> int:
        window = getattr(settings, self.window_setting) if self.window_setting else self.window
        return int(window)

    def key(self, key: object) -> str:
        return f"limit:{self.name}:{key}"


# Failed logins, per e-mail address (normalised) and per client address.
LOGIN_EMAIL = Limit(
    "login-email", 5, 15 * MINUTE, "LOGIN_THROTTLE_ATTEMPTS", "LOGIN_THROTTLE_WINDOW"
)
LOGIN_ADDRESS = Limit(
    "login-ip", 5, 15 * MINUTE, "LOGIN_THROTTLE_ATTEMPTS", "LOGIN_THROTTLE_WINDOW", factor=10
)
# Gift, pass and promo codes a family tries (redeemed or not).
VOUCHER = Limit("voucher", 10, 15 * MINUTE)
# Password-reset e-mails asked for, per address typed and per client address.
RESET_EMAIL = Limit("reset-email", 3, HOUR)
RESET_ADDRESS = Limit("reset-ip", 20, HOUR)
# Login invitations a family's primary guardian sends.
INVITATION = Limit("invitation", 10, DAY)
# PDFs (statements, ledgers, invoices, credit notes) a login asks for.
PDF = Limit("pdf", 10, MINUTE)
# Problem reports a login sends (each one e-mails the office).
PROBLEM_REPORT = Limit("problem-report", 5, HOUR)
# Children's photos a login uploads (each one is decoded and re-encoded).
PHOTO = Limit("photo", 20, HOUR)


def wait_text(seconds: int) -> str:
    """How long to wait, in words: "12 minutes", "40 seconds", "3 hours"."""
    seconds = max(1, int(seconds))
    if seconds < MINUTE:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    if seconds < 90 * MINUTE:
        minutes = -(-seconds // MINUTE)  # rounded up: never "try again in 0 minutes"
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = -(-seconds // HOUR)
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


class LimitReached(PortalError):
    """Refused by a limit; `retry_after` is the number of seconds until the
    window ends (for the message and the Retry-After header)."""

    def __init__(self, limit: Limit, retry_after: int, *, field: str | None = None):
        self.limit = limit
        self.retry_after = max(1, int(retry_after))
        message = _("Too many tries. Try again in %(wait)s.") % {
            "wait": wait_text(self.retry_after)
        }
        super().__init__(message, field=field)


def _retry_after(limit: Limit, cache_key: str) -> int:
    try:
        # django-redis's extra (not covered by its IGNORE_EXCEPTIONS): guarded here.
        ttl = cache.ttl(cache_key)  # type: ignore[attr-defined]
    except OUTAGE:
        ttl = None
    return int(ttl) if isinstance(ttl, int) and ttl > 0 else limit.seconds


def check(limit: Limit, key: object, *, field: str | None = None) -> None:
    """Refuse (LimitReached) if this key has used up its tries; counts nothing."""
    cache_key = limit.key(key)
    try:
        count = cache.get(cache_key)
    except OUTAGE:
        count = None
    if isinstance(count, int) and count >= limit.allowed:
        raise LimitReached(limit, _retry_after(limit, cache_key), field=field)


def record(limit: Limit, key: object) -> int | None:
    """Count one try; the count so far, or None when the cache is unreachable
    (logged: the try is not counted)."""
    cache_key = limit.key(key)
    try:
        cache.add(cache_key, 0, timeout=limit.seconds)  # starts the window
        count = cache.incr(cache_key)  # keeps the window's expiry
    except ValueError:  # expired between add and incr: a new window
        try:
            cache.set(cache_key, 1, timeout=limit.seconds)
            count = 1
        except OUTAGE:
            count = None
    except OUTAGE:
        count = None
    if not isinstance(count, int):
        log.warning("limit %s: cache unavailable, try not counted (failing open)", limit.name)
        return None
    return count


def take(limit: Limit, key: object, *, field: str | None = None) -> None:
    """Count this try and refuse it (LimitReached) if it is over the limit.
    Counting first makes concurrent tries safe: each gets its own number."""
    count = record(limit, key)
    if count is not None and count > limit.allowed:
        raise LimitReached(limit, _retry_after(limit, limit.key(key)), field=field)


def give_back(limit: Limit, key: object) -> None:
    """Uncount one try taken with `take` that turned out well (a login that
    succeeded: only failures stay counted)."""
    try:
        left = cache.decr(limit.key(key))
    except ValueError:  # the window has passed: nothing to give back
        return
    except OUTAGE:
        left = None
    if not isinstance(left, int):  # the cache answered nothing (ignored outage)
        log.warning("limit %s: cache unavailable, try not given back", limit.name)
    elif left <= 0:
        cache.delete(limit.key(key))


def clear(limit: Limit, key: object) -> None:
    """Forget the tries of this key (a successful login clears its failures)."""
    try:
        cache.delete(limit.key(key))
    except OUTAGE:
        log.warning("limit %s: cache unavailable, count not cleared", limit.name)


def client_address(request) -> str:
    """The client's IP address, for limits kept per address."""
    if settings.SECURE_PROXY_SSL_HEADER:
        # The last entry is the one our own proxy added; earlier ones are the
        # client's word and could be changed on every attempt.
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def refused_page(request, refused: LimitReached, *, back: str) -> HttpResponse:
    """The page for a refused page or document: 429 with Retry-After, the
    message with when to try again, and a way back."""
    response = render(
        request,
        "portal/limit_reached.html",
        {"message": str(refused), "back": back},
        status=429,
    )
    response["Retry-After"] = str(refused.retry_after)
    return response
