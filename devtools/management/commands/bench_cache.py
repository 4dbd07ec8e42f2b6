"""Microseconds per cache call against the configured Redis: get (hit), get
(miss), set, and get_many of three keys, each timed over --calls calls; the
median of --rounds rounds is printed, with the slowest and fastest round.

It measures the "default" cache as configured (backend, options, key
function) and, with --django-default, Django's own RedisCache on the same
server with the same keys for reference (it makes a new redis.Redis for every
call). Run it with the servers of `make bench` or `make run` up, e.g.:

    python -m devtools services    # in another shell; then export what it prints
    python manage.py bench_cache --django-default
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.management.base import BaseCommand

# A session-sized value: what most cache reads of a page fetch.
VALUE = {
    "_auth_user_id": "4711",
    "_auth_user_backend": "families.backends.PortalBackend",
    "_auth_user_hash": "0f" * 32,
    "focus": 12,
}
KEYS = ["bench-cache:a", "bench-cache:b", "bench-cache:c"]


def django_default_cache() -> BaseCache:
    """Django's built-in Redis backend on the default cache's server and keys."""
    conf = settings.CACHES["default"]
    params: dict[str, Any] = {
        name: conf[name] for name in ("KEY_FUNCTION", "KEY_PREFIX") if name in conf
    }
    params["OPTIONS"] = {"socket_connect_timeout": 0.5, "socket_timeout": 1}
    return RedisCache(conf["LOCATION"], params)


def per_call(operation, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        operation()
    return (time.perf_counter() - start) / calls * 1e6


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=20_000)
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument(
            "--django-default",
            action="store_true",
            help="also time django.core.cache.backends.redis.RedisCache",
        )

    def handle(self, *args, calls, rounds, django_default, **options):
        measured = [("configured", caches["default"])]
        if django_default:
            measured.append(("django-default", django_default_cache()))
        for label, cache in measured:
            self.report(label, cache, calls, rounds)

    def report(self, label: str, cache: BaseCache, calls: int, rounds: int) -> None:
        cache.set("bench-cache:hit", VALUE)
        cache.set_many(dict.fromkeys(KEYS, VALUE))
        cache.delete("bench-cache:miss")
        operations = {
            "get (hit)": lambda: cache.get("bench-cache:hit"),
            "get (miss)": lambda: cache.get("bench-cache:miss"),
            "set": lambda: cache.set("bench-cache:set", VALUE),
            "get_many (3 keys)": lambda: cache.get_many(KEYS),
        }
        if cache.get("bench-cache:hit") != VALUE or len(cache.get_many(KEYS)) != len(KEYS):
            raise SystemExit(f"{label}: the cache does not answer; is Redis up?")
        backend = f"{type(cache).__module__}.{type(cache).__qualname__}"
        self.stdout.write(f"{label}: {backend}, {calls} calls a round, {rounds} rounds")
        for name, operation in operations.items():
            per_call(operation, min(calls, 1000))  # connection made, code warm
            figures = [per_call(operation, calls) for _ in range(rounds)]
            self.stdout.write(
                f"  {name:<18} {statistics.median(figures):7.1f} µs/call "
                f"(rounds {min(figures):.1f}–{max(figures):.1f})"
            )
        cache.delete_many(["bench-cache:hit", "bench-cache:set", *KEYS])
