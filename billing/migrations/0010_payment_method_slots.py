"""Each saved payment method takes one of its guardian's three slots: a
unique (guardian, slot) and a CHECK on the slot make PostgreSQL refuse a
fourth method, however many requests race. Existing methods are numbered in
the order they are listed (primary first); a guardian with more than three
(possible before, through a race) stops the migration with their id, so the
office can remove the extra ones with the family first."""

from django.db import migrations, models

NUMBER_EXISTING = """
DO $$
DECLARE crowded bigint;
BEGIN
    SELECT guardian_id INTO crowded FROM billing_paymentmethod
    GROUP BY guardian_id HAVING count(*) > 3 LIMIT 1;
    IF crowded IS NOT NULL THEN
        RAISE EXCEPTION 'guardian % has more than three saved payment methods: '
            'delete the extra ones, then migrate again', crowded;
    END IF;
END $$;
UPDATE billing_paymentmethod AS method SET slot = numbered.slot
FROM (
    SELECT id, row_number() OVER (
        PARTITION BY guardian_id ORDER BY is_primary DESC, id
    ) AS slot
    FROM billing_paymentmethod
) AS numbered
WHERE numbered.id = method.id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_ledger_refunds_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentmethod",
            name="slot",
            field=models.PositiveSmallIntegerField(editable=False, null=True),
        ),
        migrations.RunSQL(NUMBER_EXISTING, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="paymentmethod",
            name="slot",
            field=models.PositiveSmallIntegerField(editable=False),
        ),
        migrations.AddConstraint(
            model_name="paymentmethod",
            constraint=models.UniqueConstraint(
                fields=("guardian", "slot"), name="one_method_per_slot"
            ),
        ),
        migrations.AddConstraint(
            model_name="paymentmethod",
            constraint=models.CheckConstraint(
                condition=models.Q(("slot__gte", 1), ("slot__lte", 3)),
                name="at_most_three_methods",
            ),
        ),
    ]
