"""PostgreSQL records which families each change touches (families/changes.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

from billing.models import LedgerEntry, Order
from families import changes
from families.models import Family, Student

pytestmark = pytest.mark.django_db


def test_every_table_of_a_provider_is_tracked_or_never_shown_to_families(in_aquakids):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", [connection.schema_name]
        )
        tables = {row[0] for row in cursor}
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND t.tgname LIKE 'family_changed_%%'",
            [connection.schema_name],
        )
        triggered = {row[0] for row in cursor}
    assert tables - changes.UNTRACKED == set(changes.TRACKED)
    assert triggered == set(changes.TRACKED)
    labels = [name.rsplit(".", 1)[-1] for name in settings.TENANT_APPS]
    models = {m._meta.db_table for label in labels for m in apps.get_app_config(label).get_models()}
    assert models <= tables


def version(family) -> int:
    return changes.data_version(family.pk)


def test_a_change_moves_its_family_and_only_its_family_forward(in_aquakids):
    novak, okafor = Family.objects.get(name="Novak"), Family.objects.get(name="Okafor")
    before = version(novak), version(okafor)
    order = Order.objects.create(family=novak, title="Swim cap")
    LedgerEntry.objects.create(
        family=novak, order=order, kind="charge", amount=Decimal("5"), description="Swim cap"
    )
    assert version(novak) > before[0]
    assert version(okafor) == before[1]
    # Through a related row, an update and a delete alike.
    mia = Student.objects.get(first_name="Mia")
    for change in (
        lambda: Student.objects.filter(pk=mia.pk).update(medical_notes="Allergic to chlorine"),
        lambda: Order.objects.filter(pk=order.pk).update(title="Swim cap, blue"),
        lambda: order.lines.create(kind="other", description="Cap", unit_price=5),
    ):
        seen = version(novak)
        change()
        assert version(novak) > seen
    assert version(okafor) == before[1]


def test_a_timetable_change_moves_every_family_forward(in_aquakids):
    from enrollments.models import Session

    families = list(Family.objects.all())
    before = [version(f) for f in families]
    Session.objects.filter(pk=Session.objects.first().pk).update(note="Bring goggles")
    assert all(version(f) > seen for f, seen in zip(families, before, strict=True))


def test_superseded_change_records_are_pruned(in_aquakids):
    novak = Family.objects.get(name="Novak")
    for n in range(3):
        Order.objects.create(family=novak, title=f"Fee {n}")
    latest = version(novak)
    assert changes.prune() > 0
    assert version(novak) == latest
