"""A real Celery worker runs tasks in the schema of the provider that sent them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from portal.tasks import current_schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.worker
@pytest.mark.django_db
def test_tasks_run_in_the_sending_providers_schema(real_worker, aquakids, leaps):
    celery_worker_process = real_worker
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
        connection.set_schema_to_public()
