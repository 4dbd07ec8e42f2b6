"""The cache fails open: when Redis is unreachable (restarting, say), reads
miss and writes are dropped, so pages keep rendering from PostgreSQL instead
of turning into error pages. Every miss of that kind is logged.

Django's Redis backend makes a new `redis.Redis` for every cache call, which
copies its table of some 170 reply handlers: about 0.3 ms a call, and a family
page makes three (session, host, page). Here each connection pool gets one
client, made once (a client may be shared between threads: it takes a
connection from the pool for each command)."""

from __future__ import annotations

import functools
import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("portal.cache")
OUTAGE = (RedisConnectionError, RedisTimeoutError, OSError)


def _fail_open(default_from=None):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except OUTAGE as error:
                logger.warning("cache unavailable (%s): %s", method.__name__, error)
                if default_from is not None:
                    return default_from(args, kwargs)
                return None

        return wrapper

    return decorate


def _default(args, kwargs):
    value = kwargs.get("default", args[1] if len(args) > 1 else None)
    return value() if callable(value) else value


class ReusedClientRedis(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        if pool not in self._clients:
            self._clients[pool] = self._client(connection_pool=pool)
        return self._clients[pool]


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedis

    get = _fail_open(_default)(RedisCache.get)
    get_many = _fail_open(lambda args, kwargs: {})(RedisCache.get_many)
    has_key = _fail_open(lambda args, kwargs: False)(RedisCache.has_key)
    add = _fail_open(lambda args, kwargs: False)(RedisCache.add)
    set = _fail_open()(RedisCache.set)
    set_many = _fail_open(lambda args, kwargs: [])(RedisCache.set_many)
    touch = _fail_open(lambda args, kwargs: False)(RedisCache.touch)
    delete = _fail_open(lambda args, kwargs: False)(RedisCache.delete)
    delete_many = _fail_open()(RedisCache.delete_many)
    incr = _fail_open(lambda args, kwargs: 0)(RedisCache.incr)
    get_or_set = _fail_open(_default)(RedisCache.get_or_set)
