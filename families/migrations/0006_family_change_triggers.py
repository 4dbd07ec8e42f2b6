"""Statement-level triggers that record which families each change touches
(families/changes.py). New providers' schemas get the same statements
(providers/schema.py)."""

from django.db import migrations

from families import changes


def install(apps, schema_editor):
    existing = schema_editor.connection.introspection.table_names()
    for statement in changes.install_sql(existing):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("families", "0005_familychange"),
        ("accounts", "0001_initial"),
        ("enrollments", "0002_alter_enrollment_kind_alter_enrollment_status"),
        ("benefits", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
