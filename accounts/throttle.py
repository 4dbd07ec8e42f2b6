"""Login throttling: failed attempts counted in the cache (per provider, since
cache keys carry the schema), per e-mail address and per client address."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
# A cache outage must not lock parents out: throttling fails open (and says so in the log).
OUTAGE = (RedisError, OSError)


def client_address(request) -> str:
    if settings.SECURE_PROXY_SSL_HEADER:
        # The last entry is the one our own proxy added; earlier ones are the
        # client's word and could be changed on every attempt.
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def _keys(email: str, address: str) -> list[tuple[str, int]]:
    limit = settings.LOGIN_THROTTLE_ATTEMPTS
    return [(f"login-fail:email:{email.lower()}", limit), (f"login-fail:ip:{address}", limit * 10)]


def is_locked(email: str, address: str) -> bool:
    try:
        counts = cache.get_many([key for key, _ in _keys(email, address)])
    except OUTAGE:
        log.warning("login throttle: cache unavailable, not throttling")
        return False
    return any(counts.get(key, 0) >= limit for key, limit in _keys(email, address))


def record_failure(email: str, address: str) -> None:
    try:
        _record_failure(email, address)
    except OUTAGE:
        log.warning("login throttle: cache unavailable, failure not counted")


def _record_failure(email: str, address: str) -> None:
    for key, _ in _keys(email, address):
        # add() starts the window; incr() keeps its expiry.
        cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW)


def clear(email: str) -> None:
    try:
        cache.delete(f"login-fail:email:{email.lower()}")
    except OUTAGE:
        pass
