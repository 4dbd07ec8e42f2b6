"""Staff roles of a provider: groups with permissions, the same at every
provider. The owner holds every permission; nobody in a provider's schema is
a superuser. Made (and kept current) after every migration of a provider's
schema; new providers copy them from the template schema."""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from portal.tenancy import current_schema

OWNER = "Owner"
MANAGER = "Manager"
FRONT_DESK = "Front desk"
ROLES = [FRONT_DESK, MANAGER, OWNER]
ROLE_HELP = {
    FRONT_DESK: _("The day at the desk: families, enrolments, absences, make-ups, passes."),
    MANAGER: _(
        "Everything but staff logins and the provider's settings: refunds, "
        "adjustments, credit, enrolling over capacity."
    ),
    OWNER: _("Every permission, staff logins and settings included."),
}

# Apps whose records the front desk may see.
_DESK_APPS = ["families", "enrollments", "benefits", "billing"]
# What the front desk may do besides seeing: "app.codename".
_DESK_DO = [
    "families.add_family", "families.change_family",
    "families.add_guardian", "families.change_guardian",
    "families.add_student", "families.change_student",
    "families.add_contactemail", "families.change_contactemail",
    "families.add_contactphone", "families.change_contactphone",
    "families.add_mailingaddress", "families.change_mailingaddress",
    "families.change_problemreport", "families.view_as_family", "families.add_familynote",
    "enrollments.add_enrollment", "enrollments.change_enrollment",
    "enrollments.change_session", "enrollments.add_absence", "enrollments.change_absence",
    "enrollments.add_attendance", "enrollments.change_attendance",
    "enrollments.add_evaluation", "enrollments.change_evaluation",
    "benefits.add_makeuptoken", "benefits.change_makeuprequest",
    "benefits.add_pass", "benefits.change_pass",
    "billing.add_order", "billing.change_order",
    "providers.view_provider",
]  # fmt: skip
# What only the owner may do: staff logins and roles, the provider's settings.
_OWNER_ONLY = (
    Q(content_type__app_label__in=["auth", "admin"])
    | Q(content_type__app_label="accounts") & ~Q(codename="view_user")
    | Q(content_type__app_label="providers", codename__in=["change_provider", "delete_provider"])
)


def _codenames(names: list[str]) -> Q:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return query


def role_permissions() -> dict[str, list[Permission]]:
    everything = Permission.objects.select_related("content_type")
    desk = everything.filter(
        Q(content_type__app_label__in=_DESK_APPS, codename__startswith="view_")
        | _codenames(_DESK_DO)
    )
    return {
        OWNER: list(everything),
        MANAGER: list(everything.exclude(_OWNER_ONLY)),
        FRONT_DESK: list(desk),
    }


def roles_ensure() -> None:
    """The role groups with exactly their permissions (idempotent); logins
    that were superusers become owners."""
    from accounts.models import User

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    groups = {}
    for name, permissions in role_permissions().items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
        groups[name] = group
    for user in User.objects.filter(is_superuser=True):
        user.groups.add(groups[OWNER])
    User.objects.filter(is_superuser=True).update(is_superuser=False, is_staff=True)


def after_migrate(sender, app_config=None, **kwargs) -> None:
    """post_migrate, once per schema (sent for the last installed app):
    providers' schemas and the template get the roles; public does not."""
    # Django sends post_migrate only for apps with models.
    with_models = [a for a in global_apps.get_app_configs() if a.models_module is not None]
    if app_config is not with_models[-1]:
        return
    if current_schema() != "public":
        roles_ensure()
