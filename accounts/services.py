"""Staff logins of a provider: invited by an owner, given a role, and
deactivated (never deleted) once they have history."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.db import router, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from portal.exceptions import PortalError
from portal.tasks import queue_email
from portal.tenancy import current_provider

from . import roles
from .emails import normalise
from .models import User


class StaffError(PortalError):
    pass


def _require(actor: User, permission: str) -> None:
    if not (actor.is_active and actor.is_staff and actor.has_perm(permission)):
        raise StaffError(_("You may not manage staff logins."))


def staff_invite(*, email: str, full_name: str, role: str, actor: User, base_url: str) -> User:
    """A new staff login with this role and no password yet; the e-mail it
    receives holds a link to choose one (valid as a password reset is)."""
    _require(actor, "accounts.add_user")
    return _invite(
        email=email, full_name=full_name, role=role, invited_by=str(actor), base_url=base_url
    )


def owner_invite(*, email: str, base_url: str) -> User:
    """The first owner of a provider the platform has just set up (run in the
    provider's schema by providers.services.provider_setup)."""
    from django.utils.translation import gettext as _

    return _invite(
        email=email, full_name="", role=roles.OWNER, invited_by=_("The platform"), base_url=base_url
    )


def _invite(*, email: str, full_name: str, role: str, invited_by: str, base_url: str) -> User:
    if role not in roles.ROLES:
        raise StaffError(_("Choose one of the roles."))
    email = normalise(email)
    with transaction.atomic():
        if User.objects.filter(email=email).exists():
            raise StaffError(_("There is a login with this e-mail address already."))
        user = User.objects.create_user(email, None, full_name=full_name, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        provider = current_provider()
        link = base_url + reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context = {
            "provider": provider,
            "user": user,
            "role": role,
            "by": invited_by,
            "link": link,
            "admin_url": base_url + reverse("admin:index"),
        }
        queue_email(
            subject=_("You are invited to the %(name)s admin") % {"name": provider.name},
            body=render_to_string("accounts/email/staff_invitation.txt", context),
            to=[user.email],
            reply_to=[provider.support_email] if provider.support_email else None,
        )
    return user


def login_has_history(user: User) -> bool:
    """True when records hold on to this login (enrolment history, staff
    views, ledger entries...): it can then only be deactivated."""
    collector = Collector(using=router.db_for_write(User), origin=user)
    try:
        collector.collect([user])
    except (ProtectedError, RestrictedError):
        return True
    # Records that would lose their actor (SET NULL) count as history too.
    return any(collector.field_updates.values()) or any(
        model is not User and objs for model, objs in collector.data.items()
    )


def login_deactivate(*, user: User, actor: User) -> User:
    """The login stops working at once (the session backend refuses inactive
    users); every record that names it stays as it was."""
    _require(actor, "accounts.change_user")
    if user.pk == actor.pk:
        raise StaffError(_("You cannot deactivate your own login."))
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    return user


def staff_language_set(*, user: User, language: str) -> User:
    """The language a staff login reads the admin and the front desk in
    (blank: the provider's); dates follow the language's formats."""
    if language and language not in dict(settings.LANGUAGES):
        raise StaffError(_("Choose one of the languages offered."))
    user.language = language
    user.save(update_fields=["language"])
    return user
