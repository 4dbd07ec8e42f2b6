"""The cache (django-redis, configured in portal/settings.py): one Redis client
serves every call, and a cache that cannot reach Redis fails open."""

from __future__ import annotations

import logging

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.utils.module_loading import import_string
from django_redis import get_redis_connection


def test_one_redis_client_serves_every_call(monkeypatch):
    cache = caches["default"]
    client = get_redis_connection("default")
    made = []
    make = redis.Redis.__init__

    def counted(self, *args, **kwargs):
        made.append(self)
        make(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counted)
    cache.set("reused-client-check", 41)
    assert cache.incr("reused-client-check") == 42
    assert cache.get_many(["reused-client-check", "absent"]) == {"reused-client-check": 42}
    assert cache.add("reused-client-check", 0) is False
    assert cache.has_key("reused-client-check")
    assert cache.delete("reused-client-check")
    assert cache.get("reused-client-check", "gone") == "gone"
    assert made == []
    assert get_redis_connection("default") is client


def test_the_hosts_cache_keeps_its_prefix_and_timeout():
    hosts = caches["hosts"]
    hosts.set("host:example.test", "provider")
    raw = get_redis_connection("hosts")
    key = hosts.make_key("host:example.test")
    assert key.startswith("portal-hosts:")
    assert 0 < raw.ttl(key) <= 60


def dead_cache(location: str):
    """The project's default cache, pointed at a server that is not there."""
    params = {**settings.CACHES["default"], "LOCATION": location}
    return import_string(params.pop("BACKEND"))(params.pop("LOCATION"), params)


@pytest.mark.parametrize(
    "location",
    ["unix:///nonexistent/portal-test/redis.sock?db=0", "redis://127.0.0.1:9/0"],
    ids=["unix-socket", "closed-port"],
)
def test_a_dead_server_reads_as_a_miss_and_drops_writes(location, caplog):
    dead = dead_cache(location)
    caplog.set_level(logging.WARNING, logger="portal.cache")
    assert dead.get("anything", "fallback") == "fallback"
    assert dead.get("anything") is None
    assert dead.get_many(["anything", "else"]) == {}
    assert dead.get_or_set("anything", 7) == 7
    assert not dead.has_key("anything")
    assert not dead.add("anything", 1)
    assert not dead.set("anything", 1)
    assert not dead.set_many({"anything": 1})
    assert not dead.incr("anything")
    assert not dead.decr("anything")
    assert not dead.delete("anything")
    assert not dead.delete_many(["anything"])
    records = [r for r in caplog.records if r.name == "portal.cache"]
    assert len(records) >= 12
    assert all(r.levelno >= logging.WARNING for r in records)
    assert all(isinstance(r.exc_info[1].__cause__, redis.ConnectionError) for r in records)
