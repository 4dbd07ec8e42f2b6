"""Development and test runner: `python -m devtools run|test|services|bench|drill`
(the Makefile's `make run`, `make test`, `make bench`, `make drill`).

It starts what is not configured (devtools.servers), migrates, and then either
serves the portal with a Celery worker and beat, or runs the test suite,
a benchmark or a drill. Everything it started is stopped on exit.

This module must not import Django: it sets the environment that settings read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devtools import bench as load_bench
from devtools import drill as drills
from devtools.servers import (
    BIN,
    DATA,
    PY,
    ROOT,
    Services,
    manage,
    prepare_database,
    register_stripe_webhook,
    say,
)

# --- commands ---------------------------------------------------------------


def run() -> int:
    host = os.environ.get("PORTAL_HOST", "127.0.0.1")
    port = int(os.environ.get("PORTAL_PORT", "8000"))
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("PORTAL_LINK_SCHEME", "http")
    os.environ.setdefault("PORTAL_LINK_PORT", f":{port}")
    services = Services(DATA)
    procs: list[subprocess.Popen] = []
    try:
        services.start(stripe_port=int(os.environ.get("STRIPE_PORT", "8420")))
        prepare_database()
        manage("seed_demo")
        beat_file = DATA / "celerybeat-schedule"
        procs.append(
            subprocess.Popen(
                [str(BIN / "celery"), "-A", "portal", "worker", "-l", "warning", "-c", "2"],
                cwd=ROOT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "portal",
                    "beat",
                    "-l",
                    "warning",
                    "-s",
                    str(beat_file),
                ],
                cwd=ROOT,
            )
        )
        procs.append(subprocess.Popen([PY, "manage.py", "runserver", f"{host}:{port}"], cwd=ROOT))
        procs.append(host_page(port))
        register_stripe_webhook(f"http://127.0.0.1:{port}/stripe/webhook/")
        print_welcome(host, port)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        say("a process stopped; shutting down")
        return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
        services.stop()


HOST_PAGE_PORT = int(os.environ.get("PORTAL_HOST_PAGE_PORT", "8001"))


def host_page(portal_port: int) -> subprocess.Popen:
    """A plain "provider website" on another origin that embeds Aqua Kids."""
    folder = DATA / "host-page"
    folder.mkdir(parents=True, exist_ok=True)
    html = (ROOT / "demo" / "host.html").read_text()
    portal = f"http://aquakids.localhost:{portal_port}/"
    (folder / "index.html").write_text(html.replace("__PORTAL__", portal))
    return subprocess.Popen(
        [
            PY,
            "-m",
            "http.server",
            str(HOST_PAGE_PORT),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_welcome(host: str, port: int) -> None:
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    base = f"{shown}:{port}"
    print(
        f"""
  Family portal is running. Password for every demo login: portal-demo

  Aqua Kids Swim School   http://aquakids.{base}/
      parents  ana@aquakids.test (primary), sam@aquakids.test (secondary),
               ben@aquakids.test
      staff    staff@aquakids.test (owner), manager@aquakids.test,
               desk@aquakids.test    http://aquakids.{base}/admin/
  Leaps Gymnastics        http://leaps.{base}/
      parent   cara@leaps.test
      staff    staff@leaps.test (owner), manager@ and desk@leaps.test
  Platform operator       http://{base}/admin/   admin@portal.test

  Aqua Kids' website, portal embedded: http://127.0.0.1:{HOST_PAGE_PORT}/

  E-mails sent in development: http://aquakids.{base}/dev/outbox/ (log in as staff;
  also in {DATA / "mail"})
  Ctrl-C stops everything.
""",
        flush=True,
    )


def ensure_browser() -> None:
    """Browser tests drive Debian's Chromium and inject axe-core from npm."""
    if not Path("/usr/bin/chromium").exists() and shutil.which("apt-get"):
        say("installing Chromium for the browser tests (apt-get)")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "libharfbuzz-subset0"], check=False
        )
    if not (ROOT / "node_modules" / "axe-core" / "axe.min.js").exists() and shutil.which("npm"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=False)


def test(pytest_args: list[str]) -> int:
    ensure_browser()
    services = Services(DATA / "test")
    try:
        services.start(stripe_port=None)
        os.environ["PORTAL_TESTING"] = "1"
        return subprocess.run([PY, "-m", "pytest", *pytest_args], cwd=ROOT).returncode
    finally:
        services.stop()


def services_only() -> int:
    """Start the servers and print their settings, for a shell or an IDE."""
    os.environ.setdefault("DEBUG", "1")
    services = Services(DATA)
    try:
        services.start(stripe_port=int(os.environ.get("STRIPE_PORT", "8420")))
        prepare_database()
        for name in ("DATABASE_URL", "REDIS_URL", "STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
            if os.environ.get(name):
                print(f"export {name}='{os.environ[name]}'")
        say("services are running; Ctrl-C stops them")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        services.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def bench(args: list[str]) -> int:
    """Benchmarks that print figures (see README): embedded servers as for `run`."""
    # Production settings (DEBUG off); a throwaway key for this local run only.
    os.environ.setdefault("SECRET_KEY", "bench-" + hashlib.sha256(str(ROOT).encode()).hexdigest())
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    os.environ["PORTAL_BENCH_DATA"] = str(DATA / "bench")
    services = Services(DATA / "bench")
    try:
        services.start(stripe_port=None)
        prepare_database()
        return load_bench.main(args)
    finally:
        services.stop()


def drill() -> int:
    """Restart Redis and PostgreSQL under a browsing parent (devtools/drill.py).
    Only on embedded servers of its own: it stops them."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("SECRET_KEY", "drill-" + hashlib.sha256(str(ROOT).encode()).hexdigest())
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    os.environ["STATIC_ROOT"] = str(DATA / "drill" / "static")
    os.environ["PORTAL_DRILL_DATA"] = str(DATA / "drill")
    services = Services(DATA / "drill")
    try:
        services.start(stripe_port=None)
        prepare_database()
        return drills.main(services, manage)
    finally:
        services.stop()


def main(argv: list[str]) -> int:
    # Ctrl-C and a plain `kill` both stop everything this process started
    # (SIGINT may arrive ignored when started from a non-interactive shell).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    command = argv[0] if argv else "run"
    if command == "run":
        return run()
    if command == "test":
        return test(argv[1:])
    if command == "services":
        return services_only()
    if command == "bench":
        return bench(argv[1:])
    if command == "drill":
        return drill()
    print(__doc__)
    return 2
