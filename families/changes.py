"""Which family a database change belongs to, recorded by PostgreSQL itself.

Every table whose rows a family sees has statement-level triggers (insert,
update, delete) that add one FamilyChange row per family touched; tables
whose rows any family may see (classes, sessions, places taken) record the
change for everyone (family 0). Because the database records it in the same
transaction as the change, no write path can forget it: the admin, bulk
updates, Celery tasks and raw SQL all count. A family's data version is the
newest change for it or for everyone; pages cached under that version
(families.pagecache) can never show data older than it.

`families/tests/test_changes.py` checks that every table of a provider's
schema is either tracked here or listed as never shown to families.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import connection

EVERYONE = "SELECT 0 FROM {t}"


def _own(column: str = "family_id") -> str:
    return f"SELECT {column} FROM {{t}}"


def _via(table: str, column: str, family: str = "family_id") -> str:
    return f"SELECT p.{family} FROM {{t}} c JOIN {table} p ON p.id = c.{column}"


def _via_student(column: str = "student_id") -> str:
    return _via("families_student", column)


def _via_enrollment() -> str:
    return (
        "SELECT s.family_id FROM {t} c JOIN enrollments_enrollment e ON e.id = c.enrollment_id "
        "JOIN families_student s ON s.id = e.student_id"
    )


# table: how to find the families its changed rows belong to
TRACKED = {
    "accounts_user": "SELECT g.family_id FROM {t} c JOIN families_guardian g ON g.user_id = c.id",
    "families_family": _own("id"),
    "families_guardian": _own(),
    "families_student": _own(),
    "families_invitation": _via("families_guardian", "guardian_id"),
    "families_contactemail": _own(),
    "families_contactphone": _own(),
    "families_mailingaddress": _own(),
    # The family's problem reports and the office's answers (their account page).
    "families_problemreport": _own(),
    "enrollments_location": EVERYONE,
    "enrollments_level": EVERYONE,
    "enrollments_skill": EVERYONE,
    "enrollments_programme": EVERYONE,
    "enrollments_instructor": EVERYONE,
    "enrollments_class": EVERYONE,
    "enrollments_session": EVERYONE,
    # Places taken and waitlist positions show on other families' pages.
    "enrollments_enrollment": EVERYONE,
    "enrollments_enrollmentchange": _via_enrollment(),
    # An open offer holds a place (with_free_places) and shows on the family's page.
    "enrollments_waitlistoffer": EVERYONE,
    "enrollments_attendance": _via_enrollment(),
    "enrollments_evaluation": _via_student(),
    "enrollments_absence": _via_student(),
    "enrollments_absencemark": _via_enrollment(),
    "enrollments_calendarfeed": _own(),
    "benefits_makeuptoken": _via_student(),
    "benefits_tokenevent": (
        "SELECT s.family_id FROM {t} c JOIN benefits_makeuptoken k ON k.id = c.token_id "
        "JOIN families_student s ON s.id = k.student_id"
    ),
    "benefits_makeuprequest": EVERYONE,
    "benefits_pass": _own(),
    "benefits_passevent": _via("benefits_pass", "pass_obj_id"),
    "benefits_creditgrant": _own(),
    "benefits_credituse": _via("benefits_creditgrant", "grant_id"),
    "benefits_discount": _own(),
    "benefits_discountuse": _via("benefits_discount", "discount_id"),
    "benefits_voucher": EVERYONE,
    "benefits_voucherredemption": _own(),
    "billing_order": _own(),
    "billing_orderline": _via("billing_order", "order_id"),
    "billing_ledgerentry": _own(),
    "billing_stripecustomer": _via("families_guardian", "guardian_id"),
    "billing_paymentmethod": _via("families_guardian", "guardian_id"),
    "billing_payment": _own(),
    "billing_refund": _via("billing_payment", "payment_id"),
    "billing_invoice": _via("billing_order", "order_id"),
    "billing_creditnote": _via("billing_order", "order_id"),
    # A refund being made shows on the order's page until it is booked.
    "billing_refundrequest": _via("billing_payment", "payment_id"),
    "billing_document": _own(),
}

# Tables never shown on a family's pages.
UNTRACKED = {
    "django_content_type",
    "django_migrations",
    "django_session",
    "django_admin_log",
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
    "accounts_user_groups",
    "accounts_user_user_permissions",
    "families_familychange",
    "families_staffview",
    "families_familynote",  # staff notes: the office only
    "benefits_remindersent",
    "benefits_expirycheckpoint",  # where the expiry job left off
    "billing_stripeevent",
    "billing_numbersequence",
    "billing_finding",  # what the checks found: staff only
}

FUNCTION = """
CREATE OR REPLACE FUNCTION portal_family_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE 'INSERT INTO families_familychange (family_id) SELECT DISTINCT f FROM ('
            || replace(TG_ARGV[0], '{t}', 'changed_new') || ') AS x(f) WHERE f IS NOT NULL';
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE 'INSERT INTO families_familychange (family_id) SELECT DISTINCT f FROM ('
            || replace(TG_ARGV[0], '{t}', 'changed_old') || ') AS x(f) WHERE f IS NOT NULL';
    END IF;
    RETURN NULL;
END $$;
"""


def install_sql(existing: Collection[str] | None = None) -> list[str]:
    """The function and, per tracked table, its three triggers (idempotent).
    A migration passes the tables that exist at its point in history: a table
    a later migration makes gets its triggers from that later migration."""
    statements = [FUNCTION]
    for table, select in TRACKED.items():
        if existing is not None and table not in existing:
            continue
        argument = select.replace("'", "''")
        for event, referencing in [
            ("INSERT", "NEW TABLE AS changed_new"),
            ("UPDATE", "OLD TABLE AS changed_old NEW TABLE AS changed_new"),
            ("DELETE", "OLD TABLE AS changed_old"),
        ]:
            name = f"family_changed_{event.lower()}"
            statements.append(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')
            statements.append(
                f'CREATE TRIGGER {name} AFTER {event} ON "{table}" '
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION portal_family_changed('{argument}')"
            )
    return statements


def version_sql(family_column: str) -> str:
    """SQL for the newest change that may show on the family in
    `family_column`'s pages (NULL when there is none)."""
    return (
        "GREATEST("
        f"(SELECT max(id) FROM families_familychange WHERE family_id = {family_column}), "
        "(SELECT max(id) FROM families_familychange WHERE family_id = 0))"
    )


def data_version(family_id: int) -> int:
    """The newest change that may show on this family's pages (one query;
    loading the logged-in parent reads it too: families.backends)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + version_sql("%s"), [family_id])
        return cursor.fetchone()[0] or 0


def prune() -> int:
    """Drop change records that a newer one for the same family supersedes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM families_familychange c WHERE c.id < "
            "(SELECT max(n.id) FROM families_familychange n WHERE n.family_id = c.family_id)"
        )
        return cursor.rowcount
