"""A real Celery worker runs tasks in the schema of the provider that sent them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from portal.celery import app
from portal.tasks import current_schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A worker process against the test database and the suite's own queue."""
    env = dict(os.environ)
    url = urlsplit(os.environ["DATABASE_URL"])
    env["DATABASE_URL"] = url._replace(path=f"/{settings.DATABASES['default']['NAME']}").geturl()
    env["PORTAL_TESTING"] = "1"
    env["CELERY_REAL_WORKER"] = "1"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
    )
    yield worker
    worker.terminate()
    worker.wait(10)


@pytest.mark.worker
@pytest.mark.django_db
def test_tasks_run_in_the_sending_providers_schema(celery_worker_process, aquakids, leaps):
    app.conf.task_always_eager = False
    try:
        with schema_context("aquakids"):
            at_aquakids = current_schema.delay()
        with schema_context("leaps"):
            at_leaps = current_schema.delay()
        deadline = time.monotonic() + 60
        while not (at_aquakids.ready() and at_leaps.ready()):
            assert celery_worker_process.poll() is None, "the worker died"
            assert time.monotonic() < deadline, "the worker did not answer in 60 s"
            time.sleep(0.2)
        assert at_aquakids.get() == "aquakids"
        assert at_leaps.get() == "leaps"
    finally:
        app.conf.task_always_eager = True
        connection.set_schema_to_public()
