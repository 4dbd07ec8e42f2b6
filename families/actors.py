"""Who acts in a service: a guardian of the family (within what their family
lets them do) or a provider's staff login (with a named permission). One
helper decides, and every history row records the actor as it was then."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _

from accounts.models import User

from .exceptions import NotAllowed
from .models import Family, Guardian

Actor = Guardian | User


def actor_require(
    actor: Actor,
    *,
    staff: str,
    guardian: Callable[[Guardian], bool] | None = None,
    family: Family | int | None = None,
    refusal: str | None = None,
) -> None:
    """Refuse unless `actor` may act: a staff login holding the permission
    `staff` ("app.codename"), or a guardian of `family` for whom `guardian`
    says yes (no `guardian` check: guardians may not do this at all)."""
    if isinstance(actor, Guardian):
        family_id = family.pk if isinstance(family, Family) else family
        allowed = (
            guardian is not None
            and (family_id is None or actor.family_id == family_id)
            and guardian(actor)
        )
    else:
        allowed = actor.is_active and actor.is_staff and actor.has_perm(staff)
    if not allowed:
        raise NotAllowed(refusal or _("You may not do this."))


def is_staff_actor(actor: Actor) -> bool:
    return isinstance(actor, User)


def actor_user(actor: Actor | None) -> User | None:
    """The login behind the actor, for the history's `actor` column."""
    if actor is None:
        return None
    return actor if isinstance(actor, User) else actor.user


def actor_name(actor: Actor | None) -> str:
    """The actor's name as it reads now, kept beside the id in history rows
    (a login renamed or deactivated later leaves the record as it was)."""
    if actor is None:
        return _("The portal")
    if isinstance(actor, User):
        return f"{actor.full_name or actor.email} ({_('staff')})"
    return actor.full_name
