"""The project clock: moved by tests and the demo, read by the domain, and
never movable in production."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from families import services
from families.models import FamilyNote, Guardian
from portal import clock


def test_moving_the_clock_dates_what_services_record(in_aquakids):
    family = Guardian.objects.get(user__email="ana@aquakids.test").family
    from accounts.models import User

    writer = User.objects.get(email="staff@aquakids.test")
    then = datetime(2026, 3, 1, 9, 30, tzinfo=ZoneInfo("Europe/Prague"))
    with clock.moved_to(then):
        note = services.family_note_add(family=family, text="Dated in March", actor=writer)
        assert clock.today() == date(2026, 3, 1)
    assert abs(FamilyNote.objects.get(pk=note.pk).at - then) < timedelta(seconds=5)
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=1)  # back to the real time


def test_advance_moves_forward_and_reset_returns(in_aquakids):
    start = clock.now()
    clock.advance(timedelta(days=31))
    assert timedelta(days=30) < clock.now() - start < timedelta(days=32)
    clock.reset()
    assert clock.now() - start < timedelta(seconds=5)


def test_a_date_means_its_midday_in_the_providers_zone(in_aquakids):
    clock.travel_to(date(2026, 7, 4))
    assert clock.local(clock.now()).hour == 12
    assert clock.today() == date(2026, 7, 4)


def test_production_refuses_to_move_the_clock(settings):
    settings.DEBUG = False
    settings.TESTING = False
    with pytest.raises(clock.ClockLocked):
        clock.travel_to(date(2030, 1, 1))
    with pytest.raises(clock.ClockLocked):
        clock.advance(timedelta(days=1))
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=1)


def test_no_domain_code_reads_the_time_around_the_clock():
    """Every app reads `portal.clock`; `timezone.now()` only inside it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    apps = [
        "accounts",
        "providers",
        "families",
        "enrollments",
        "benefits",
        "billing",
        "desk",
        "portal",
    ]
    offenders = [
        str(path.relative_to(root))
        for app in apps
        for path in (root / app).rglob("*.py")
        if "tests" not in path.parts
        and "migrations" not in path.parts
        and path.name != "clock.py"
        and ("timezone.now()" in path.read_text() or "auto_now_add" in path.read_text())
    ]
    assert offenders == []
