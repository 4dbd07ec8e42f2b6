"""Stripe's idempotent requests (docs.stripe.com/api/idempotent_requests).

A POST with an `Idempotency-Key` header is executed once; for 24 hours the
same key (for the same API key) answers with the stored status and body,
marked `Idempotent-Replayed: true`, without acting again. The same key with
other parameters, or on another endpoint, answers 400 with an
`idempotency_error`; while the first request is still running, 409.

What is stored: answers of requests that began executing, that is successes,
card errors (402) and server errors; not those refused before anything was
done (other 4xx: validation, authentication, not found), so a corrected
retry with the same key can go through, as on Stripe.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DAY = 24 * 60 * 60
MAX_KEY_LENGTH = 255


@dataclass
class Answer:
    """A stored answer (or a request still running when `status` is None)."""

    endpoint: str
    fingerprint: str
    created: float
    request_id: str
    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class IdempotencyStore:
    """Answers by (API key, idempotency key), oldest first, forgotten after
    `ttl` seconds. Every operation takes constant (amortised) time."""

    def __init__(self, ttl: float = DAY, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._answers: OrderedDict[tuple[str, str], Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def clear(self) -> None:
        self._answers.clear()

    def expire(self) -> None:
        limit = self.clock() - self.ttl
        while self._answers:
            key, answer = next(iter(self._answers.items()))
            if answer.created > limit:
                break
            del self._answers[key]

    def get(self, scope: str, key: str) -> Answer | None:
        self.expire()
        return self._answers.get((scope, key))

    def begin(
        self, scope: str, key: str, endpoint: str, fingerprint: str, request_id: str
    ) -> Answer:
        answer = Answer(endpoint, fingerprint, self.clock(), request_id)
        self._answers[(scope, key)] = answer
        return answer

    def forget(self, scope: str, key: str) -> None:
        self._answers.pop((scope, key), None)


def fingerprint(params: Any) -> str:
    """The same parameters give the same fingerprint, whatever their order."""
    text = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"type": "idempotency_error", "message": message}}, status=status
    )


def stored(status: int) -> bool:
    return status < 400 or status == 402 or status >= 500


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(
    keys: IdempotencyStore,
    read_params: Callable[[web.Request], Awaitable[Any]],
    scope_of: Callable[[web.Request], str],
    error_response: Callable[[Exception], web.Response | None],
) -> Any:
    """The aiohttp middleware. `read_params` parses the request's parameters,
    `scope_of` names the account (the API key) and `error_response` turns
    the errors localstripe raises into their answer, so those are stored too."""

    @web.middleware
    async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key or not request.path.startswith("/v1/"):
            return await handler(request)
        if len(key) > MAX_KEY_LENGTH:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Invalid idempotency key: at most {MAX_KEY_LENGTH} characters.",
                    }
                },
                status=400,
            )
        scope = scope_of(request)
        endpoint = f"{request.method} {request.path}"
        print_ = fingerprint(await read_params(request))
        previous = keys.get(scope, key)
        if previous is not None:
            if previous.endpoint != endpoint:
                return idempotency_error(
                    400,
                    "Keys for idempotent requests can only be used for the same endpoint "
                    f"they were first used for ('{previous.endpoint}' vs '{endpoint}'). "
                    f"Try using a key other than '{key}' if you meant to execute a "
                    "different request.",
                )
            if previous.fingerprint != print_:
                return idempotency_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                )
            if previous.status is None:
                return idempotency_error(
                    409,
                    "There is currently another in-progress request using this Idempotent "
                    f"Key (that probably means you submitted twice, and the other request "
                    f"is still going through): {key}. Please try again later.",
                )
            return web.Response(
                status=previous.status,
                body=previous.body,
                content_type=previous.content_type,
                headers={
                    **previous.headers,
                    "Idempotency-Key": key,
                    "Idempotent-Replayed": "true",
                    "Original-Request": previous.request_id,
                },
            )

        answer = keys.begin(scope, key, endpoint, print_, request.get("request_id", ""))
        try:
            try:
                response = await handler(request)
            except Exception as error:
                converted = error_response(error)
                if converted is None:
                    raise
                response = converted
        except BaseException:
            keys.forget(scope, key)
            raise
        if not isinstance(response, web.Response) or not stored(response.status):
            keys.forget(scope, key)
            return response
        answer.status = response.status
        answer.body = bytes(response.body or b"")  # type: ignore[arg-type]
        answer.content_type = response.content_type
        response.headers["Idempotency-Key"] = key
        return response

    return idempotency
