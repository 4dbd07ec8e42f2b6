"""Records of staff views, settings changes and enrolment history cannot be
changed or deleted: PostgreSQL itself refuses, whatever the code path."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

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
