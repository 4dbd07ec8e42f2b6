"""Microseconds per cache call against the configured Redis: get (hit), get
(miss), set, and get_many of three keys, each timed over --calls calls. The
median of --rounds rounds is printed, with the fastest and slowest round.

It measures the "default" cache as configured (backend, options, key
function) and, side by side, each --compare backend class on the same server
with the same keys (Django's own, django.core.cache.backends.redis.RedisCache,
makes a new redis.Redis for every call). The backends take turns within every
round, so the machine's other work weighs on each alike; a compared backend's
figure is also given over the configured cache's of the same round (median of
the rounds). With the servers of `make run` up (`python -m devtools services`
prints their settings):

    python manage.py bench_cache --compare django.core.cache.backends.redis.RedisCache
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

# A session-sized value: what most cache reads of a page fetch.
VALUE = {
    "_auth_user_id": "4711",
    "_auth_user_backend": "families.backends.PortalBackend",
    "_auth_user_hash": "0f" * 32,
    "focus": 12,
}
KEYS = ["bench-cache:a", "bench-cache:b", "bench-cache:c"]


def comparable_cache(path: str) -> BaseCache:
    """Another backend class on the default cache's server and keys, with
    the same socket timeouts given as redis-py's own keyword arguments."""
    conf = settings.CACHES["default"]
    params: dict[str, Any] = {
        name: conf[name] for name in ("KEY_FUNCTION", "KEY_PREFIX") if name in conf
    }
    params["OPTIONS"] = {
        name.lower(): value
        for name, value in conf.get("OPTIONS", {}).items()
        if name.startswith("SOCKET_")
    }
    return import_string(path)(conf["LOCATION"], params)


OPERATIONS = ["get (hit)", "get (miss)", "set", "get_many (3 keys)"]


def operations(cache: BaseCache) -> dict:
    return {
        "get (hit)": lambda: cache.get("bench-cache:hit"),
        "get (miss)": lambda: cache.get("bench-cache:miss"),
        "set": lambda: cache.set("bench-cache:set", VALUE),
        "get_many (3 keys)": lambda: cache.get_many(KEYS),
    }


def per_call(operation, calls: int) -> tuple[float, float]:
    """Microseconds per call: elapsed, and this process's CPU time (what a
    backend itself costs; the server's side and the wait are not in it)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        operation()
    return (
        (time.perf_counter() - start) / calls * 1e6,
        (time.process_time() - cpu) / calls * 1e6,
    )


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=20_000)
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument(
            "--compare", action="append", default=[], help="a backend class, dotted path"
        )

    def handle(self, *args, calls, rounds, compare, **options):
        measured = {"configured": caches["default"]}
        measured.update({path: comparable_cache(path) for path in compare})
        first = measured["configured"]
        first.set("bench-cache:hit", VALUE)
        first.set_many(dict.fromkeys(KEYS, VALUE))
        first.delete("bench-cache:miss")
        for label, cache in measured.items():  # each reads what the first wrote
            answers = cache.get("bench-cache:hit"), cache.get_many(KEYS)
            if answers != (VALUE, dict.fromkeys(KEYS, VALUE)):
                raise SystemExit(f"{label}: no answer, or not the value written; is Redis up?")
            for operation in operations(cache).values():
                per_call(operation, min(calls, 1000))  # connection made, code warm
        timed = {label: operations(cache) for label, cache in measured.items()}
        figures = {}
        for _ in range(rounds):
            for name in OPERATIONS:
                for label in measured:
                    figures.setdefault((label, name), []).append(
                        per_call(timed[label][name], calls)
                    )
        self.stdout.write(
            f"{calls} calls a round, {rounds} rounds: median µs per call (fastest and "
            "slowest round), median CPU µs per call"
        )
        for label, cache in measured.items():
            backend = f"{type(cache).__module__}.{type(cache).__qualname__}"
            self.stdout.write(backend if label == backend else f"{label}: {backend}")
            for name in OPERATIONS:
                rows = figures[(label, name)]
                wall = [elapsed for elapsed, _ in rows]
                line = (
                    f"  {name:<18} {statistics.median(wall):7.1f} "
                    f"({min(wall):.1f}–{max(wall):.1f}), "
                    f"CPU {statistics.median(cpu for _, cpu in rows):.1f}"
                )
                if label != "configured":
                    # Over the configured cache's figures of the same round,
                    # taken just before: the machine's load weighs on both alike.
                    pairs = list(zip(rows, figures[("configured", name)], strict=True))
                    line += (
                        f"; ÷ configured {statistics.median(r[0] / c[0] for r, c in pairs):.2f}, "
                        f"CPU {statistics.median(r[1] / c[1] for r, c in pairs):.2f}"
                    )
                self.stdout.write(line)
        first.delete_many(["bench-cache:hit", "bench-cache:set", *KEYS])
