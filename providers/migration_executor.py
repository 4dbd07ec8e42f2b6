"""`migrate_schemas --executor=portal`: django-tenants' standard executor,
but schemas whose migration records already hold every migration on disk
are skipped (found with one query over all schemas), and each schema that
is migrated gets a fresh database session (a session that touched hundreds
of schemas keeps all their tables in its caches and slows down with each).

Checked against its own figures in `make bench`: with 1,000 providers the
standard executor took 0.59 s per schema with nothing to migrate."""

from __future__ import annotations

import sys

from django.db import connection, connections
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations

from portal.tenancy import use_public_schema


class PortalExecutor(MigrationExecutor):
    codename = "portal"

    def run_migrations(self, tenants=None):
        tenants = list(tenants or [])
        if self.PUBLIC_SCHEMA_NAME in tenants:
            run_migrations(self.args, self.options, self.codename, self.PUBLIC_SCHEMA_NAME)
            tenants.remove(self.PUBLIC_SCHEMA_NAME)
        behind = tenants if self.args or self.options.get("fake") else schemas_behind(tenants)
        if len(behind) < len(tenants) and int(self.options.get("verbosity", 1)):
            skipped = len(tenants) - len(behind)
            sys.stdout.write(f"[{self.codename}] {skipped} schemas up to date, skipped\n")
        for index, schema_name in enumerate(behind):
            run_migrations(
                self.args, self.options, self.codename, schema_name, idx=index, count=len(behind)
            )
            connections.close_all()

    def run_multi_type_migrations(self, tenants):
        raise NotImplementedError("the portal has one type of provider")


def schemas_behind(schemas: list[str]) -> list[str]:
    """The schemas missing a record of some migration on disk (one query)."""
    from providers.schema import tenant_migrations

    if not schemas:
        return []
    on_disk = tenant_migrations()
    use_public_schema()
    with connection.cursor() as cursor:
        # A schema made but not yet migrated has no migration table: behind.
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'django_migrations' AND table_schema = ANY(%s)",
            [schemas],
        )
        existing = {row[0] for row in cursor}
        recorded = [s for s in schemas if s in existing]
        counts = {}
        for start in range(0, len(recorded), 500):
            batch = recorded[start : start + 500]
            parts = [
                f"SELECT %s, count(*) FROM {connection.ops.quote_name(s)}.django_migrations "
                "WHERE (app, name) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                for s in batch
            ]
            params: list[str | list[str]] = []
            for s in batch:
                params += [s, [a for a, _ in on_disk], [n for _, n in on_disk]]
            cursor.execute(" UNION ALL ".join(parts), params)
            counts.update(dict(cursor.fetchall()))
    return [s for s in schemas if counts.get(s, 0) < len(on_disk)]
