"""How fast the Stripe stand-in answers as its store grows: creates (and
confirms) N PaymentIntents one after the other and prints the latency of the
first and the last calls. Figures, not a test.

    python -m devtools.bench_standin                 # starts its own stand-in
    python -m devtools.bench_standin --base http://localhost:8420
    python -m devtools.bench_standin --localstripe --count 500   # the old server

localstripe alone rewrote its whole store to disk (/tmp/localstripe.pickle,
a fixed path, which --localstripe writes too) on every change, so its calls
slowed as the store grew; the stand-in keeps the store in memory.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator

from devtools.servers import BIN, PY, ROOT, free_port, wait_for_port

BODY = urllib.parse.urlencode(
    {"amount": 1500, "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true"}
)
AUTH = "Basic " + base64.b64encode(b"sk_test_bench:").decode()


@contextlib.contextmanager
def server(base: str | None, plain_localstripe: bool) -> Iterator[str]:
    if base:
        yield base
        return
    port = free_port()
    if plain_localstripe:
        command = [str(BIN / "localstripe"), "--port", str(port), "--from-scratch"]
    else:
        command = [PY, "-m", "devtools.stripe_standin", "--port", str(port), "--quiet"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def figures(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[max(0, round(len(ms) * 0.95) - 1)]
    return (
        f"{label:<22} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   "
        f"mean {statistics.fmean(ms):7.1f} ms"
    )


def run(base: str, count: int, window: int) -> None:
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {"Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    latencies: list[float] = []
    started = time.perf_counter()
    for number in range(count):
        headers["Idempotency-Key"] = f"bench-{started}-{number}"
        begin = time.perf_counter()
        connection.request("POST", "/v1/payment_intents", body=BODY, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - begin)
        if response.status != 200:
            raise SystemExit(f"call {number + 1} answered {response.status}")
        if (number + 1) % 500 == 0:
            print(f"  {number + 1} intents, last call {latencies[-1] * 1000:.1f} ms", flush=True)
    total = time.perf_counter() - started
    connection.close()
    window = min(window, count)
    print(f"{count} PaymentIntents created and confirmed in {total:.1f} s against {base}")
    print(figures(f"calls 1-{window}", latencies[:window]))
    print(figures(f"calls {count - window + 1}-{count}", latencies[-window:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench_standin", description=__doc__)
    parser.add_argument("--base", help="a running stand-in (default: start one)")
    parser.add_argument("--count", type=int, default=3000, help="intents to create")
    parser.add_argument("--window", type=int, default=100, help="calls measured at each end")
    parser.add_argument(
        "--localstripe", action="store_true", help="measure plain localstripe instead"
    )
    args = parser.parse_args(argv)
    with server(args.base, args.localstripe) as base:
        run(base, args.count, args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
