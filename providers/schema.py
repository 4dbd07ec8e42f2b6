"""Creating a provider's schema in one transaction.

django-tenants clones a template schema with a PL/pgSQL function that reads
the system catalogues object by object; its cost grows with every schema in
the database (0.5 s with a handful of providers, 2 s with twenty). Instead
the portal replays the DDL that Django writes from the state the migrations
build (the same tables, names and constraints the migrations make;
`providers/tests/test_schema.py` compares the result with the migrated
template object by object), copies the template's rows (content types,
permissions) and records every migration as applied. That costs the same
with one provider or a thousand.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import get_tenant_base_schema

from portal.tenancy import use_public_schema


def tenant_models(state_apps) -> list:
    """The concrete models whose tables live in each provider's schema, as
    the migrations leave them."""
    labels = [name.rsplit(".", 1)[-1] for name in settings.TENANT_APPS]
    models = []
    for label in labels:
        for model in state_apps.get_app_config(label).get_models(include_auto_created=False):
            if model._meta.managed and not model._meta.proxy:
                models.append(model)
    return models


@lru_cache(maxsize=1)
def tenant_ddl() -> str:
    """CREATE TABLE, index and constraint statements for every tenant model
    in the state the migrations on disk build, unqualified (they land in the
    schema first on the search path)."""
    state_apps = migration_loader().project_state().apps
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for model in tenant_models(state_apps):
            editor.create_model(model)
    return "\n".join(editor.collected_sql)


# What migrations make besides tables (RunPython/RunSQL), such as triggers:
# each app that makes some registers a function returning its statements from
# its AppConfig.ready() (families: the triggers that record family changes).
# The schema test compares what they make too.
extra_sql_sources: list[Callable[[], list[str]]] = []


def extra_sql() -> list[str]:
    return [*guard_sql(), *(statement for source in extra_sql_sources for statement in source())]


@lru_cache(maxsize=1)
def guard_sql() -> tuple[str, ...]:
    """The triggers django-pgtrigger's migrations install (`Meta.triggers`,
    such as `portal.models.append_only`), as the migrations' state holds
    them: history tables are guarded in a new provider's schema too."""
    labels = {name.rsplit(".", 1)[-1] for name in settings.TENANT_APPS}
    state = migration_loader().project_state()
    return tuple(
        trigger.install_sql
        for (app_label, _model), model_state in sorted(state.models.items())
        if app_label in labels
        for trigger in model_state.options.get("triggers", [])
    )


@lru_cache(maxsize=1)
def migration_loader():
    from django.db.migrations.loader import MigrationLoader

    return MigrationLoader(None, ignore_no_migrations=True)


@lru_cache(maxsize=1)
def tenant_migrations() -> tuple[tuple[str, str], ...]:
    """Every migration on disk, as `migrate_schemas` records them in each
    schema (shared apps' too: their operations are skipped there)."""
    return tuple(sorted(migration_loader().disk_migrations))


def template_tables(cursor, template: str) -> list[tuple[str, list[str]]]:
    """The template's tables other than the migration records, with their
    columns: rows made after migrating (content types, permissions)."""
    cursor.execute(
        """
        SELECT c.relname, array_agg(a.attname ORDER BY a.attnum)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname <> 'django_migrations'
        GROUP BY c.relname
        """,
        [template],
    )
    return cursor.fetchall()


def schema_create(schema_name: str) -> None:
    """Create `schema_name` with every tenant table and the template's rows.
    Runs in one transaction: on any error nothing is left behind."""
    template = get_tenant_base_schema()
    quoted = connection.ops.quote_name(schema_name)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quoted}")
        cursor.execute(f"SET LOCAL search_path = {quoted}")
        cursor.execute(tenant_ddl())
        cursor.execute(";\n".join(extra_sql()))
        template_q = connection.ops.quote_name(template)
        cursor.execute(
            f"CREATE TABLE django_migrations (LIKE {template_q}.django_migrations INCLUDING ALL)"
        )
        copies = []
        for table, columns in template_tables(cursor, template):
            names = ", ".join(connection.ops.quote_name(c) for c in columns)
            table_q = connection.ops.quote_name(table)
            copies.append(
                f"INSERT INTO {quoted}.{table_q} ({names}) "
                f"SELECT {names} FROM {template_q}.{table_q};"
            )
            if "id" in columns:
                copies.append(
                    f"SELECT setval(pg_get_serial_sequence('{schema_name}.{table}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {quoted}.{table_q}), 0) + 1, false);"
                )
        cursor.execute("\n".join(copies))
        cursor.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, now())",
            tenant_migrations(),
        )
    use_public_schema()
