"""Drills: a Celery worker killed while it renders a statement."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context

from billing.models import Document, LedgerEntry, Order, OrderLine
from billing.tasks import render_document
from billing.tests.helpers import payer
from families.models import Family
from portal.celery import app

ROOT = Path(__file__).resolve().parent.parent


def worker(queue: str) -> subprocess.Popen:
    env = dict(os.environ)
    url = urlsplit(os.environ["DATABASE_URL"])
    env["DATABASE_URL"] = url._replace(path=f"/{settings.DATABASES['default']['NAME']}").geturl()
    env |= {"PORTAL_TESTING": "1", "CELERY_REAL_WORKER": "1", "CELERY_VISIBILITY_TIMEOUT": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo", "-Q", queue,
         "-l", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip


def status(provider, pk) -> str:
    with tenant_context(provider):
        return Document.objects.get(pk=pk).status


def wait(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_statement_whose_worker_is_killed_is_finished_by_another(committed, race_provider):
    queue = f"drill-{secrets.token_hex(4)}"
    with tenant_context(race_provider):
        family = Family.objects.create(name="Drill")
        orders = Order.objects.bulk_create(
            [Order(family=family, title=f"Lesson fee {n}") for n in range(400)]
        )
        OrderLine.objects.bulk_create(
            [OrderLine(order=o, kind="other", description=o.title, unit_price=1) for o in orders]
        )
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    family=family, order=o, kind="charge", amount=Decimal(1), description=o.title
                )
                for o in orders
            ]
        )
        guardian = payer(family, email=f"{queue}@example.com")
        document = Document.objects.create(family=family, kind="statement")
        app.conf.task_always_eager = False
        try:
            render_document.apply_async([document.pk], queue=queue)
        finally:
            app.conf.task_always_eager = True
    client = Client(HTTP_HOST="race.localhost")
    with tenant_context(race_provider):
        client.force_login(guardian.user)
    download = f"/billing/documents/{document.pk}/download/"

    first_worker = worker(queue)
    try:
        wait(lambda: status(race_provider, document.pk) == "running", 60)
        time.sleep(0.5)  # in the middle of rendering
    finally:
        first_worker.send_signal(signal.SIGKILL)
        first_worker.wait(10)
    print("worker killed while the statement was", status(race_provider, document.pk))
    assert status(race_provider, document.pk) == "running"
    assert client.get(download).status_code == 404  # nothing half-made to download

    second_worker = worker(queue)
    try:
        wait(lambda: status(race_provider, document.pk) in ("done", "failed"), 120)
    finally:
        second_worker.terminate()
        second_worker.wait(10)
    print("another worker took it over:", status(race_provider, document.pk))
    assert status(race_provider, document.pk) == "done"
    response = client.get(download)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF") and body.rstrip().endswith(b"%%EOF")
