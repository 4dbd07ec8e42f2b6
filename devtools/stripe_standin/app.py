"""The stand-in's aiohttp application and its command line.

localstripe's routes are taken over as they are (its fake Stripe.js at
/js.stripe.com/v3/, /_config/webhooks/<name>, the /v1/ API, the
/_authenticate route of its Stripe.js), with the routes behaviour.py replaces,
and these development routes (no API key needed):

    POST   /_test/reset                          clear the store, idempotency keys
                                                 and faults; webhooks stay
    POST   /_test/faults                         add a fault (faults.py)
    GET    /_test/faults                         the faults still armed
    DELETE /_test/faults                         remove them all
    POST   /_test/payment_intents/<id>/settle    a processing (SEPA) payment succeeds
    POST   /_test/payment_intents/<id>/fail      ... or fails ({"code", "message"})

Middlewares, outermost first: request id, faults, localstripe's error
handling and authentication, idempotency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from localstripe import server as ls_server
from localstripe.errors import UserError
from localstripe.resources import random_id, store
from localstripe.webhooks import _webhooks

from devtools.stripe_standin import behaviour, faults, idempotency

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEYS: web.AppKey[idempotency.IdempotencyStore] = web.AppKey("keys", idempotency.IdempotencyStore)
FAULTS: web.AppKey[faults.Faults] = web.AppKey("faults", faults.Faults)


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["request_id"] = "req_" + random_id(14)
    response = await handler(request)
    response.headers.setdefault("Request-Id", request["request_id"])
    return response


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe's API-key check, except for the development routes."""
    if request.path.startswith("/_test/"):
        return await handler(request)
    return await ls_server.auth_middleware(request, handler)


def api_key(request: web.Request) -> str:
    return ls_server.get_api_key(request) or "publishable"


async def read_params(request: web.Request) -> Any:
    data = await ls_server.get_post_data(request, remove_auth=False)
    return dict(data) if data else {}


def error_response(error: Exception) -> web.Response | None:
    return error.to_response() if isinstance(error, UserError) else None


# --- development routes --------------------------------------------------------


def reset(app: web.Application) -> None:
    store.clear()
    app[KEYS].clear()
    app[FAULTS].clear()


async def post_reset(request: web.Request) -> web.Response:
    reset(request.app)
    return web.json_response({"reset": True, "webhooks": sorted(_webhooks)})


async def delete_config_data(request: web.Request) -> web.Response:
    """localstripe's `DELETE /_config/data`, which now forgets keys too."""
    reset(request.app)
    return web.Response()


async def post_fault(request: web.Request) -> web.Response:
    try:
        spec = await request.json()
        fault = request.app[FAULTS].add(spec)
    except (json.JSONDecodeError, faults.FaultError) as error:
        message = str(error) if isinstance(error, faults.FaultError) else "send JSON"
        return web.json_response(
            {"error": {"type": "invalid_request_error", "message": message}}, status=400
        )
    return web.json_response(fault.as_json())


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": [f.as_json() for f in request.app[FAULTS].all()]})


async def delete_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[FAULTS].clear()})


def intent_action(action: Callable[..., Any]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        text = await request.text()
        try:
            params = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            params = None
        if not isinstance(params, dict) or "id" in params:
            message = "send a JSON object (the intent's id is in the path)"
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": message}}, status=400
            )
        try:
            intent = action(request.match_info["id"], **params)
        except UserError as error:
            return error.to_response()
        return ls_server.json_response(intent._export())

    return handle


# --- the application -------------------------------------------------------------


def build_app(*, idempotency_ttl: float = idempotency.DAY) -> web.Application:
    behaviour.install()
    keys = idempotency.IdempotencyStore(ttl=idempotency_ttl)
    armed = faults.Faults()
    app = web.Application(
        middlewares=[
            request_id,
            faults.middleware(armed),
            ls_server.error_middleware,
            authentication,
            idempotency.middleware(keys, read_params, api_key, error_response),
        ]
    )
    app[KEYS] = keys
    app[FAULTS] = armed
    app.on_response_prepare.append(ls_server.add_cors_headers)

    router = app.router
    router.add_post("/_test/reset", post_reset)
    router.add_post("/_test/faults", post_fault)
    router.add_get("/_test/faults", get_faults)
    router.add_delete("/_test/faults", delete_faults)
    router.add_post("/_test/payment_intents/{id}/settle", intent_action(behaviour.settle))
    router.add_post("/_test/payment_intents/{id}/fail", intent_action(behaviour.fail))
    router.add_delete("/_config/data", delete_config_data)

    replaced = {("DELETE", "/_config/data")}
    for method, path, func in behaviour.EXTRA_ROUTES:
        router.add_route(method, path, ls_server.api_extra(func, path))
        replaced.add((method, path))
    for route in ls_server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if (route.method, path) not in replaced:
            router.add_route(route.method, path, route.handler)
    return app


async def serve(host: str, port: int, idempotency_ttl: float) -> None:
    runner = web.AppRunner(build_app(idempotency_ttl=idempotency_ttl), shutdown_timeout=1)
    await runner.setup()
    hosts = ["127.0.0.1", "::1"] if host == "localhost" else [host]
    for index, name in enumerate(hosts):
        try:
            await web.TCPSite(runner, name, port).start()
        except OSError:
            if index == 0:
                raise  # the first address must work; IPv6 loopback is a bonus
    print(f"stripe stand-in: listening on {', '.join(hosts)} port {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stripe_standin",
        description="The local Stripe stand-in (localstripe, extended).",
    )
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument(
        "--host",
        default="localhost",
        help="address to listen on; 'localhost' (the default) is 127.0.0.1 and ::1",
    )
    parser.add_argument(
        "--idempotency-ttl",
        type=float,
        default=idempotency.DAY,
        help="seconds an Idempotency-Key is remembered (Stripe: 24 hours)",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    if not args.quiet:
        access = logging.getLogger("aiohttp.access")
        access.setLevel(logging.INFO)
        access.addHandler(logging.StreamHandler(sys.stdout))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.idempotency_ttl))
    return 0
