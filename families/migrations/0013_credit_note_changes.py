from django.db import migrations

from families import changes


def install(apps, schema_editor):
    """Credit notes and refunds being made show on the family's pages: their
    changes are recorded like every other tracked table's (families/changes.py)."""
    existing = schema_editor.connection.introspection.table_names()
    for statement in changes.install_sql(existing):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("families", "0012_project_clock"),
        ("billing", "0004_refunds_credit_notes"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
