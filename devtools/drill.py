"""`make drill`: restart Redis and PostgreSQL under a browsing parent.

Runs inside `python -m devtools drill` on embedded servers it owns (never on
configured ones: it stops them). It serves the demo portal with gunicorn and
a Celery worker (production settings), has a parent load pages every 0.2 s,
then stops Redis, starts it again, stops PostgreSQL and starts it again,
without touching the web or worker processes. It prints what the parent saw
and exits non-zero if the portal did not keep working or recover by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import AnyStr

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
HOST = "aquakids.localhost"
PORT = int(os.environ.get("DRILL_PORT", "8766"))


def say(message: str) -> None:
    print(f"drill: {message}", flush=True)


class Parent(threading.Thread):
    """Loads the dashboard and the payments page in turn, recording each
    answer (status, or the error) with its time."""

    def __init__(self, cookie: str):
        super().__init__(daemon=True)
        self.cookie = cookie
        self.log: list[tuple[float, str]] = []
        self.running = True

    def run(self) -> None:
        paths = ["/", "/billing/"]
        n = 0
        while self.running:
            n += 1
            try:
                status, _, _ = request(paths[n % 2], self.cookie)
                self.log.append((time.monotonic(), str(status)))
            except Exception as error:  # noqa: BLE001  (what the parent saw)
                self.log.append((time.monotonic(), type(error).__name__))
            time.sleep(0.2)

    def since(self, start: float) -> list[str]:
        return [answer for at, answer in self.log if at >= start]


def request(path: str, cookie: str, data: dict | None = None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=body, headers={"Host": HOST, "Cookie": cookie}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


urllib.request.install_opener(urllib.request.build_opener(NoRedirect))


def _group(found: re.Match[AnyStr] | None) -> AnyStr:
    """The first group of a match the drill depends on."""
    assert found is not None, "the page is not as the drill expects"
    return found.group(1)


def request_statement(cookie: str) -> int:
    """As the parent does on the payments page: the form with its CSRF token."""
    _, headers, page = request("/billing/", cookie)
    token = _group(re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)).decode()
    csrf = _group(re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", "")))
    status, headers, _ = request(
        "/billing/documents/",
        f"{cookie}; csrftoken={csrf}",
        {"csrfmiddlewaretoken": token, "kind": "statement"},
    )
    assert status == 302, f"asking for a statement answered {status}"
    return int(_group(re.search(r"/billing/documents/(\d+)/", headers["Location"])))


def document_status(cookie: str, pk: int) -> str:
    _, _, page = request(f"/billing/documents/{pk}/", cookie)
    for marker, status in [
        (b"Download PDF", "Ready"),
        (b"could not make", "Failed"),
        (b"Preparing your PDF", "Being prepared"),
    ]:
        if marker in page:
            return status
    return "unknown"


def wait_for(check, seconds: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def summary(answers: list[str]) -> str:
    counts: dict[str, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    return ", ".join(f"{n} × {answer}" for answer, n in sorted(counts.items())) or "none"


def main(services, manage) -> int:
    manage("collectstatic", "--noinput", "-v", "0")
    manage("seed_demo")
    cookie = json.loads(
        subprocess.run(
            [PY, "manage.py", "bench_sessions", "--login", "aquakids:ana@aquakids.test"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )["cookie"]  # fmt: skip
    worker_log = Path(os.environ["PORTAL_DRILL_DATA"]) / "worker.log"
    worker_log.unlink(missing_ok=True)
    procs = [
        subprocess.Popen(
            [str(BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
             "--workers", "2", "--threads", "4", "--worker-class", "gthread",
             "--log-level", "critical"],
            cwd=ROOT,
        ),
        subprocess.Popen(
            [str(BIN / "celery"), "-A", "portal", "worker", "-c", "1", "-l", "info",
             "-f", str(worker_log)],
            cwd=ROOT,
        ),
    ]  # fmt: skip
    failures = []
    try:
        ready = wait_for(lambda: _ok(request, cookie), 30)
        assert ready is not None, "the portal did not start"
        parent = Parent(cookie)
        parent.start()
        time.sleep(2)
        say(f"browsing normally: {summary(parent.since(0))}")

        say("Redis: stopping it")
        start = time.monotonic()
        services.stop_redis()
        time.sleep(3)
        pk = request_statement(cookie)
        made = document_status(cookie, pk)
        time.sleep(1)
        seen = parent.since(start)
        say(f"while Redis was down the parent saw: {summary(seen)}")
        say(f"a statement asked for while Redis was down: {made} (made in the web process)")
        if any(answer != "200" for answer in seen) or made != "Ready":
            failures.append("Redis outage")
        say("Redis: starting it again")
        services.restart_redis()
        start = time.monotonic()
        pk = request_statement(cookie)
        took = wait_for(lambda: document_status(cookie, pk) == "Ready", 60)
        by_worker = worker_rendered(worker_log)
        say(
            "a statement asked for after the restart: "
            + (f"ready in {took:.1f} s" if took is not None else "NOT made")
            + f"; the worker has made {by_worker} statement(s) since it started"
        )
        seen = parent.since(start)
        say(f"after Redis came back the parent saw: {summary(seen)}")
        if took is None or by_worker < 1 or any(answer != "200" for answer in seen):
            failures.append("Redis restart")

        say("PostgreSQL: stopping it")
        start = time.monotonic()
        services.stop_postgres()
        time.sleep(3)
        down = parent.since(start)
        say(f"while PostgreSQL was down the parent saw: {summary(down)} (503: try again)")
        say("PostgreSQL: starting it again")
        services.restart_postgres()
        back = time.monotonic()
        recovered = wait_for(lambda: parent.log[-1][1] == "200" and parent.log[-1][0] > back, 30)
        time.sleep(3)
        seen = parent.since(back + (recovered or 0))
        say(
            "after PostgreSQL came back: "
            + (f"pages again in {recovered:.1f} s, " if recovered is not None else "NO recovery, ")
            + f"then {summary(seen)} (web and worker never restarted)"
        )
        pk = request_statement(cookie)
        took = wait_for(lambda: document_status(cookie, pk) == "Ready", 60)
        by_worker_since = worker_rendered(worker_log) - by_worker
        say(
            "a statement after PostgreSQL's restart: "
            + (
                f"ready, made by the worker: {by_worker_since == 1}"
                if took is not None
                else "NOT made"
            )
        )
        if any(answer not in ("200", "503") for answer in down):
            failures.append("PostgreSQL outage answered other than 503")
        if (
            recovered is None
            or any(a != "200" for a in seen)
            or took is None
            or by_worker_since != 1
        ):
            failures.append("PostgreSQL restart")
        parent.running = False
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
    say("all drills passed" if not failures else f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


def worker_rendered(log: Path) -> int:
    text = log.read_text() if log.exists() else ""
    return len(re.findall(r"render_document\[[^]]+\] succeeded", text))


def _ok(request, cookie) -> bool:
    with contextlib.suppress(OSError):
        return request("/", cookie)[0] == 200
    return False
