"""Scheduled jobs run only for providers whose set-up is complete: beat
sends them to ready providers only, and each job checks again where it runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from portal.beat import ProvidersScheduler
from portal.celery import app
from providers.models import Provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def unready(aquakids):
    """A provider being created and one whose set-up failed: rows without schemas."""
    made = []
    for slug, status in (("being-made", "creating"), ("broken", "failed")):
        provider = Provider(slug=slug, schema_name=slug.replace("-", "_"), name=slug, status=status)
        provider.auto_create_schema = False
        provider.save()
        made.append(provider)
    return made


def test_beat_sends_every_scheduled_job_only_to_ready_providers(unready, tmp_path, monkeypatch):
    ready = set(
        Provider.objects.filter(status="ready")
        .exclude(schema_name__in=["public", settings.TENANT_BASE_SCHEMA])
        .values_list("schema_name", flat=True)
    )
    assert {"aquakids", "leaps"} <= ready  # (and any the suite's other tests made)
    assert {p.schema_name for p in ProvidersScheduler.get_queryset()} == ready
    scheduler = ProvidersScheduler(app=app, schedule_filename=str(tmp_path / "beat"), lazy=True)
    sent: list[str] = []

    def record(entry, producer=None, advance=False, **kwargs):
        sent.append(connection.schema_name)
        return SimpleNamespace(id="x")

    monkeypatch.setattr(scheduler, "apply_async", record)
    for name, entry in scheduler._tenant_aware_beat_schedule_to_dict(
        settings.CELERY_BEAT_SCHEDULE
    ).items():
        sent.clear()
        scheduler.apply_entry(scheduler.Entry(name=name, app=app, **entry))
        assert sorted(sent) == sorted(ready), name  # not being_made, not broken


@pytest.mark.parametrize("status", ["creating", "failed"])
def test_every_scheduled_job_does_nothing_in_a_provider_not_set_up(unready, status):
    provider = next(p for p in unready if p.status == status)
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "benefits.tasks.daily_upkeep" in tasks
    connection.set_tenant(provider)  # its schema does not exist: any query would fail
    try:
        for name in sorted(tasks):
            assert import_string(name)() is None, name
    finally:
        connection.set_schema_to_public()
