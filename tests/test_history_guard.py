"""Records of staff views, settings changes and enrolment history cannot be
changed or deleted: PostgreSQL itself refuses, whatever the code path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from accounts.models import User
from enrollments.models import EnrollmentChange
from families.models import Family, StaffView
from providers.models import Provider, SettingsChange
from providers.services import provider_settings_update

pytestmark = pytest.mark.django_db


def refused(sql: str) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    except DatabaseError as error:
        return "Cannot" in str(error) or "protect" in str(error).lower()
    return False


def test_staff_views_and_enrolment_history_refuse_update_and_delete(aquakids):
    connection.set_tenant(aquakids)
    staff = User.objects.get(email="staff@aquakids.test")
    StaffView.objects.create(staff=staff, family=Family.objects.first())
    assert EnrollmentChange.objects.exists()
    for table in ("families_staffview", "enrollments_enrollmentchange"):
        assert refused(f"UPDATE {table} SET at = now()"), table
        assert refused(f"DELETE FROM {table}"), table
    # The ORM's bulk paths meet the same refusal.
    with pytest.raises(DatabaseError), transaction.atomic():
        StaffView.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        EnrollmentChange.objects.update(note="rewritten")
    # New rows are still written.
    StaffView.objects.create(staff=staff, family=Family.objects.first())


def test_settings_changes_refuse_update_and_delete(aquakids):
    connection.set_schema_to_public()
    provider = Provider.objects.get(slug="aquakids")
    provider_settings_update(
        provider=provider, changes={"support_phone": "+43 1 555 0100"}, changed_by="desk@x.test"
    )
    assert SettingsChange.objects.filter(provider=provider).exists()
    assert refused("UPDATE providers_settingschange SET old = 'x'")
    assert refused("DELETE FROM providers_settingschange")


def test_a_login_with_history_cannot_be_deleted_out_from_under_it(aquakids):
    """Deleting a user once rewrote its history (SET NULL); now the history
    holds on to it (PROTECT) and staff deactivate logins instead."""
    from django.db.models import ProtectedError

    connection.set_tenant(aquakids)
    staff = User.objects.get(email="staff@aquakids.test")
    StaffView.objects.create(staff=staff, family=Family.objects.first())
    with pytest.raises(ProtectedError), transaction.atomic():
        staff.delete()


# --- Every history table, in the template the migrations make and in a schema
# made after them (providers.schema's replay) ----------------------------------------------


def history_models() -> list[Any]:
    """Every concrete model whose rows are history (portal.models.AppendOnly)."""
    from django.apps import apps

    from portal.models import AppendOnly

    return sorted(
        (m for m in apps.get_models() if issubclass(m, AppendOnly)), key=lambda m: m._meta.label
    )


TENANT_HISTORY = [m._meta.label for m in history_models() if m._meta.app_label != "providers"]


def test_every_history_model_is_guarded_by_postgresql():
    unguarded = [
        m._meta.label
        for m in history_models()
        if "append_only" not in {t.name for t in getattr(m._meta, "triggers", [])}
    ]
    assert not unguarded
    # The money and benefit histories are among them.
    assert {
        "billing.LedgerEntry",
        "billing.Refund",
        "billing.CreditNote",
        "benefits.TokenEvent",
        "benefits.PassEvent",
        "benefits.CreditGrant",
        "benefits.CreditUse",
        "benefits.DiscountUse",
        "benefits.VoucherRedemption",
    } <= set(TENANT_HISTORY)


@pytest.mark.parametrize("label", TENANT_HISTORY)
def test_the_migrations_install_the_guard_in_the_template(label):
    from django.apps import apps
    from django.conf import settings

    table = apps.get_model(label)._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.tgenabled, pg_get_triggerdef(t.oid)
            FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND t.tgname LIKE 'pgtrigger_append_only_%%'
            """,
            [settings.TENANT_BASE_SCHEMA, table],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, (label, rows)
    enabled, definition = rows[0]
    assert enabled == "O" and "BEFORE DELETE OR UPDATE" in definition, definition


@pytest.fixture
def one_row_of_each_history(race_provider):
    """One row in every tenant history table of a provider whose schema was
    made after the migrations ran (providers.schema replays them), each made
    the way the product makes it; rolled back with the test."""
    from accounts import roles
    from benefits import services as benefits
    from benefits.models import Discount, DiscountUse, Pass, Voucher
    from benefits.tests.factories import family_with_child
    from billing import services as billing
    from billing.tests.helpers import new_order
    from families.services import family_note_add
    from providers.services import staff_user_ensure

    staff = staff_user_ensure(
        provider=race_provider,
        email="guard-owner@race.test",
        password="Guard-pass-1234",
        full_name="Guard",
        role=roles.OWNER,
    )
    connection.set_tenant(race_provider)
    family, guardian, student, _home = family_with_child(login="guard@race.test")
    StaffView.objects.create(staff=staff, family=family)  # and enrol() wrote an EnrollmentChange
    family_note_add(family=family, text="Guarded", actor=staff)
    order = new_order(family, amount="40.00")
    payment = billing.payment_record_offline(
        order=order, amount=None, method="offline", key="guard", actor_user=None
    )
    billing.refund_create(payment=payment, amount=Decimal("5"), reason="Guard", actor_user=None)
    billing.credit_note_issue(
        order=new_order(family), amount=Decimal("5"), reason="g", actor_user=None
    )
    billing.finding_record(source="check", code="guard", message="Guard", family=family)
    benefits.token_issue(student=student, reason="goodwill")
    benefits.pass_create(family=family, kind=Pass.Kind.PUNCH, name="Guard", punches=2)
    benefits.credit_grant(family=family, amount=Decimal("3"), source="goodwill", description="g")
    benefits.credit_spend(family=family, amount=Decimal("1"), where="x", reference="guard-1")
    discount = Discount.objects.create(
        family=family, kind="promotional", description="Guard", percent=Decimal("10")
    )
    DiscountUse.objects.create(discount=discount, amount=Decimal("4"), where="Order")
    Voucher.objects.create(code="GUARD", kind="gift", description="g", credit_amount=Decimal("2"))
    benefits.voucher_redeem(code="GUARD", family=family, actor=guardian)
    return race_provider


@pytest.mark.parametrize("label", TENANT_HISTORY)
def test_raw_update_and_delete_are_refused_in_a_schema_made_after_the_migrations(
    one_row_of_each_history, label
):
    from django.apps import apps

    model = apps.get_model(label)
    table = connection.ops.quote_name(model._meta.db_table)
    assert model.objects.exists(), label  # a row-level guard needs a row to refuse
    before = model.objects.count()
    assert refused(f"UPDATE {table} SET id = id"), label
    assert refused(f"DELETE FROM {table}"), label
    assert model.objects.count() == before
    # A bulk update through the ORM meets the same refusal.
    with pytest.raises(DatabaseError, match="Cannot update"), transaction.atomic():
        model.objects.update(id=F("id"))
