"""Test set-up shared by every app: the demo providers are created once per
test session (committed), and each test runs in a transaction on top."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.cache import cache
from django.core.management import call_command
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.db import connection, connections
from django.test import Client

from portal.tenancy import use_provider, use_public_schema

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright in pytest

HOSTS = {"aquakids": "aquakids.localhost", "leaps": "leaps.localhost", "public": "localhost"}


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_keepdb,
    django_db_modify_db_settings,
):
    """Create and migrate the test database once (whatever the selected tests
    are marked with), then the demo providers and families once, committed."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            aliases={"default"},
            keepdb=django_db_keepdb,
        )
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        use_public_schema()
        cache.clear()
    yield
    with django_db_blocker.unblock():
        use_public_schema()
        books_check()
        with connection.cursor() as cursor:
            # Worker and server processes may still hold sessions: end them so
            # the test database can be dropped.
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        if not django_db_keepdb:
            teardown_databases(config, verbosity=request.config.option.verbose)


# --- The books after the tests -------------------------------------------------------------
# Once every test has run (and before the test database goes), the ledger's
# invariants (billing.invariants, as `manage.py check_ledger`) are checked in
# every provider: what the tests committed must keep the books. A finding
# fails the run. Tests that break the books on purpose do it inside their
# own transaction, which is rolled back.

BOOKS: dict = {"checked": [], "found": [], "seconds": 0.0}


def books_check() -> None:
    import time

    from django_tenants.utils import tenant_context

    from billing import invariants
    from providers.models import Provider

    started = time.monotonic()
    for provider in Provider.objects.real().filter(status="ready").order_by("slug"):
        with tenant_context(provider):
            BOOKS["found"] += [f"{provider.slug}: {p}" for p in invariants.check_all()]
        BOOKS["checked"].append(provider.slug)
    use_public_schema()
    BOOKS["seconds"] = time.monotonic() - started


@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down
def pytest_sessionfinish(session, exitstatus):
    if BOOKS["found"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not BOOKS["checked"]:
        return
    if BOOKS["found"]:
        terminalreporter.section("check_ledger after the tests: the books do not hold", red=True)
        for line in BOOKS["found"]:
            terminalreporter.line(line, red=True)
    else:
        terminalreporter.write_line(
            f"check_ledger after the tests: the books hold in {len(BOOKS['checked'])} "
            f"providers ({', '.join(BOOKS['checked'])}; {BOOKS['seconds']:.1f} s)"
        )


@pytest.fixture(scope="session")
def race_provider(django_db_setup, django_db_blocker):
    """A provider of its own for tests that commit (threads): they create what
    they need there and leave it; the test database goes at the end."""
    from providers.models import Provider
    from providers.services import provider_create

    with django_db_blocker.unblock():
        provider = Provider.objects.filter(slug="race").first() or provider_create(
            slug="race",
            name="Race Test Club",
            domains=["race.localhost"],
            makeup_tokens_enabled=True,
            pass_redemption_enabled=True,
            makeup_booking_window_hours=0,
        )
        use_public_schema()
    return provider


@pytest.fixture
def committed(django_db_setup, django_db_blocker):
    """Real commits, for tests with threads or other processes (not marked
    django_db). Such a test works on rows of its own (in `race_provider`, or
    made by its fixtures) and never deletes history: PostgreSQL refuses."""
    with django_db_blocker.unblock():
        yield
    use_public_schema()


@pytest.fixture(autouse=True)
def _public_schema_and_clean_cache(request):
    """Each test starts in the public schema with an empty cache (the suite has
    its own Redis database)."""
    yield
    use_public_schema()
    from portal import clock

    clock.reset()
    if "db" in request.fixturenames or "transactional_db" in request.fixturenames:
        cache.clear()


@pytest.fixture
def aquakids(db):
    from providers.models import Provider

    return Provider.objects.get(slug="aquakids")


@pytest.fixture
def leaps(db):
    from providers.models import Provider

    return Provider.objects.get(slug="leaps")


@pytest.fixture
def in_aquakids(aquakids):
    use_provider(aquakids)
    yield aquakids
    use_public_schema()


@pytest.fixture
def in_leaps(leaps):
    use_provider(leaps)
    yield leaps
    use_public_schema()


def client_for(slug: str) -> Client:
    return Client(HTTP_HOST=HOSTS[slug])


@pytest.fixture
def aquakids_client(aquakids) -> Client:
    return client_for("aquakids")


@pytest.fixture
def leaps_client(leaps) -> Client:
    return client_for("leaps")


def login(client: Client, provider, email: str) -> Client:
    """Log `email` in on `client` (at `provider`'s host), as the login form would."""
    from accounts.models import User

    use_provider(provider)
    client.force_login(User.objects.get(email=email))
    # As after any earlier request: the host name lookup is cached.
    assert client.get("/healthz").status_code == 200
    return client


@pytest.fixture
def ana(aquakids_client, aquakids) -> Client:
    return login(aquakids_client, aquakids, "ana@aquakids.test")


@pytest.fixture
def ben(aquakids) -> Client:
    return login(client_for("aquakids"), aquakids, "ben@aquakids.test")


@pytest.fixture
def cara(leaps_client, leaps) -> Client:
    return login(leaps_client, leaps, "cara@leaps.test")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class LiveServer:
    def __init__(self):
        self.httpd = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
        self.httpd.set_app(StaticFilesHandler(get_wsgi_application()))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, slug: str, path: str = "/") -> str:
        host = "localhost" if slug == "public" else f"{slug}.localhost"
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def portal_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = LiveServer()
        server.thread.start()
        yield server
        server.httpd.shutdown()
        server.httpd.server_close()
        connections.close_all()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker against the test database and the suite's own queue.
    Tests that use it switch eager mode off while they run."""
    env = dict(os.environ)
    url = urlsplit(os.environ["DATABASE_URL"])
    env["DATABASE_URL"] = url._replace(path=f"/{settings.DATABASES['default']['NAME']}").geturl()
    env["PORTAL_TESTING"] = "1"
    env["CELERY_REAL_WORKER"] = "1"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo", "-l", "warning"],
        cwd=Path(__file__).resolve().parent,
        env=env,
    )
    yield worker
    worker.terminate()
    worker.wait(10)


@pytest.fixture
def real_worker(celery_worker_process):
    from portal.celery import app

    app.conf.task_always_eager = False
    yield celery_worker_process
    app.conf.task_always_eager = True
