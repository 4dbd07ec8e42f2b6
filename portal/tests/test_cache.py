"""The cache backend: one Redis client per connection pool, failing open."""

from __future__ import annotations

from django.core.cache import caches

from portal.cache import FailOpenRedisCache


def test_one_redis_client_serves_every_call():
    cache = caches["default"]
    assert isinstance(cache, FailOpenRedisCache)
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b", write=True) is client
    cache.set("reused-client-check", 41)
    assert cache.incr("reused-client-check") == 42
    assert cache._cache.get_client("c") is client


def test_a_dead_server_reads_as_a_miss():
    dead = FailOpenRedisCache(
        "redis://127.0.0.1:9/0", {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}
    )
    assert dead.get("anything", "fallback") == "fallback"
    assert dead.set("anything", 1) is None
    assert dead.get("anything") is None
