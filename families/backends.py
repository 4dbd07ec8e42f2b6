"""Loading the logged-in user on a provider's host also loads their guardian
and family, and the family's data version (families.pagecache), in the same
query: every family page needs them."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend, UserModel
from django.db.models.expressions import RawSQL

from families import changes
from portal.tenancy import current_schema


class PortalBackend(ModelBackend):
    def get_user(self, user_id):
        if current_schema() == "public":
            return super().get_user(user_id)
        user = (
            UserModel._default_manager.select_related("guardian__family")
            .annotate(
                family_version=RawSQL(changes.version_sql('"families_guardian"."family_id"'), [])
            )
            .filter(pk=user_id)
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
