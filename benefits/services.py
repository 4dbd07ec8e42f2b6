"""Benefit actions. Spending runs in one transaction that locks what it spends
(the token, pass, credit grants or voucher row) before checking that it is
still there, then writes the history entry that spends it. A second request
racing for the same thing waits for the lock, finds it gone, and gets a clear
message."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from accounts.models import User
from enrollments import services as enrollment_services
from enrollments.models import Absence, Enrollment, Location, Programme, Session
from enrollments.selectors import booked_session, session_free_places, sessions_marked_absent
from families.actors import Actor, actor_require, actor_user
from families.models import Family, Guardian, Student
from families.selectors import family_login_emails
from portal import clock, formatting, limits
from portal.clock import local, today
from portal.exceptions import PortalError
from portal.money import to_decimal
from portal.tasks import queue_email
from portal.tenancy import current_provider, provider_language

from . import rules, selectors
from .models import (
    ZERO,
    CreditGrant,
    CreditUse,
    Discount,
    DiscountUse,
    ExpiryCheckpoint,
    MakeupRequest,
    MakeupToken,
    Pass,
    PassEvent,
    TokenEvent,
    Voucher,
    VoucherRedemption,
)
from .selectors import family_credit_balance, spendable_credit, with_credit_left

if TYPE_CHECKING:
    from providers.models import Provider


class BenefitError(PortalError):
    pass


def _provider() -> Provider:
    return current_provider()


def _token_locked(token_id: int) -> MakeupToken:
    token = (
        MakeupToken.objects.select_for_update(of=("self",))
        .select_related("location")
        .get(pk=token_id)
    )
    # Fresh events after the lock (not a prefetch from before it).
    prefetch_related_objects(
        [token],
        Prefetch(
            "events",
            queryset=TokenEvent.objects.select_related("enrollment__session").order_by("at", "pk"),
        ),
    )
    return token


# --- Make-up tokens ------------------------------------------------------------------------


def _check_staff(actor_user: User | None, permission: str) -> None:
    """Staff acting need the permission (families.actors decides). Calls
    without a login (the portal itself) or with a family's login made inside
    a service that checked the family (absences, vouchers) pass."""
    if actor_user is not None and actor_user.is_staff:
        actor_require(actor_user, staff=permission)


def token_issue(
    *,
    student: Student,
    reason: str,
    expires_on: date | None = None,
    location: Location | None = None,
    source_session: Session | None = None,
    actor_user: User | None = None,
    note: str = "",
) -> MakeupToken:
    """Issue a token; a second call for the same missed session returns the
    first. Valid for the provider's days from the missed session (so a token
    for an absence far ahead lasts past the lesson it replaces), or from
    today without one."""
    _check_staff(actor_user, "benefits.add_makeuptoken")
    if expires_on is None:
        start = today()
        if source_session is not None:
            start = max(start, local(source_session.starts_at).date())
        expires_on = start + timedelta(days=_provider().makeup_token_days)
    try:
        with transaction.atomic():
            token = MakeupToken.objects.create(
                student=student,
                reason=reason,
                expires_on=expires_on,
                location=location,
                source_session=source_session,
                issued_by=actor_user,
                note=note,
            )
            TokenEvent.objects.create(token=token, kind=TokenEvent.Kind.ISSUED, actor=actor_user)
    except IntegrityError:
        return MakeupToken.objects.get(student=student, source_session=source_session)
    return token


def tokens_for_absence(*, absence: Absence) -> list[MakeupToken]:
    """Provider rule: an absence reported early enough earns a token per session."""
    provider = _provider()
    if not provider.makeup_tokens_enabled:
        return []
    notice = timedelta(hours=provider.makeup_notice_hours)
    issued = []
    for mark in absence.marks.select_related("session__klass"):
        if mark.session.starts_at - notice < absence.created_at:
            continue
        earlier = MakeupToken.objects.filter(
            student=absence.student, source_session=mark.session
        ).first()
        if earlier is not None:
            # Reported again after a cancelled absence took the token back:
            # the same token is given again (one token per missed session).
            token = _token_locked(earlier.pk)
            if token.reason == MakeupToken.Reason.ABSENCE and rules.token_state(token) == (
                rules.REVOKED
            ):
                TokenEvent.objects.create(
                    token=token,
                    kind=TokenEvent.Kind.ISSUED,
                    actor=absence.created_by,
                    note=_("Absence reported again"),
                )
            issued.append(token)
            continue
        issued.append(
            token_issue(
                student=absence.student,
                reason=MakeupToken.Reason.ABSENCE,
                location=mark.session.klass.location,
                source_session=mark.session,
                actor_user=absence.created_by,
            )
        )
    return issued


def tokens_for_cancelled_absence(*, absence: Absence, actor: Actor) -> list[Enrollment]:
    """An absence is being cancelled (enrollments holds the student and the
    absence locked, in its transaction): the tokens it earned are revoked and
    make-ups booked with them that are still to come are cancelled, and the
    family is told. Refused when such a make-up has taken place already.
    A token stays when another absence still covers its session, or when
    the school cancelled that session (which earns it anyway). Returns the
    make-ups cancelled."""
    marks = list(absence.marks.select_related("session"))
    still_away = sessions_marked_absent(
        student=absence.student, session_ids=[m.session_id for m in marks]
    )
    missed = [
        m.session_id for m in marks if m.session_id not in still_away and not m.session.is_cancelled
    ]
    ids = (
        MakeupToken.objects.filter(
            student_id=absence.student_id,
            source_session_id__in=missed,
            reason=MakeupToken.Reason.ABSENCE,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    tokens = [_token_locked(pk) for pk in ids]  # in one order: no deadlock
    for token in tokens:
        if rules.token_state(token) == rules.SPENT:
            applied = rules.applied_event(token)
            assert applied is not None and applied.enrollment is not None
            raise BenefitError(
                _(
                    "A make-up token from this absence was used on %(day)s, and that make-up "
                    "has taken place, so the absence stays. Please contact the office."
                )
                % {"day": formatting.moment(booked_session(applied.enrollment).starts_at, "long")}
            )
    return _tokens_take_back(
        tokens, student=absence.student, actor=actor, note=_("The absence was cancelled")
    )


def _tokens_take_back(
    tokens: list[MakeupToken], *, student: Student, actor: Actor, note: str
) -> list[Enrollment]:
    """Revoke these tokens (locked by the caller, in one order); a make-up
    still to come booked with one is cancelled first and the family told.
    Spent and already revoked or expired tokens are left as they are.
    Returns the make-ups cancelled."""
    user = actor_user(actor)
    cancelled: list[Enrollment] = []
    for token in tokens:
        state = rules.token_state(token)
        if state == rules.PENDING:
            applied = rules.applied_event(token)
            assert applied is not None and applied.enrollment is not None
            booking = (
                Enrollment.objects.select_for_update(of=("self",))
                .select_related("session__klass__programme", "session__klass__location")
                .get(pk=applied.enrollment.pk)
            )
            enrollment_services.single_booking_cancel(enrollment=booking, actor_user=user)
            TokenEvent.objects.create(
                token=token, kind=TokenEvent.Kind.RETURNED, enrollment=booking, actor=user
            )
            cancelled.append(booking)
        if state in (rules.AVAILABLE, rules.PENDING):
            TokenEvent.objects.create(
                token=token, kind=TokenEvent.Kind.REVOKED, actor=user, note=note
            )
    if cancelled:
        _send_makeups_cancelled(student, cancelled)
    return cancelled


def tokens_for_left_class(*, enrollment: Enrollment, since: date, actor: Actor) -> None:
    """A child leaves a class (drop or transfer) from `since`: sessions of that
    class from then on are no longer the child's, so the tokens absences from
    them earned are revoked, and make-ups still to come booked with them are
    cancelled (the family is told). A make-up that has taken place stays."""
    # Sessions from `since` that had not started yet: those already held stay missed.
    starts = max(datetime.combine(since, time.min, tzinfo=clock.provider_zone()), clock.now())
    ids = (
        MakeupToken.objects.filter(
            student_id=enrollment.student_id,
            reason=MakeupToken.Reason.ABSENCE,
            source_session__klass_id=enrollment.klass_id,
            source_session__starts_at__gte=starts,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    tokens = [_token_locked(pk) for pk in ids]  # in one order: no deadlock
    _tokens_take_back(
        tokens,
        student=enrollment.student,
        actor=actor,
        note=_("The child left the class of the missed session"),
    )


@provider_language()
def _send_makeups_cancelled(student: Student, bookings: list[Enrollment]) -> None:
    provider = _provider()
    context = {"student": student, "bookings": bookings, "provider": provider}
    for email in family_login_emails(student.family_id):
        queue_email(
            subject=_("Make-up cancelled for %(name)s") % {"name": student.first_name},
            body=render_to_string("benefits/email/makeups_cancelled.txt", context),
            to=[email],
            reply_to=[provider.support_email] if provider.support_email else None,
        )


def tokens_for_cancelled_session(
    *, session: Session, students: Iterable[Student]
) -> list[MakeupToken]:
    if not _provider().makeup_tokens_enabled:
        return []
    return [
        token_issue(
            student=student,
            reason=MakeupToken.Reason.CANCELLED,
            location=session.klass.location,
            source_session=session,
        )
        for student in students
    ]


def makeup_book(*, token: MakeupToken, session: Session, actor: Guardian) -> Enrollment:
    """Spend a token on a make-up place at a session."""
    if not _provider().makeup_tokens_enabled:
        raise BenefitError(_("Make-up tokens are not used here."))
    if not actor.may_manage_enrollments:
        raise BenefitError(_("You may not book for this family."))
    if token.student.family_id != actor.family_id:
        raise BenefitError(_("This token belongs to another family."))
    with transaction.atomic():
        token = _token_locked(token.pk)
        state = rules.token_state(token)
        if state != rules.AVAILABLE:
            raise BenefitError(
                _("This token was used already.")
                if state in (rules.PENDING, rules.SPENT)
                else _("This token can no longer be used (%(state)s).") % {"state": state}
            )
        session = Session.objects.select_related("klass__location").get(pk=session.pk)
        enrollment_services.lock_class(session.klass_id)
        levels, programmes, own_classes = rules.student_levels_and_programmes(token.student)
        booked = (
            Enrollment.objects.filter(
                student=token.student, session=session, status=Enrollment.Status.ACTIVE
            ).exists()
            or session.klass_id in own_classes
        )
        reasons = rules.session_reasons(
            session=session,
            free=session_free_places(session).free,
            student_booked=booked,
            levels=levels,
            programmes=programmes,
            token=token,
        )
        if reasons:
            raise BenefitError(" ".join(reasons))
        enrollment = enrollment_services.single_booking_create(
            student=token.student,
            session=session,
            kind=Enrollment.Kind.MAKEUP,
            actor_user=actor.user,
        )
        TokenEvent.objects.create(
            token=token, kind=TokenEvent.Kind.APPLIED, enrollment=enrollment, actor=actor.user
        )
    return enrollment


def single_booking_cancel(*, enrollment: Enrollment, actor: Guardian) -> Enrollment:
    """Cancel a make-up or drop-in before it starts; the token or punch comes back."""
    if not actor.may_manage_enrollments:
        raise BenefitError(_("You may not change bookings for this family."))
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("session")
            .get(pk=enrollment.pk)
        )
        enrollment_services.single_booking_cancel(enrollment=enrollment, actor_user=actor.user)
        applied = TokenEvent.objects.filter(enrollment=enrollment, kind="applied").first()
        if applied:
            token = _token_locked(applied.token_id)
            newest = rules.applied_event(token)
            if newest and newest.enrollment_id == enrollment.pk:
                TokenEvent.objects.create(
                    token=token,
                    kind=TokenEvent.Kind.RETURNED,
                    enrollment=enrollment,
                    actor=actor.user,
                )
        punch = PassEvent.objects.filter(enrollment=enrollment, kind="punch").first()
        if punch:
            Pass.objects.select_for_update().get(pk=punch.pass_obj_id)
            PassEvent.objects.create(
                pass_obj_id=punch.pass_obj_id,
                kind=PassEvent.Kind.RETURNED,
                punches=-punch.punches,
                enrollment=enrollment,
                actor=actor.user,
            )
    return enrollment


def token_revoke(*, token: MakeupToken, actor_user: User | None, note: str) -> None:
    _check_staff(actor_user, "benefits.change_makeuptoken")
    with transaction.atomic():
        token = _token_locked(token.pk)
        if rules.token_state(token) != rules.AVAILABLE:
            raise BenefitError(_("Only an available token can be revoked."))
        TokenEvent.objects.create(token=token, kind="revoked", actor=actor_user, note=note)


# --- Make-up requests ---------------------------------------------------------------------


def makeup_request(
    *, student: Student, session: Session, actor: Actor, note: str = ""
) -> MakeupRequest:
    """A family asks for a make-up place at a session; the office decides.
    The session must be one the page offers (the same reasons refuse it)."""
    provider = _provider()
    if not provider.makeup_requests_enabled or provider.makeup_tokens_enabled:
        raise BenefitError(_("Make-up requests are not used here."))
    actor_require(
        actor,
        staff="benefits.add_makeuprequest",
        guardian=lambda g: g.may_manage_enrollments,
        family=student.family_id,
        refusal=_(
            "Only a guardian who may manage enrolments can ask for make-ups. "
            "Ask the family's primary guardian."
        ),
    )
    offer = selectors.makeup_request_offer(student, session)
    if not offer.bookable:
        raise BenefitError(" ".join(offer.reasons), field="session")
    try:
        with transaction.atomic():
            return MakeupRequest.objects.create(
                student=student, session=session, note=note, requested_by=actor_user(actor)
            )
    except IntegrityError as error:
        raise BenefitError(
            _("You asked for this session already; the office will answer.")
        ) from error


def makeup_request_withdraw(*, request: MakeupRequest, actor: Actor) -> MakeupRequest:
    """The family takes back a request the office has not answered yet."""
    actor_require(
        actor,
        staff="benefits.change_makeuprequest",
        guardian=lambda g: g.may_manage_enrollments,
        family=request.student.family_id,
        refusal=_(
            "Only a guardian who may manage enrolments can withdraw a request. "
            "Ask the family's primary guardian."
        ),
    )
    with transaction.atomic():
        request = MakeupRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != MakeupRequest.Status.PENDING:
            raise BenefitError(
                _("The office has answered this request already (%(status)s).")
                % {"status": request.get_status_display()}
            )
        request.status = MakeupRequest.Status.WITHDRAWN
        request.decided_by = actor_user(actor)
        request.decided_at = clock.now()
        request.save(update_fields=["status", "decided_by", "decided_at"])
    return request


def makeup_request_decide(
    *, request: MakeupRequest, approve: bool, actor: Actor, answer: str = ""
) -> MakeupRequest:
    """Staff approve (booking the place) or decline a family's request; the
    answer they write goes to the family by e-mail with the decision."""
    actor_require(
        actor,
        staff="benefits.change_makeuprequest",
        refusal=_("You may not decide make-up requests."),
    )
    staff_user = actor_user(actor)
    with transaction.atomic():
        request = (
            MakeupRequest.objects.select_for_update(of=("self",))
            .select_related("session")
            .get(pk=request.pk)
        )
        if request.status == MakeupRequest.Status.WITHDRAWN:
            raise BenefitError(_("The family withdrew this request."))
        if request.status != MakeupRequest.Status.PENDING:
            raise BenefitError(_("This request was answered already."))
        if approve:
            enrollment_services.lock_class(request.session.klass_id)
            if session_free_places(request.session).free == 0:
                raise BenefitError(_("The session is full now; decline or choose another."))
            request.enrollment = enrollment_services.single_booking_create(
                student=request.student,
                session=request.session,
                kind=Enrollment.Kind.MAKEUP,
                actor_user=staff_user,
            )
        request.status = MakeupRequest.Status.APPROVED if approve else MakeupRequest.Status.DECLINED
        request.decided_by = staff_user
        request.decided_at = clock.now()
        request.decision_note = answer
        request.save()
        _send_decision(request)
    return request


@provider_language()
def _send_decision(request: MakeupRequest) -> None:
    provider = _provider()
    context = {"request": request, "provider": provider}
    for email in family_login_emails(request.student.family_id):
        queue_email(
            subject=_("Your make-up request for %(name)s: %(status)s")
            % {"name": request.student.first_name, "status": request.get_status_display()},
            body=render_to_string("benefits/email/makeup_decision.txt", context),
            to=[email],
            reply_to=[provider.support_email] if provider.support_email else None,
        )


def cancellation_preview(*, session: Session, students: list[Student]) -> str | None:
    """What a session's cancellation will issue (enrollments' preview)."""
    if not _provider().makeup_tokens_enabled or not students:
        return None
    days = _provider().makeup_token_days
    return _("A make-up token for each of the %(n)d children, valid %(days)d days.") % {
        "n": len(students),
        "days": days,
    }


# --- Passes --------------------------------------------------------------------------------


def pass_create(
    *,
    family: Family,
    kind: str,
    name: str,
    student: Student | None = None,
    punches: int | None = None,
    valid_days: int | None = None,
    amount_paid: Decimal = ZERO,
    programme: Programme | None = None,
    actor_user: User | None = None,
    note: str = "",
) -> Pass:
    _check_staff(actor_user, "benefits.add_pass")
    if student is not None and student.family_id != family.pk:
        raise BenefitError(_("That child is in another family."), field="student")
    if kind == Pass.Kind.ENTRY:
        punches = 1
    if kind == Pass.Kind.PUNCH and not punches:
        raise BenefitError(_("A punch card needs a number of visits."))
    with transaction.atomic():
        pass_obj = Pass.objects.create(
            family=family,
            student=student,
            kind=kind,
            name=name,
            programme=programme,
            purchased_on=today(),
            expires_on=today() + timedelta(days=valid_days) if valid_days else None,
            amount_paid=to_decimal(amount_paid),
        )
        PassEvent.objects.create(
            pass_obj=pass_obj,
            kind=PassEvent.Kind.PURCHASED,
            punches=0 if kind == Pass.Kind.PERMANENT else punches or 0,
            actor=actor_user,
            note=note,
        )
    return pass_obj


def _pass_locked(pass_id: int) -> Pass:
    pass_obj = Pass.objects.select_for_update().get(pk=pass_id)
    # Fresh events after the lock (not a prefetch from before it).
    prefetch_related_objects(
        [pass_obj], Prefetch("events", queryset=PassEvent.objects.order_by("at", "pk"))
    )
    return pass_obj


def pass_book(*, pass_obj: Pass, student: Student, session: Session, actor: Guardian) -> Enrollment:
    """Book a drop-in place with a punch (or on a permanent pass)."""
    if not _provider().pass_redemption_enabled:
        raise BenefitError(_("Passes are redeemed at the front desk here."))
    if not actor.may_manage_enrollments:
        raise BenefitError(_("You may not book for this family."))
    if pass_obj.family_id != actor.family_id or student.family_id != actor.family_id:
        raise BenefitError(_("This pass or child belongs to another family."))
    if pass_obj.student_id and pass_obj.student_id != student.pk:
        raise BenefitError(_("This pass belongs to another child."))
    with transaction.atomic():
        pass_obj = _pass_locked(pass_obj.pk)
        if not rules.pass_is_usable(pass_obj):
            raise BenefitError(_("This pass has no visits left."))
        session = Session.objects.select_related("klass__location").get(pk=session.pk)
        enrollment_services.lock_class(session.klass_id)
        booked = Enrollment.objects.filter(
            student=student, session=session, status=Enrollment.Status.ACTIVE
        ).exists()
        reasons = rules.session_reasons(
            session=session,
            free=session_free_places(session).free,
            student_booked=booked,
            levels=set(),
            pass_obj=pass_obj,
        )
        if reasons:
            raise BenefitError(" ".join(reasons))
        enrollment = enrollment_services.single_booking_create(
            student=student, session=session, kind=Enrollment.Kind.DROPIN, actor_user=actor.user
        )
        PassEvent.objects.create(
            pass_obj=pass_obj,
            kind=PassEvent.Kind.PUNCH,
            punches=0 if pass_obj.kind == Pass.Kind.PERMANENT else -1,
            enrollment=enrollment,
            actor=actor.user,
        )
    return enrollment


def pass_adjust(*, pass_obj: Pass, punches: int, note: str, actor_user: User | None) -> PassEvent:
    _check_staff(actor_user, "benefits.change_pass")
    if not note:
        raise BenefitError(_("Say why the pass is adjusted."), field="note")
    with transaction.atomic():
        pass_obj = _pass_locked(pass_obj.pk)
        ended = any(e.kind in ("expired", "revoked") for e in pass_obj.events.all())
        if ended or (pass_obj.expires_on and pass_obj.expires_on < today()):
            raise BenefitError(_("This pass has expired or was revoked: issue a new one."))
        left = rules.pass_punches_left(pass_obj)
        if left is not None and left + punches < 0:
            raise BenefitError(_("A pass cannot go below zero visits."))
        return PassEvent.objects.create(
            pass_obj=pass_obj,
            kind=PassEvent.Kind.ADJUSTED,
            punches=punches,
            note=note,
            actor=actor_user,
        )


# --- Credits -------------------------------------------------------------------------------


def credit_grant(
    *,
    family: Family,
    amount: Decimal,
    source: str,
    description: str,
    expires_on: date | None = None,
    actor_user: User | None = None,
) -> CreditGrant:
    _check_staff(actor_user, "benefits.add_creditgrant")
    amount = to_decimal(amount)
    if amount <= 0:
        raise BenefitError(_("Credit must be more than zero."))
    return CreditGrant.objects.create(
        family=family,
        amount=amount,
        source=source,
        description=description,
        expires_on=expires_on,
        granted_by=actor_user,
    )


def _lock_credit(family_id: int) -> None:
    """Lock the family's grants: spends, withdrawals and expiry of one family
    take turns, and each reads the balance after the lock (selectors)."""
    list(CreditGrant.objects.filter(family_id=family_id).select_for_update().values_list("pk"))


def credit_lock(*, family: Family) -> None:
    """Take the family's credit for the rest of the caller's transaction, for
    a caller that reads the balance to decide how much to spend."""
    _lock_credit(family.pk)


def credit_spend(
    *, family: Family, amount: Decimal, where: str, reference: str, actor_user: User | None = None
) -> list[CreditUse]:
    """Use credit, earliest-expiring first. Idempotent per `reference`: the same
    reference spends once, however often it is sent."""
    amount = to_decimal(amount)
    if amount <= 0:
        raise BenefitError(_("Enter an amount above zero."))
    with transaction.atomic():
        _lock_credit(family.pk)
        done = list(
            CreditUse.objects.filter(grant__family=family, reference=reference, kind="spent")
        )
        if reference and done:
            return done
        if family_credit_balance(family) < amount:
            raise BenefitError(_("There is not enough credit for that."))
        uses: list[CreditUse] = []
        remaining = amount
        for grant in spendable_credit(family):
            if remaining <= 0:
                break
            take = min(grant.left, remaining)
            uses.append(
                CreditUse.objects.create(
                    grant=grant,
                    kind=CreditUse.Kind.SPENT,
                    amount=take,
                    where=where,
                    reference=reference,
                    actor=actor_user,
                )
            )
            remaining -= take
    return uses


def credit_withdraw(
    *, grant: CreditGrant, amount: Decimal, note: str, actor_user: User | None
) -> CreditUse:
    """Staff correction: take (some of) a grant back, with a reason."""
    _check_staff(actor_user, "benefits.change_creditgrant")
    amount = to_decimal(amount)
    if not note:
        raise BenefitError(_("Say why the credit is withdrawn."), field="note")
    with transaction.atomic():
        _lock_credit(grant.family_id)
        left = with_credit_left(CreditGrant.objects.filter(pk=grant.pk)).get().left
        if amount <= 0 or amount > left:
            raise BenefitError(
                _("You can withdraw up to %(left)s.") % {"left": formatting.money(left)}
            )
        return CreditUse.objects.create(
            grant=grant, kind=CreditUse.Kind.WITHDRAWN, amount=amount, where=note, actor=actor_user
        )


# --- Vouchers ------------------------------------------------------------------------------


def _code_try(family: Family) -> None:
    """Count a code the family tries (portal.limits.VOUCHER): past the limit
    every code is refused, with when to try again, so codes cannot be
    guessed by trying many."""
    limits.take(limits.VOUCHER, family.pk, field="code")


def _voucher_locked(code: str, family: Family) -> Voucher:
    """The code's voucher, locked, if this family may still redeem it."""
    voucher = Voucher.objects.select_for_update().filter(code__iexact=code.strip()).first()
    if voucher is None or not voucher.active:
        raise BenefitError(_("We do not know that code. Check the spelling."), field="code")
    if voucher.valid_until and voucher.valid_until < today():
        raise BenefitError(
            _("This code expired on %(date)s.") % {"date": formatting.day(voucher.valid_until)},
            field="code",
        )
    if VoucherRedemption.objects.filter(voucher=voucher, family=family).exists():
        raise BenefitError(_("Your family has used this code already."), field="code")
    if voucher.redemptions.count() >= voucher.max_redemptions:
        raise BenefitError(_("This code has been used up."), field="code")
    return voucher


def _promo_discount_create(voucher: Voucher, family: Family) -> Discount:
    """A promo code becomes a discount of the family's: for the next order
    (one period) unless the code says it reduces more."""
    return Discount.objects.create(
        family=family,
        kind=Discount.Kind.PROMOTIONAL,
        description=voucher.description,
        percent=voucher.discount_percent,
        amount=voucher.discount_amount,
        max_uses=voucher.discount_uses,
        valid_until=voucher.valid_until,
        voucher=voucher,
    )


def voucher_redeem(
    *, code: str, family: Family, actor: Guardian, student: Student | None = None
) -> str:
    """Redeem a code for this family. Returns what it became, in words."""
    _code_try(family)
    with transaction.atomic():
        voucher = _voucher_locked(code, family)
        if voucher.kind == Voucher.Kind.GIFT:
            credit_grant(
                family=family,
                amount=to_decimal(voucher.credit_amount),
                source=CreditGrant.Source.GIFT,
                description=voucher.description,
                actor_user=actor.user,
            )
            result = _("Credit of %(amount)s added.") % {
                "amount": formatting.money(voucher.credit_amount)
            }
        elif voucher.kind == Voucher.Kind.PASS:
            pass_create(
                family=family,
                student=student,
                kind=voucher.pass_kind or Pass.Kind.PUNCH,
                name=voucher.description,
                punches=voucher.pass_punches,
                valid_days=voucher.pass_valid_days,
                actor_user=actor.user,
                note=_("Voucher %(code)s") % {"code": voucher.code},
            )
            result = _("Pass “%(name)s” added.") % {"name": voucher.description}
        else:
            _promo_discount_create(voucher, family)
            result = _("Discount “%(name)s” added.") % {"name": voucher.description}
        VoucherRedemption.objects.create(
            voucher=voucher, family=family, actor=actor.user, result=result
        )
    return result


# --- Discounts on orders ---------------------------------------------------------------------


def promo_code_discount(*, code: str, family: Family, actor_user: User | None) -> Discount:
    """The discount a promo code gives this family, for an order being made
    or an unpaid one (billing): redeemed now, or the family's own from an
    earlier redemption while it has uses left. Runs inside the caller's
    transaction; the voucher row stays locked until it ends, so a
    single-use code is spent once however many requests race for it."""
    code = code.strip()
    if not code:
        raise BenefitError(_("Enter the code."), field="code")
    _code_try(family)
    voucher = Voucher.objects.select_for_update().filter(code__iexact=code).first()
    if voucher is not None and voucher.kind != Voucher.Kind.PROMO:
        raise BenefitError(
            _("%(code)s is a gift or pass voucher, not a promo code: redeem it under Benefits.")
            % {"code": voucher.code},
            field="code",
        )
    if voucher is not None:
        held = selectors.usable_discounts(
            Discount.objects.filter(family=family, voucher=voucher)
        ).first()
        if held is not None:
            return held
    voucher = _voucher_locked(code, family)
    discount = _promo_discount_create(voucher, family)
    VoucherRedemption.objects.create(
        voucher=voucher,
        family=family,
        actor=actor_user,
        result=_("Discount “%(name)s” added.") % {"name": voucher.description},
    )
    return discount


def discounts_lock(discount_ids: Iterable[int]) -> list[Discount]:
    """Lock the discounts an order is about to use (in one order: no
    deadlock) and return those still usable after the lock."""
    ids = sorted(set(discount_ids))
    if not ids:
        return []
    list(Discount.objects.filter(pk__in=ids).order_by("pk").select_for_update())
    return list(
        selectors.usable_discounts(Discount.objects.filter(pk__in=ids))
        .select_related("voucher")
        .order_by("pk")
    )


def discount_use_record(
    *, discount: Discount, amount: Decimal, where: str, reference: str
) -> DiscountUse:
    """One order reduced by the discount (locked by `discounts_lock`)."""
    amount = to_decimal(amount)
    if discount.max_uses is not None and discount.uses.count() >= discount.max_uses:
        raise BenefitError(_("This discount has been used up."), field="code")
    return DiscountUse.objects.create(
        discount=discount, amount=amount, where=where[:200], reference=reference
    )


# --- Daily upkeep ---------------------------------------------------------------------------


# Events written by a transaction still open when a run started carry an
# earlier time than that start: the next run looks back this far for them.
EXPIRY_LOOKBACK = timedelta(minutes=15)
EXPIRY_JOB = "expiry"


def _lapsed_ids(
    lapsed: QuerySet[Any], changed: QuerySet[Any], *, checkpoint: ExpiryCheckpoint | None
) -> list[int]:
    """Of what lapsed before the run's day, what may need its expiry recorded:
    on the first run everything; then only what lapsed since the last run's
    day, and what had an event since it started (`changed`: its ids)."""
    if checkpoint is None:
        return sorted(lapsed.values_list("pk", flat=True))
    ids = set(lapsed.filter(expires_on__gte=checkpoint.day).values_list("pk", flat=True))
    ids.update(lapsed.filter(pk__in=changed).values_list("pk", flat=True))
    return sorted(ids)


def expire_lapsed(*, day: date | None = None) -> dict[str, int]:
    """Record the expiry of tokens, passes and credits that lapsed before
    `day`. Incremental: each run looks only at what lapsed or changed since
    the last one (ExpiryCheckpoint), through indexes on the expiry dates and
    event times, so an hourly run costs the same with years of history.
    Each benefit is locked and checked again before its expiry is recorded:
    two runs at once record it once."""
    day = day or today()
    started = clock.now()
    counts = {"tokens": 0, "passes": 0, "credits": 0}
    checkpoint = ExpiryCheckpoint.objects.filter(job=EXPIRY_JOB).first()
    since = (checkpoint.started_at - EXPIRY_LOOKBACK) if checkpoint else started
    token_ids = _lapsed_ids(
        MakeupToken.objects.filter(expires_on__lt=day),
        TokenEvent.objects.filter(at__gte=since).exclude(kind="expired").values("token_id"),
        checkpoint=checkpoint,
    )
    for token_id in token_ids:
        with transaction.atomic():
            locked = _token_locked(token_id)
            events = list(locked.events.all())
            if events and events[-1].kind in ("issued", "returned"):
                TokenEvent.objects.create(token=locked, kind=TokenEvent.Kind.EXPIRED)
                counts["tokens"] += 1
    pass_ids = _lapsed_ids(
        Pass.objects.filter(expires_on__lt=day),
        PassEvent.objects.filter(at__gte=since).exclude(kind="expired").values("pass_obj_id"),
        checkpoint=checkpoint,
    )
    for pass_id in pass_ids:
        with transaction.atomic():
            locked_pass = _pass_locked(pass_id)
            if any(e.kind in ("expired", "revoked") for e in locked_pass.events.all()):
                continue
            left = rules.pass_punches_left(locked_pass) or 0
            PassEvent.objects.create(
                pass_obj=locked_pass, kind=PassEvent.Kind.EXPIRED, punches=-left
            )
            counts["passes"] += 1
    grant_ids = _lapsed_ids(
        CreditGrant.objects.filter(expires_on__lt=day),
        CreditGrant.objects.filter(granted_at__gte=since).values("pk"),
        checkpoint=checkpoint,
    )
    families = (
        CreditGrant.objects.filter(pk__in=grant_ids)
        .order_by("family_id")
        .values_list("family_id", flat=True)
        .distinct()
    )
    for family_id in families:
        with transaction.atomic():
            _lock_credit(family_id)
            expired = CreditGrant.objects.filter(family_id=family_id, pk__in=grant_ids)
            for grant in with_credit_left(expired).filter(left__gt=ZERO):
                CreditUse.objects.create(
                    grant=grant, kind=CreditUse.Kind.EXPIRED, amount=grant.left, where=_("Expired")
                )
                counts["credits"] += 1
    # Only a run that finished moves the checkpoint on (never back a day).
    values = {"day": max(day, checkpoint.day) if checkpoint else day, "started_at": started}
    if checkpoint is None or not ExpiryCheckpoint.objects.filter(job=EXPIRY_JOB).update(**values):
        ExpiryCheckpoint.objects.get_or_create(job=EXPIRY_JOB, defaults=values)
    return counts
