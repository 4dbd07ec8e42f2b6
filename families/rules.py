"""Who may do what inside a family: the one place these rules live."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal import clock

from .models import Guardian

CAN_LOG_IN = "can_log_in"
INVITE_SENT = "invite_sent"
INVITE_EXPIRED = "invite_expired"
INVITE_REVOKED = "invite_revoked"
NO_LOGIN = "no_login"

ACCESS_LABELS = {
    CAN_LOG_IN: _("Can log in"),
    INVITE_SENT: _("Invite sent"),
    INVITE_EXPIRED: _("Invite expired"),
    INVITE_REVOKED: _("Invite revoked"),
    NO_LOGIN: _("No login"),
}


def has_accepted(guardian: Guardian) -> bool:
    """A guardian with a login of their own: from then on only they edit their details."""
    return guardian.user_id is not None


def may_edit_students(actor: Guardian) -> bool:
    return actor.may_edit_students


def may_edit_details_of(actor: Guardian, owner: Guardian | None) -> bool:
    if owner is None:  # the Unassigned column is the primary guardian's to sort out
        return actor.is_primary
    if owner.pk == actor.pk:
        return True
    return actor.is_primary and owner.family_id == actor.family_id and not has_accepted(owner)


def access_state(guardian: Guardian) -> str:
    """Expects `guardian.invitations` prefetched (newest first) and `user` joined."""
    user = guardian.user if guardian.user_id else None
    if user is not None and user.is_active:
        return CAN_LOG_IN
    invitations = list(guardian.invitations.all())
    latest = invitations[0] if invitations else None
    if latest is None:
        return INVITE_REVOKED if guardian.user_id else NO_LOGIN
    if latest.revoked_at or latest.accepted_at:
        return INVITE_REVOKED
    if latest.expires_at <= clock.now():
        return INVITE_EXPIRED
    return INVITE_SENT


# What a guardian without a permission is told, and whom to ask.
_REFUSALS = {
    "pay": _("Only a guardian who may pay can pay."),
    "manage_enrollments": _("Only a guardian who may manage enrolments can do this."),
    "edit_students": _("Only a guardian who may edit children’s details can do this."),
    "primary": _("Only the primary guardian can do this."),
}


def refusal(guardian: Guardian, permission: str) -> str:
    """The refusal's message, naming the family's primary guardian to ask:
    "Only a guardian who may pay can pay. Ask Ana Novak, the primary guardian."."""
    from django.utils.translation import gettext

    text = str(_REFUSALS[permission])
    primary = (
        Guardian.objects.filter(family_id=guardian.family_id, is_primary=True)
        .only("first_name", "last_name")
        .first()
    )
    if primary is None or primary.pk == guardian.pk:
        return text
    return f"{text} " + gettext("Ask %(name)s, the primary guardian.") % {"name": primary.full_name}
