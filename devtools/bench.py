"""`make bench`: the portal under load, with production settings.

Runs inside `python -m devtools bench` once the servers are up. It builds the data
(`bench_data`), serves the portal with gunicorn (DEBUG off, persistent
database connections), drives it with wrk from a second process on loopback,
and prints every figure with its goal. No Django here: it only starts
processes and reads what they print.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devtools.servers import database_url_for, ensure_database

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
HOST = "bench.localhost"
PARENTS = 25

WRK_SCRIPT = r"""
local sessions = __SESSIONS__
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("number", counter)
end
function init(args)
  local s = sessions[((number - 1) % #sessions) + 1]
  cookie = s.cookie
  paths = s.paths
  hx = s.hx
  step = (number * 7) % #paths
end
function request()
  step = step % #paths + 1
  local headers = {Host = "__HOST__", Cookie = cookie, ["Accept-Encoding"] = "gzip, br"}
  if hx[step] then headers["HX-Request"] = "true" end
  return wrk.format("GET", paths[step], headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, "max": %f, ' ..
    '"status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def manage(*args: str, capture: bool = False, env: dict | None = None) -> str:
    result = subprocess.run(
        [PY, str(ROOT / "manage.py"), *args],
        check=True,
        cwd=ROOT,
        stdout=subprocess.PIPE if capture else None,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return result.stdout or ""


def large_deployment() -> dict[str, str]:
    """Settings of a second deployment beside the first, on the same servers:
    a database of its own (kept between runs: its providers take minutes to
    make) and a Redis database of its own."""
    database = database_url_for("portal_large")
    ensure_database(database)
    redis = urlsplit(os.environ["REDIS_URL"])
    if redis.scheme == "unix":
        redis_url = f"unix://{redis.path}?db=1"
    else:
        redis_url = redis._replace(path="/1").geturl()
    env = {"DATABASE_URL": database, "REDIS_URL": redis_url}
    manage("migrate_schemas", "--executor=portal", "-v", "0", env=env)
    return env


def apt_install(package: str, present) -> bool:
    """Install a Debian package when `present()` says it is missing."""
    if not present() and shutil.which("apt-get"):
        say(f"installing {package} (apt-get)")
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False)
        if not present():
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False)
    return bool(present())


def ensure_wrk() -> str:
    if not apt_install("wrk", lambda: shutil.which("wrk")):
        raise SystemExit("bench: wrk is needed (Debian package `wrk`)")
    return shutil.which("wrk") or "wrk"


def ensure_harfbuzz_subset() -> None:
    """WeasyPrint subsets fonts with HarfBuzz, as in the production image;
    without the library it falls back to fontTools, about a second slower
    per statement."""
    import ctypes.util

    if not apt_install("libharfbuzz-subset0", lambda: ctypes.util.find_library("harfbuzz-subset")):
        say("libharfbuzz-subset0 missing: PDFs measured with fontTools subsetting")


class Server:
    """gunicorn with production settings on a free port."""

    def __init__(self, port: int, workers: int, threads: int, **env: str):
        self.port, self.workers, self.threads, self.env = port, workers, threads, env
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "portal.wsgi:application",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers),
                "--threads", str(self.threads),
                "--worker-class", "gthread",
                "--keep-alive", "30",
                "--log-level", "warning",
            ],
            cwd=ROOT,
            env={**os.environ, "BENCH_VIEWS": "1", **self.env},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                fetch(self.port, "/healthz")
                return self
            time.sleep(0.2)
        raise SystemExit("bench: gunicorn did not start")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)


def fetch(port: int, path: str, cookie: str = "", headers: dict | None = None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": HOST, "Cookie": cookie, **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def warm(port: int, sessions: list[dict], env: dict | None = None) -> None:
    """Each path once per session: templates loaded, database connections
    open, pages in the cache, before the clock starts. The cache is emptied
    first, so every page is stored afresh: a page already cached would keep
    its earlier expiry and all of them would expire together mid-run (in use,
    pages are cached whenever each parent first opens them)."""
    manage("shell", "-v", "0", "-c", "from django.core.cache import cache; cache.clear()", env=env)
    for session in sessions:
        for path, hx in zip(session["paths"], session["hx"], strict=True):
            fetch(port, path, session["cookie"], {"HX-Request": "true"} if hx else None)


def journey(children: list[int]) -> tuple[list[str], list[bool]]:
    """A parent's mixed journey: dashboard, focus a child (HTMX), payments,
    the charges tab of the history (HTMX), make-ups, back to the family."""
    child = children[0] if children else ""
    steps = [
        ("/", False),
        (f"/?child={child}", True),
        ("/billing/", False),
        ("/billing/?tab=charges&part=history", True),
        ("/benefits/makeups/", False),
        ("/", True),
    ]
    return [p for p, _ in steps], [h for _, h in steps]


WARMUP_SECONDS = 3


def wrk(wrk_bin: str, port: int, sessions: list[dict], seconds: int) -> dict:
    """The figures of `seconds` of load, after WARMUP_SECONDS of the same
    load left unmeasured (a run that starts cold is slower, whatever comes
    first would pay for it)."""
    rows = []
    for s in sessions:
        paths = ",".join(json.dumps(p) for p in s["paths"])
        hx = ",".join("true" if h else "false" for h in s["hx"])
        rows.append(f"{{cookie={json.dumps(s['cookie'])}, paths={{{paths}}}, hx={{{hx}}}}}")
    table = "{" + ",".join(rows) + "}"
    script = WRK_SCRIPT.replace("__SESSIONS__", table).replace("__HOST__", HOST)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        for duration in (WARMUP_SECONDS, seconds):
            output = subprocess.run(
                [
                    wrk_bin,
                    "-t", str(len(sessions)),
                    "-c", str(len(sessions)),
                    "-d", f"{duration}s",
                    "--timeout", "10s",
                    "-s", handle.name,
                    f"http://127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout  # fmt: skip
    finally:
        os.unlink(handle.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def with_journeys(sessions: list[dict]) -> list[dict]:
    return [dict(zip(("paths", "hx"), journey(s["children"]), strict=True)) | s for s in sessions]


def one_path(sessions: list[dict], path: str, hx: bool = False) -> list[dict]:
    return [{**s, "paths": [path], "hx": [hx]} for s in sessions]


def page_weight(port: int, cookie: str) -> dict:
    """Bytes a browser transfers for a first dashboard load: the HTML and
    every stylesheet and script it links, compressed as served."""
    accept = {"Accept-Encoding": "gzip, br"}
    _, headers, body = fetch(port, "/", cookie, accept)
    html = body if headers.get("Content-Encoding") != "gzip" else gzip.decompress(body)
    total, scripts = len(body), 0
    for kind, url in re.findall(
        rb'<(script|link)[^>]+(?:src|href)="(/static/[^"]+)"', html, flags=re.I
    ):
        _, _, asset = fetch(port, url.decode(), cookie, accept)
        total += len(asset)
        if kind.lower() == b"script":
            scripts += len(asset)
    return {"total": total, "scripts": scripts, "html": len(body)}


def load_figures(port: int, wrk_bin: str, sessions: dict, seconds: int) -> dict:
    small, large = with_journeys(sessions["small"]), with_journeys(sessions["large"])
    # Every parent's journey once just before each run: the figures are for
    # pages seen within the cache's minute; `mixed_uncached` is every page
    # rendered afresh.
    warm(port, small)
    _, _, dashboard = fetch(port, "/", small[0]["cookie"])
    figures: dict[str, Any] = {"dashboard_bytes": len(dashboard)}
    figures["dashboard"] = wrk(wrk_bin, port, one_path(small, "/"), seconds)
    figures["static"] = wrk(
        wrk_bin, port, one_path(small, f"/bench/static/?bytes={len(dashboard)}"), seconds
    )
    # Small and large families in turns, three times each, the median run of
    # each compared: one run's p95 moves by a third from the next's here.
    runs: dict[str, list[dict[str, Any]]] = {"small": [], "large": []}
    for _ in range(3):
        for name, group in (("small", small), ("large", large)):
            warm(port, group)
            runs[name].append(wrk(wrk_bin, port, group, seconds))
    for name, results in runs.items():
        ordered = sorted(results, key=lambda r: r["p95"])
        figures[f"mixed_{name}"] = ordered[1] | {
            "p95_runs": [r["p95"] for r in results],
            # Errors of all three runs, not the median one's only.
            "status_errors": sum(r["status_errors"] for r in results),
            "socket_errors": sum(r["socket_errors"] for r in results),
        }
    figures["weight"] = page_weight(port, small[0]["cookie"])
    return figures


def provider_count(env: dict | None = None) -> int:
    out = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from providers.models import Provider; print(Provider.objects.real().count())",
        capture=True,
        env=env,
    )
    return int(out.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make bench ARGS=...")
    parser.add_argument("--providers", type=int, default=1000, help="the large deployment")
    parser.add_argument("--seconds", type=int, default=15, help="each wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pdf-sizes", default="1000,10000")
    parser.add_argument("--skip", default="", help="comma-separated: load,scale,pdf")
    options = parser.parse_args(argv)
    skip = set(filter(None, options.skip.split(",")))
    wrk_bin = ensure_wrk() if {"load", "scale"} - skip else ""
    os.environ["STATIC_ROOT"] = str(Path(os.environ.get("PORTAL_BENCH_DATA", ROOT)) / "static")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("bench_data", "--providers", "10")
    rows: list[tuple[str, str, str]] = []
    port = int(os.environ.get("BENCH_PORT", "8765"))

    if "load" not in skip:
        sessions = json.loads(manage("bench_sessions", "--parents", str(PARENTS), capture=True))
        with Server(port, options.workers, options.threads):
            figures = load_figures(port, wrk_bin, sessions, options.seconds)
        with Server(port, options.workers, options.threads, PAGE_CACHE="0"):
            small = with_journeys(sessions["small"])
            warm(port, small[:4])
            figures["mixed_uncached"] = wrk(wrk_bin, port, small, options.seconds)
        say(json.dumps(figures))
        d, s = figures["dashboard"], figures["static"]
        small, large = figures["mixed_small"], figures["mixed_large"]
        uncached = figures["mixed_uncached"]
        rows += [
            (
                "dashboard req/s ÷ static page of the same size",
                f"{d['rps']:.0f} ÷ {s['rps']:.0f} = {d['rps'] / s['rps']:.2f}",
                "≥ 0.6",
            ),
            (
                f"p95, {PARENTS} parents, mixed journey (small families; median of 3 runs)",
                f"{small['p95']:.0f} ms ({small['rps']:.0f} req/s, "
                f"{small['status_errors'] + small['socket_errors']} errors)",
                "≤ 150 ms, no errors",
            ),
            (
                f"p95, {PARENTS} parents, mixed journey, page cache off (every page rendered)",
                f"{uncached['p95']:.0f} ms ({uncached['rps']:.0f} req/s, "
                f"{uncached['status_errors'] + uncached['socket_errors']} errors)",
                "(for comparison)",
            ),
            (
                "p95 large family ÷ small family (median of 3 runs each, in turns)",
                f"{large['p95']:.0f} ÷ {small['p95']:.0f} ms = {large['p95'] / small['p95']:.2f} "
                f"({large['status_errors'] + large['socket_errors']} errors)",
                "≤ 1.3",
            ),
            (
                "first dashboard load transferred; JavaScript",
                f"{figures['weight']['total'] / 1024:.0f} KB; "
                f"{figures['weight']['scripts'] / 1024:.0f} KB",
                "≤ 150 KB; ≤ 25 KB",
            ),
        ]

    if "scale" not in skip:
        # Two deployments side by side, the same bench provider in each: this
        # one with 10 further providers, a second with --providers. Measured
        # in turns, three times, so that whatever else the machine does
        # weighs on both alike.
        made = manage("bench_data", "--providers", "10", capture=True)
        say(made.strip().splitlines()[-1])
        large = large_deployment()
        made = manage("bench_data", "--providers", str(options.providers), capture=True, env=large)
        say(made.strip().splitlines()[-1])
        deployments: dict[str, dict[str, Any]] = {
            name: {
                "env": env,
                "port": port + offset,
                "total": provider_count(env),
                "sessions": with_journeys(
                    json.loads(
                        manage("bench_sessions", "--parents", str(PARENTS), capture=True, env=env)
                    )["small"]
                ),
                "runs": [],
            }
            for offset, (name, env) in enumerate((("few", {}), ("many", large)))
        }
        with contextlib.ExitStack() as servers:
            for d in deployments.values():
                servers.enter_context(
                    Server(d["port"], options.workers, options.threads, **d["env"])
                )
            for _ in range(3):
                for d in deployments.values():
                    warm(d["port"], d["sessions"], d["env"])
                    d["runs"].append(wrk(wrk_bin, d["port"], d["sessions"], options.seconds)["p95"])
        few, many = deployments["few"], deployments["many"]
        for d in (few, many):
            say(f"{d['total']} providers: p95 {' '.join(f'{r:.0f}' for r in d['runs'])} ms")
        p95_few, p95_many = statistics.median(few["runs"]), statistics.median(many["runs"])
        rows.append(
            (
                f"mixed journey p95 (median of 3 runs in turns), "
                f"{many['total']} providers ÷ {few['total']}",
                f"{p95_many:.0f} ÷ {p95_few:.0f} ms = {p95_many / p95_few:.2f}",
                "≤ 1.1",
            )
        )
        total = many["total"]
        start = time.perf_counter()
        manage("migrate_schemas", "--executor=portal", "-v", "0", env=large)
        seconds = time.perf_counter() - start
        rows.append(
            (
                f"`migrate_schemas`, nothing to migrate, {total} providers",
                f"{seconds:.1f} s = {seconds / (total + 2):.3f} s per schema",
                "well under 0.8 s",
            )
        )
        ready = []
        for _ in range(5):
            out = manage("bench_provider_ready", capture=True, env=large)
            ready.append(float(out.strip().splitlines()[-1]))
        rows.append(
            (
                f"new provider ready to log in ({total} providers exist)",
                f"median {statistics.median(ready):.2f} s of 5",
                "≤ 2 s",
            )
        )

    if "pdf" not in skip:
        ensure_harfbuzz_subset()
        out = manage("bench_documents", f"--sizes={options.pdf_sizes}", capture=True)
        print(out, end="")
        sizes = {}
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0].isdigit():
                sizes[int(parts[0])] = (float(parts[1]), float(parts[2]))
        if sizes:
            first, last = min(sizes), max(sizes)
            rows.append(
                (
                    f"statement PDF, {first:,} lines; {last:,} ÷ {first:,}",
                    f"{sizes[first][0]:.1f} s; {sizes[last][0]:.1f} ÷ {sizes[first][0]:.1f} = "
                    f"{sizes[last][0] / sizes[first][0]:.1f}",
                    "≤ 3 s; ≤ 11",
                )
            )

    print()
    print("| measure | result | goal |")
    print("|---|---|---|")
    for measure, result, goal in rows:
        print(f"| {measure} | {result} | {goal} |")
    return 0
