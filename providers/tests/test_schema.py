"""A provider's schema made from the models' DDL equals the migrated template,
object by object, and its creation costs the same however many schemas the
database holds."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from providers.models import Provider

SIGNATURE_SQL = """
SELECT 'column', c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
       || ' identity=' || a.attidentity::text
       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', c.relname || '.' || k.conname,
       k.contype::text || ' ' || pg_get_constraintdef(k.oid)
       || ' deferrable=' || k.condeferrable::text
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
UNION ALL
SELECT 'index', i.tablename || '.' || i.indexname, replace(i.indexdef, %(schema)s || '.', '')
FROM pg_indexes i
WHERE i.schemaname = %(schema)s
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND NOT t.tgisinternal
UNION ALL
SELECT 'function', p.proname, md5(replace(pg_get_functiondef(p.oid), %(schema)s || '.', ''))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s
UNION ALL
SELECT 'rows', c.relname, ''
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind = 'r'
"""


def signature(schema: str) -> set[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(SIGNATURE_SQL, {"schema": schema})
        rows = {(kind, name, detail.replace(f"{schema}.", "")) for kind, name, detail in cursor}
        tables = sorted(name for kind, name, _ in rows if kind == "rows")
        counted = set()
        for table in tables:
            if table == "django_migrations":
                cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')
                detail = str(sorted(cursor.fetchall()))
            else:
                cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
                detail = str(cursor.fetchone()[0])
            counted.add(("rows", table, detail))
    return {row for row in rows if row[0] != "rows"} | counted


@pytest.mark.django_db(transaction=False)
def test_a_new_schema_equals_the_migrated_template(aquakids):
    connection.set_schema_to_public()
    template = settings.TENANT_BASE_SCHEMA
    provider = Provider.objects.create(slug="signature-check", name="Signature check")
    try:
        made, migrated = signature(provider.schema_name), signature(template)
        assert made == migrated, {
            "only in the new schema": [r[:2] + (r[2][:150],) for r in sorted(made - migrated)],
            "only in the template": [r[:2] + (r[2][:150],) for r in sorted(migrated - made)],
        }
        assert len(made) > 500
        guarded = {name.split(".")[0] for kind, name, _ in made if "append_only" in name}
        assert {"families_staffview", "enrollments_enrollmentchange"} <= guarded
    finally:
        connection.set_schema_to_public()


@pytest.mark.django_db
def test_cached_host_lookups_follow_every_change(aquakids, ana):
    """Host name -> provider is cached; a save, a queryset update and a
    removed domain are each seen by the next request."""
    from django.db.models import F

    from providers.models import Domain

    assert b"Aqua Kids Swim School" in ana.get("/").content  # cached now
    connection.set_schema_to_public()
    provider = Provider.objects.get(pk=aquakids.pk)
    provider.name = "Aqua Kids Renamed"
    provider.save()
    assert b"Aqua Kids Renamed" in ana.get("/").content
    Provider.objects.filter(pk=aquakids.pk).update(name=F("slug"))
    assert b"Aqua Kids Renamed" not in ana.get("/").content
    Domain.objects.filter(tenant=aquakids).delete()
    assert ana.get("/").status_code == 404


@pytest.mark.django_db
def test_migrate_skips_only_schemas_with_every_migration_recorded(aquakids, leaps):
    from providers.migration_executor import schemas_behind

    assert schemas_behind(["aquakids", "leaps"]) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM aquakids.django_migrations WHERE app = 'billing' AND name = '0001_initial'"
        )
    assert schemas_behind(["aquakids", "leaps"]) == ["aquakids"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA half_made")
    assert schemas_behind(["half_made", "leaps", "never_made"]) == ["half_made", "never_made"]
