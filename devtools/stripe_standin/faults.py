"""Failures on demand, so tests can drive the ambiguous cases (Stripe did the
work but we never heard back) over HTTP instead of patching our code.

`POST /_test/faults` registers one, e.g.
    {"method": "POST", "path_prefix": "/v1/payment_intents",
     "mode": "500_after", "times": 1, "delay": 35}
and the next `times` matching requests fail:

- `500_before`: answer 500 without doing anything;
- `500_after`: do the work (store the object, record the idempotency key),
  then answer 500 instead of the result;
- `timeout_after`: do the work, then hold the answer for `delay` seconds
  (long enough for the client to time out) before sending it;
- `connection_reset_after`: do the work, then drop the connection unanswered.

A retry with the same Idempotency-Key after an `*_after` fault gets the stored
answer, which is what Stripe's idempotency gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

MODES = ("500_before", "500_after", "timeout_after", "connection_reset_after")
DEFAULT_DELAY = 35.0


class FaultError(ValueError):
    """A fault description that cannot be used."""


@dataclass
class Fault:
    id: str
    mode: str
    path_prefix: str
    method: str | None
    times: int
    delay: float

    def matches(self, request: web.Request) -> bool:
        return (
            self.times > 0
            and request.path.startswith(self.path_prefix)
            and (self.method is None or self.method == request.method)
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The registered faults, first registered first used."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise FaultError("send a JSON object")
        unknown = set(spec) - {"method", "path_prefix", "mode", "times", "delay"}
        if unknown:
            raise FaultError("unknown fields: " + ", ".join(sorted(unknown)))
        mode = spec.get("mode")
        if mode not in MODES:
            raise FaultError("mode is one of " + ", ".join(MODES))
        method = spec.get("method")
        if method is not None and (not isinstance(method, str) or not method):
            raise FaultError("method is an HTTP method, or absent for any")
        path_prefix = spec.get("path_prefix", "/v1/")
        if not isinstance(path_prefix, str) or not path_prefix.startswith("/v1/"):
            raise FaultError("path_prefix starts with /v1/")
        times = spec.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise FaultError("times is a whole number, at least 1")
        delay = spec.get("delay", DEFAULT_DELAY)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise FaultError("delay is a number of seconds")
        fault = Fault(
            id=f"fault_{next(self._ids)}",
            mode=mode,
            path_prefix=path_prefix,
            method=method.upper() if method else None,
            times=times,
            delay=float(delay),
        )
        self._faults.append(fault)
        return fault

    def take(self, request: web.Request) -> Fault | None:
        """The fault this request meets, if any (and one use of it)."""
        for fault in self._faults:
            if fault.matches(request):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def all(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        return count


def server_error(fault: Fault) -> web.Response:
    return web.json_response(
        {
            "error": {
                "type": "api_error",
                "message": f"An unknown error occurred (fault {fault.id}, {fault.mode}).",
            }
        },
        status=500,
    )


def drop_connection(request: web.Request) -> None:
    """Close the socket with a TCP reset: the client sees the connection
    dropped with no answer at all."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(faults: Faults) -> Any:
    @web.middleware
    async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = faults.take(request)
        if fault is None:
            return await handler(request)
        if fault.mode == "500_before":
            return server_error(fault)
        response = await handler(request)
        if fault.mode == "500_after":
            return server_error(fault)
        if fault.mode == "timeout_after":
            await asyncio.sleep(fault.delay)
            return response
        drop_connection(request)
        # Nothing more can be written; aiohttp gives up on this request quietly.
        raise asyncio.CancelledError

    return inject_faults
