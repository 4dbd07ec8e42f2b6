"""Writes for families: students, guardians and their access, contact details.

Every function takes the acting guardian and checks what they may do here, in
one place (`families.rules`), so views stay thin and the rules are testable.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any, Protocol

from django.contrib.auth import password_validation
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.emails import normalise
from accounts.forms import QueuedPasswordResetForm
from accounts.models import User
from portal import clock, limits
from portal.tasks import queue_email
from portal.tenancy import current_provider, provider_language

from . import rules
from .exceptions import InvitationInvalid, NotAllowed
from .models import (
    AVATAR_COLOURS,
    ContactEmail,
    ContactPhone,
    Family,
    FamilyNote,
    Guardian,
    Invitation,
    MailingAddress,
    ProblemReport,
    Student,
)
from .selectors import Contact, family_login_emails

INVITATION_DAYS = 7
INVITATION_SALT = "families.invitation"


# Apps that hold family secrets react when a guardian loses access (enrollments
# resets the calendar links); each runs inside the revoking transaction.
class AccessRevokedHook(Protocol):
    def __call__(self, *, guardian: Guardian) -> object: ...


access_revoked_hooks: list[AccessRevokedHook] = []


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise NotAllowed(message)


# --- Students --------------------------------------------------------------------


def student_create(*, family: Family, actor: Guardian, **fields: Any) -> Student:
    _require(rules.may_edit_students(actor), _("You may not add students to this family."))
    student = Student(family=family, **fields)
    student.full_clean()
    student.save()
    if not student.colour:
        student.colour = AVATAR_COLOURS[student.pk % len(AVATAR_COLOURS)]
        student.save(update_fields=["colour"])
    return student


def student_update(*, student: Student, actor: Guardian, **fields: Any) -> Student:
    _require(rules.may_edit_students(actor), _("You may not edit students of this family."))
    for name, value in fields.items():
        setattr(student, name, value)
    student.full_clean()
    student.save()
    return student


# --- Guardians and access ----------------------------------------------------------


def guardian_add(
    *,
    family: Family,
    actor: Guardian,
    first_name: str,
    last_name: str,
    email: str = "",
    can_pay: bool = False,
    can_edit_students: bool = False,
    can_manage_enrollments: bool = False,
) -> Guardian:
    _require(actor.is_primary, _("Only the primary guardian adds guardians."))
    with transaction.atomic():
        guardian = Guardian.objects.create(
            family=family,
            first_name=first_name,
            last_name=last_name,
            can_pay=can_pay,
            can_edit_students=can_edit_students,
            can_manage_enrollments=can_manage_enrollments,
        )
        if email:
            email = normalise(email)
            existing = ContactEmail.objects.filter(family=family, email=email).first()
            if existing and existing.guardian_id:
                raise NotAllowed(
                    _("%(email)s belongs to another guardian of this family.") % {"email": email},
                    field="email",
                )
            if existing:  # an Unassigned value: it is theirs now
                existing.guardian = guardian
                existing.save(update_fields=["guardian"])
            else:
                ContactEmail.objects.create(family=family, email=email, guardian=guardian)
    return guardian


def guardian_update(*, guardian: Guardian, actor: Guardian, **fields: Any) -> Guardian:
    """Names (the guardian themselves, or the primary until they can log in) and
    permissions (the primary guardian, for the others)."""
    permission_fields = {"can_pay", "can_edit_students", "can_manage_enrollments"}
    name_fields = {"first_name", "last_name"}
    unknown = set(fields) - permission_fields - name_fields
    if unknown:
        raise ValueError(f"unknown guardian fields: {unknown}")
    if name_fields & set(fields):
        _require(
            rules.may_edit_details_of(actor, guardian),
            _("Only this guardian can change their own details now that they can log in."),
        )
    if permission_fields & set(fields):
        _require(
            actor.is_primary and not guardian.is_primary,
            _("Only the primary guardian sets what other guardians may do."),
        )
    for name, value in fields.items():
        setattr(guardian, name, value)
    guardian.full_clean()
    guardian.save()
    return guardian


def _invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce}, salt=INVITATION_SALT)


INVITER_NAME_MAX = 80
# A web address in a name: a scheme, "www.", or a host name ending in a top
# level domain ("evil.example", "pay-here.com"). "St. John" and "J.R.R." pass.
WEB_ADDRESS = re.compile(r"://|\bwww\.|[\w-]+\.[a-z]{2,}\b|@", re.IGNORECASE)


def _inviter_name(actor: Guardian | None, provider_name: str) -> str:
    """The name an invitation says it comes from, as plain data in its body.
    A name that could pass for a link or a message is refused, not cleaned."""
    if actor is None:
        return provider_name
    name = actor.full_name
    _require(
        not WEB_ADDRESS.search(name) and len(name) <= INVITER_NAME_MAX,
        _(
            "Your name as this portal has it cannot go into an invitation: it is longer "
            "than %(max)d characters or holds a web address. Correct your name under "
            "“My account”, then send the invitation again."
        )
        % {"max": INVITER_NAME_MAX},
    )
    return name


def invitation_send(
    *,
    guardian: Guardian,
    actor: Guardian | None,
    email: str,
    base_url: str,
    staff_user: User | None = None,
) -> Invitation:
    """Send (or send again) a login invitation; earlier links stop working.
    `actor` is the primary guardian, or None when provider staff send it from
    admin (`staff_user`).

    The e-mail is the provider's fixed text; the inviter's name appears only
    in its body, as data (never in the subject). The answer is the same
    whether or not the address has a login here (a parent's, a staff
    member's): an address with a login gets an e-mail saying so and telling
    them to log in, without a link that makes a login, so nobody learns from
    the portal which addresses have one. A family's primary guardian sends
    a limited number a day (portal.limits.INVITATION)."""
    if actor is not None:
        _require(actor.is_primary, _("Only the primary guardian sends invitations."))
    _require(not guardian.is_primary, _("The primary guardian can log in already."))
    _require(
        not (guardian.user is not None and guardian.user.is_active),
        _("%(name)s can log in already. Use “Reset password” if they forgot it.")
        % {"name": guardian.first_name},
    )
    provider = current_provider()
    inviter = _inviter_name(actor, provider.name)
    if actor is not None:
        limits.take(limits.INVITATION, guardian.family_id, field="email")
    email = normalise(email)
    others = User.objects.filter(email=email)
    if guardian.user_id is not None:
        others = others.exclude(pk=guardian.user_id)
    has_login = others.exists()
    now = clock.now()
    with transaction.atomic():
        Guardian.objects.select_for_update().get(pk=guardian.pk)
        guardian.invitations.filter(accepted_at=None, revoked_at=None).update(revoked_at=now)
        invitation = Invitation.objects.create(
            guardian=guardian,
            email=email,
            nonce=secrets.token_hex(16),
            expires_at=now + timedelta(days=INVITATION_DAYS),
            sent_by=actor.user if actor else staff_user,
        )
        ContactEmail.objects.get_or_create(
            family=guardian.family, email=email, defaults={"guardian": guardian}
        )
        context = {
            "inviter": inviter,
            "provider_name": provider.name,
            "days": INVITATION_DAYS,
            "login_url": base_url + reverse("login"),
        }
        if has_login:
            template = "families/email/invitation_has_login.txt"
        else:
            template = "families/email/invitation.txt"
            context["link"] = base_url + reverse(
                "families:invitation_accept", args=[_invitation_token(invitation)]
            )
        with provider_language():
            queue_email(
                subject=_("Your invitation to the family portal of %(provider)s")
                % {"provider": provider.name},
                body=render_to_string(template, context),
                to=[email],
                reply_to=[provider.support_email] if provider.support_email else None,
            )
    return invitation


def invitation_revoke(*, guardian: Guardian, actor: Guardian | None) -> None:
    """Stop a pending invitation, or end the login of a guardian who accepted.
    `actor` None: provider staff, from admin."""
    if actor is not None:
        _require(actor.is_primary, _("Only the primary guardian revokes access."))
        _require(guardian != actor, _("You cannot revoke your own access."))
    now = clock.now()
    with transaction.atomic():
        locked = Guardian.objects.select_for_update().get(pk=guardian.pk)
        changed = locked.invitations.filter(revoked_at=None).update(revoked_at=now)
        if locked.user_id:
            changed += User.objects.filter(pk=locked.user_id, is_active=True).update(
                is_active=False
            )
        if not changed:
            raise NotAllowed(_("There is no access to revoke."))
        for hook in access_revoked_hooks:
            hook(guardian=locked)


def invitation_check(token: str) -> Invitation:
    """The invitation behind a link, or InvitationInvalid saying why not."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature as error:
        raise InvitationInvalid(
            _("This invitation link is not valid. Check that you copied all of it."),
            reason="invalid",
        ) from error
    invitation = (
        Invitation.objects.select_related("guardian__family", "guardian__user")
        .filter(pk=data.get("i"), nonce=data.get("n"))
        .first()
    )
    if invitation is None:
        raise InvitationInvalid(_("This invitation link is not valid."), reason="invalid")
    if invitation.accepted_at:
        raise InvitationInvalid(
            _("This invitation was used already. Log in with the password you chose."),
            reason="used",
        )
    if invitation.revoked_at:
        raise InvitationInvalid(
            _("This invitation was withdrawn. Ask the family's primary guardian for a new one."),
            reason="revoked",
        )
    if invitation.expires_at <= clock.now():
        raise InvitationInvalid(
            _("This invitation has expired. Ask the family's primary guardian to send it again."),
            reason="expired",
        )
    return invitation


def invitation_accept(*, token: str, password: str) -> User:
    """Set the password, link the login to the guardian, and use up the link."""
    with transaction.atomic():
        invitation = invitation_check(token)
        # Lock, then check again: two tabs accepting at once use it once.
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at or invitation.revoked_at:
            raise InvitationInvalid(_("This invitation was used already."), reason="used")
        guardian = Guardian.objects.select_for_update().get(pk=invitation.guardian_id)
        user = guardian.user
        if user is not None and user.is_active:
            # Nobody takes over a login that works: only a revoked one is restored.
            raise InvitationInvalid(
                _("This guardian can log in already. Log in, or reset the password."),
                reason="used",
            )
        if user is None:
            user = User(email=invitation.email, full_name=guardian.full_name)
        password_validation.validate_password(password, user)
        user.email = invitation.email
        user.is_active = True
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as error:
            raise InvitationInvalid(
                _("%(email)s already has a login here. Log in with it instead.")
                % {"email": invitation.email},
                reason="taken",
            ) from error
        guardian.user = user
        guardian.save(update_fields=["user"])
        invitation.accepted_at = clock.now()
        invitation.save(update_fields=["accepted_at"])
    return user


def guardian_password_reset(*, guardian: Guardian, actor: Guardian, request: HttpRequest) -> None:
    """E-mail a secondary guardian a link to choose a new password."""
    _require(actor.is_primary, _("Only the primary guardian resets passwords."))
    user = guardian.user
    if user is None or not user.is_active:
        raise NotAllowed(_("This guardian cannot log in, so there is no password to reset."))
    limits.take(limits.RESET_EMAIL, user.email)
    form = QueuedPasswordResetForm(data={"email": user.email})
    form.is_valid()
    form.save(
        request=request,
        use_https=request.is_secure(),
        subject_template_name="registration/password_reset_subject.txt",
        email_template_name="registration/password_reset_email.txt",
        # django-stubs types this context as dict[str, str]; Django takes any values.
        extra_email_context={"provider": current_provider()},  # type: ignore[dict-item]
    )


# --- Contact details ---------------------------------------------------------------


def contact_save(*, contact: Contact, actor: Guardian, owner: Guardian | None) -> Contact:
    """Create or update an e-mail, phone or address, owned by `owner` (None: Unassigned)."""
    if contact.pk:
        previous = type(contact).objects.select_related("guardian__user").get(pk=contact.pk)
        _require(
            rules.may_edit_details_of(actor, previous.guardian),
            _("Only this guardian can change their own contact details."),
        )
        if isinstance(contact, ContactEmail) and previous.is_login:
            _require(
                normalise(contact.email) == previous.email,
                _("This is the login e-mail address: it cannot be changed here."),
            )
    _require(
        rules.may_edit_details_of(actor, owner),
        _("Only this guardian can change their own contact details."),
    )
    contact.family = actor.family
    contact.guardian = owner
    if isinstance(contact, ContactEmail):
        contact.email = normalise(contact.email)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError as error:
        raise NotAllowed(
            _("This family has that e-mail address already."), field="email"
        ) from error
    return contact


def contact_delete(
    *, contact: ContactEmail | ContactPhone | MailingAddress, actor: Guardian
) -> None:
    _require(
        rules.may_edit_details_of(actor, contact.guardian),
        _("Only this guardian can remove their own contact details."),
    )
    if isinstance(contact, ContactEmail) and contact.is_login:
        raise NotAllowed(_("The login e-mail address cannot be deleted."))
    contact.delete()


def contact_assign(*, contact: Contact, actor: Guardian, owner: Guardian | None) -> Contact:
    """Move a value to another guardian's column (or back to Unassigned)."""
    _require(
        rules.may_edit_details_of(actor, contact.guardian),
        _("Only this guardian can move their own contact details."),
    )
    if isinstance(contact, ContactEmail) and contact.is_login:
        raise NotAllowed(_("The login e-mail address stays with its guardian."))
    _require(
        owner is None or owner == actor or actor.is_primary,
        _("Only the primary guardian assigns details to other guardians."),
    )
    contact.guardian = owner
    contact.save(update_fields=["guardian"])
    return contact


def guardian_make_primary(*, guardian: Guardian, actor: User) -> Guardian:
    """Staff name a family's primary guardian (a family made at the desk, or
    the primary has left): the one who pays, enrols and grants the others
    their permissions in the portal."""
    from .actors import actor_require

    actor_require(
        actor, staff="families.change_guardian", refusal=_("You may not change guardians.")
    )
    with transaction.atomic():
        # One primary per family (a constraint): the family's guardians take turns.
        list(Guardian.objects.select_for_update().filter(family_id=guardian.family_id))
        Guardian.objects.filter(family_id=guardian.family_id, is_primary=True).exclude(
            pk=guardian.pk
        ).update(is_primary=False)
        Guardian.objects.filter(pk=guardian.pk).update(is_primary=True)
    guardian.is_primary = True
    return guardian


def family_note_add(*, family: Family, text: str, actor: User) -> FamilyNote:
    """Staff write down something about a family (for the office only)."""
    from .actors import actor_name, actor_require

    actor_require(
        actor, staff="families.add_familynote", refusal=_("You may not write family notes.")
    )
    text = text.strip()
    if not text:
        raise NotAllowed(_("Write the note first."))
    return FamilyNote.objects.create(
        family=family, text=text, author=actor, author_name=actor_name(actor)
    )


# --- Problem reports --------------------------------------------------------------------


def problem_report_create(
    *,
    reporter: User,
    family: Family | None,
    page: str,
    clicked: str,
    expected: str,
    focused_child: Student | None = None,
    screenshot: Any = None,
    user_agent: str = "",
) -> ProblemReport:
    """A parent's "Report a problem": saved, and the office e-mailed with a
    link to the report in the staff admin. A login sends a limited number an
    hour (portal.limits.PROBLEM_REPORT): past it nothing is saved or sent.
    `screenshot` is an image already capped and re-encoded
    (portal.uploads.image_clean, by the form's field)."""
    limits.take(limits.PROBLEM_REPORT, reporter.pk)
    if focused_child is not None and (family is None or focused_child.family_id != family.pk):
        focused_child = None
    report = ProblemReport(
        family=family,
        reporter=reporter,
        page=page[:500],
        focused_child=focused_child,
        clicked=clicked,
        expected=expected,
        user_agent=user_agent[:400],
    )
    if screenshot:
        report.screenshot = screenshot
    report.save()
    provider = current_provider()
    if provider.support_email:
        admin_url = provider.absolute_url(
            reverse("admin:families_problemreport_change", args=[report.pk])
        )
        queue_email(
            subject=_("Problem report from the %(family)s family")
            % {"family": family.name if family else reporter.email},
            body=render_to_string(
                "families/email/problem_report.txt",
                {"report": report, "provider": provider, "admin_url": admin_url},
            ),
            to=[provider.support_email],
        )
    return report


def problem_report_answer(
    *,
    report: ProblemReport,
    actor: User,
    answer: str,
    status: str,
    staff_note: str | None = None,
) -> ProblemReport:
    """Staff answer a family's problem report (and set its status; the
    internal notes stay with the office). A new or changed answer is
    e-mailed to the parent who reported, with a link to where it shows in
    their portal; a new report that gets an answer becomes "answered"."""
    from .actors import actor_require

    actor_require(
        actor,
        staff="families.change_problemreport",
        refusal=_("You may not answer problem reports."),
    )
    if status not in ProblemReport.Status.values:
        raise NotAllowed(_("Choose a status from the list."), field="status")
    answer = answer.strip()
    with transaction.atomic():
        locked = ProblemReport.objects.select_for_update().get(pk=report.pk)
        answered = bool(answer) and answer != locked.answer
        if answer != locked.answer:
            locked.answer = answer
            locked.answered_at = clock.now() if answer else None
            locked.answered_by_name = (actor.full_name or actor.email) if answer else ""
        if answered and status == ProblemReport.Status.NEW:
            status = ProblemReport.Status.ANSWERED
        locked.status = status
        if staff_note is not None:
            locked.staff_note = staff_note
        locked.save()
        if answered:
            _problem_report_answer_send(locked)
    return locked


@provider_language()
def _problem_report_answer_send(report: ProblemReport) -> None:
    """To the parent who reported (or, if that login is gone, the family's)."""
    reporter = report.reporter
    if reporter is not None and reporter.is_active:
        to = [reporter.email]
    elif report.family_id is not None:
        to = family_login_emails(report.family_id)
    else:
        to = []
    if not to:
        return
    provider = current_provider()
    link = provider.absolute_url(reverse("families:problem_report", args=[report.pk]))
    queue_email(
        subject=_("An answer to your problem report from %(provider)s")
        % {"provider": provider.name},
        body=render_to_string(
            "families/email/problem_report_answer.txt",
            {"report": report, "provider": provider, "link": link},
        ),
        to=to,
        reply_to=[provider.support_email] if provider.support_email else None,
    )
