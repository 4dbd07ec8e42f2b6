"""Waitlist offers hold places and show on families' pages: their changes
are recorded like every other tracked table's (families/changes.py)."""

from django.db import migrations

from families import changes


def install(apps, schema_editor):
    existing = schema_editor.connection.introspection.table_names()
    for statement in changes.install_sql(existing):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("families", "0008_history_append_only"),
        ("enrollments", "0004_waitlist_offers"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
