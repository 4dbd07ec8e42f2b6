"""Enrolment actions. Each runs in one transaction, locks the class it changes
(capacity is checked after the lock: two parents racing for the last place get
one place between them), and writes an EnrollmentChange."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Protocol

from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import User
from families.actors import Actor, actor_name, actor_require, actor_user, is_staff_actor
from families.models import Family, Guardian, Student
from families.selectors import family_login_emails
from portal import clock, formatting
from portal.clock import local, today
from portal.tasks import queue_email
from portal.tenancy import current_provider, provider_language

from . import selectors
from .exceptions import ClassFull, EnrollmentError, FeatureOff
from .models import (
    ONE_BOOKING_PER_SESSION,
    Absence,
    AbsenceMark,
    Attendance,
    CalendarFeed,
    Class,
    Enrollment,
    EnrollmentChange,
    Evaluation,
    Instructor,
    Session,
    Skill,
    WaitlistOffer,
    local_datetime,
    weekly_dates,
)
from .selectors import _covers, booked_session

if TYPE_CHECKING:
    from providers.models import Provider


def _provider() -> Provider:
    return current_provider()


class AbsenceReportedHook(Protocol):
    def __call__(self, *, absence: Absence) -> object: ...


class AbsenceCancelledHook(Protocol):
    def __call__(self, *, absence: Absence, actor: Actor) -> object: ...


class ClassLeftHook(Protocol):
    def __call__(self, *, enrollment: Enrollment, since: date, actor: Actor) -> object: ...


class SessionCancelledHook(Protocol):
    def __call__(self, *, session: Session, students: list[Student]) -> object: ...


# Other apps react to these events (benefits issues make-up tokens, and takes
# them back when the absence is cancelled) by adding a function here from their
# AppConfig.ready(); it runs inside the same transaction, and a PortalError it
# raises refuses the whole action.
absence_reported_hooks: list[AbsenceReportedHook] = []
absence_cancelled_hooks: list[AbsenceCancelledHook] = []
# A child leaves a class (drop, transfer) from a day on: what absences there
# earned for sessions from that day is taken back. Runs first in the action's
# transaction, before any class is locked (the order make-up booking uses).
class_left_hooks: list[ClassLeftHook] = []
session_cancelled_hooks: list[SessionCancelledHook] = []


def _require_feature(enabled: bool) -> None:
    if not enabled:
        raise FeatureOff(_("This is not available at this provider."))


def _require_feature_for(actor: Actor, enabled: bool) -> None:
    """Provider settings switch what parents may do in the portal; staff
    keep every action."""
    if not is_staff_actor(actor):
        _require_feature(enabled)


def _require_manager(actor: Actor, family_id: int) -> None:
    actor_require(
        actor,
        staff="enrollments.change_enrollment",
        guardian=lambda g: g.may_manage_enrollments,
        family=family_id,
        refusal=_("You may not change enrolments in this family."),
    )


def _record(
    enrollment: Enrollment,
    action: str,
    effective: date,
    actor: Actor | User | None,
    note: str = "",
) -> EnrollmentChange:
    """One history row: what happened, from when, who did it (their login and
    their name as it read then)."""
    return EnrollmentChange.objects.create(
        enrollment=enrollment,
        action=action,
        effective_date=effective,
        actor=actor_user(actor),
        actor_name=actor_name(actor) if actor is not None else "",
        note=note[:200],
    )


def _lock_class(klass: Class) -> Class:
    return Class.objects.select_for_update().get(pk=klass.pk)


def _lock_enrollment(enrollment: Enrollment) -> Enrollment:
    return (
        Enrollment.objects.select_for_update(of=("self",))
        .select_related("klass")
        .get(pk=enrollment.pk)
    )


def enrollment_create(
    *,
    student: Student,
    klass: Class,
    start_date: date,
    actor: Actor | None = None,
    waitlist_if_full: bool = True,
    over_capacity_reason: str = "",
) -> Enrollment:
    """A regular enrolment, or a waitlist entry when the class is full
    (`waitlist_if_full`; otherwise a full class is refused). Staff holding
    `override_capacity` may enrol over capacity with a reason, kept in the
    history. No actor: the portal itself (demo data, imports)."""
    if actor is not None:
        actor_require(
            actor,
            staff="enrollments.add_enrollment",
            guardian=lambda g: g.may_manage_enrollments,
            family=student.family_id,
            refusal=_("You may not enrol children in this family."),
        )
    reason = over_capacity_reason.strip()
    if reason and not (isinstance(actor, User) and actor.has_perm("enrollments.override_capacity")):
        raise EnrollmentError(
            _("Only a manager may enrol over a class's capacity."), field="over_capacity_reason"
        )
    with transaction.atomic():
        klass = _lock_class(klass)
        if Enrollment.objects.filter(
            student=student,
            klass=klass,
            kind=Enrollment.Kind.REGULAR,
            status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.WAITLISTED],
        ).exists():
            raise EnrollmentError(
                _("%(name)s is in this class or on its waitlist already.")
                % {"name": student.first_name}
            )
        full = selectors.class_free_places(klass, on=start_date) == 0
        over = full and bool(reason)
        if full and not over and not waitlist_if_full:
            raise ClassFull(
                _(
                    "This class is full: put the child on its waitlist, or a manager may "
                    "enrol over capacity with a reason."
                )
            )
        waitlisted = full and not over
        enrollment = Enrollment.objects.create(
            student=student,
            klass=klass,
            start_date=start_date,
            status=Enrollment.Status.WAITLISTED if waitlisted else Enrollment.Status.ACTIVE,
        )
        _record(
            enrollment,
            EnrollmentChange.Action.WAITLISTED if waitlisted else EnrollmentChange.Action.ENROLLED,
            start_date,
            actor,
            note=_("Over capacity: %(reason)s") % {"reason": reason} if over else "",
        )
    return enrollment


def waitlist_cancel(*, enrollment: Enrollment, actor: Actor) -> Enrollment:
    _require_feature_for(actor, _provider().cancel_waitlist_enabled)
    _require_manager(actor, enrollment.student.family_id)
    with transaction.atomic():
        # Class first, as every place-changing service locks (no deadlock).
        klass = _lock_class(enrollment.klass)
        enrollment = _lock_enrollment(enrollment)
        if enrollment.status != Enrollment.Status.WAITLISTED:
            raise EnrollmentError(_("This is not on a waitlist any more."))
        enrollment.status = Enrollment.Status.CANCELLED
        enrollment.end_date = today()
        enrollment.save(update_fields=["status", "end_date"])
        held = WaitlistOffer.objects.filter(
            enrollment=enrollment, state=WaitlistOffer.State.OPEN
        ).update(state=WaitlistOffer.State.DECLINED, answered_at=clock.now())
        _record(enrollment, EnrollmentChange.Action.WAITLIST_CANCELLED, enrollment.end_date, actor)
        if held:  # the place it held goes to the next child in line
            _offer_next(klass)
    return enrollment


def drop_effective_date() -> date:
    """A drop takes effect today: sessions from now on are released."""
    return today()


def enrollment_drop(*, enrollment: Enrollment, actor: Actor) -> Enrollment:
    _require_feature_for(actor, _provider().drop_enabled)
    _require_manager(actor, enrollment.student.family_id)
    effective = drop_effective_date()
    with transaction.atomic():
        for hook in class_left_hooks:
            hook(enrollment=enrollment, since=effective, actor=actor)
        enrollment = _lock_enrollment(enrollment)
        if enrollment.status != Enrollment.Status.ACTIVE or enrollment.kind != "regular":
            raise EnrollmentError(_("Only a current enrolment can be dropped."))
        if enrollment.end_date and enrollment.end_date < effective:
            raise EnrollmentError(_("This enrolment has ended already."))
        enrollment.status = Enrollment.Status.DROPPED
        enrollment.end_date = effective - timedelta(days=1)
        enrollment.save(update_fields=["status", "end_date"])
        _record(enrollment, EnrollmentChange.Action.DROPPED, effective, actor)
    return enrollment


def enrollment_transfer(*, enrollment: Enrollment, to_class: Class, actor: Actor) -> Enrollment:
    """Move to another class of the same programme with a free place, from today."""
    _require_feature_for(actor, _provider().transfer_enabled)
    _require_manager(actor, enrollment.student.family_id)
    effective = today()
    with transaction.atomic():
        for hook in class_left_hooks:
            hook(enrollment=enrollment, since=effective, actor=actor)
        # Lock in a fixed order (by id) so two opposite transfers cannot deadlock.
        for klass in sorted([enrollment.klass, to_class], key=lambda k: k.pk):
            _lock_class(klass)
        enrollment = _lock_enrollment(enrollment)
        to_class = Class.objects.get(pk=to_class.pk)
        if enrollment.status != Enrollment.Status.ACTIVE or enrollment.kind != "regular":
            raise EnrollmentError(_("Only a current enrolment can be transferred."))
        if to_class.pk == enrollment.klass_id:
            raise EnrollmentError(_("That is the class already booked."))
        if to_class.programme_id != enrollment.klass.programme_id or not to_class.is_active:
            raise EnrollmentError(_("Transfers are to another class of the same programme."))
        if enrollment.klass.level_id and to_class.level_id != enrollment.klass.level_id:
            raise EnrollmentError(_("Transfers are to a class of the same level."))
        if to_class.term_end < effective:
            raise EnrollmentError(_("That class has finished for this term."))
        start = max(effective, to_class.term_start)
        if selectors.class_free_places(to_class, on=start) == 0:
            raise ClassFull(
                _("Sorry, the last place in that class was just taken. Choose another class.")
            )
        end = enrollment.end_date if enrollment.end_date and enrollment.end_date >= start else None
        new = Enrollment.objects.create(
            student=enrollment.student,
            klass=to_class,
            start_date=start,
            end_date=end,
            status=Enrollment.Status.ACTIVE,
        )
        enrollment.status = Enrollment.Status.TRANSFERRED
        enrollment.end_date = effective - timedelta(days=1)
        enrollment.transferred_to = new
        enrollment.save(update_fields=["status", "end_date", "transferred_to"])
        _record(enrollment, EnrollmentChange.Action.TRANSFERRED, effective, actor, str(to_class))
        _record(
            new,
            EnrollmentChange.Action.ENROLLED,
            effective,
            actor,
            _("Transferred from %(klass)s") % {"klass": enrollment.klass},
        )
    return new


# --- Future absences -----------------------------------------------------------------


def _already_marked(student: Student, session_ids: Iterable[int]) -> set[int]:
    """Sessions this student has an absence reported for already."""
    return selectors.sessions_marked_absent(student=student, session_ids=session_ids)


def _mark_sessions(absence: Absence, items: list[tuple[Session, Enrollment]]) -> Absence:
    if not items:
        raise EnrollmentError(_("No sessions fall in that time, so there is nothing to report."))
    AbsenceMark.objects.bulk_create(
        [AbsenceMark(absence=absence, session=s, enrollment=e) for s, e in items]
    )
    return absence


def _lock_student_absences(student_id: int) -> None:
    """Reports and cancellations of one student's absences take turns. A
    no-key lock: bookings for the student (which hold a token's lock and
    insert rows referring to the student) are not blocked by it, so a
    cancellation waiting for a token cannot deadlock with them."""
    Student.objects.select_for_update(no_key=True).only("pk").get(pk=student_id)


def _require_absence(actor: Actor, family_id: int, staff: str = "enrollments.add_absence") -> None:
    _require_feature_for(actor, _provider().future_absences_enabled)
    actor_require(
        actor,
        staff=staff,
        guardian=lambda g: g.may_manage_enrollments,
        family=family_id,
        refusal=_(
            "Only a guardian who may manage enrolments can report or cancel absences. "
            "Ask the family's primary guardian."
        ),
    )


@dataclass(frozen=True)
class AbsenceReach:
    """How far ahead a parent may report an absence: the provider's weeks,
    or the end of the class's term where the provider allows that."""

    until: datetime
    term: bool  # the end of the term sets it (not the weeks)

    def refusal(self) -> str:
        last = self.until - timedelta(minutes=1)
        if self.term:
            return _(
                "Absences can be reported up to the end of the term: %(day)s. "
                "For a longer absence, please contact the office."
            ) % {"day": formatting.moment(last, "long")}
        return _(
            "Absences can be reported up to %(weeks)d weeks ahead, until %(day)s. "
            "For a longer absence, please contact the office."
        ) % {"weeks": _provider().absence_max_weeks, "day": formatting.moment(last, "long")}


def absence_reach(*, klasses: Iterable[Class], actor: Actor) -> AbsenceReach | None:
    """The latest moment a parent's absence may reach (None: staff, who are
    not bound). `klasses`: the classes the absence covers."""
    if is_staff_actor(actor):
        return None
    provider = _provider()
    until = clock.now() + timedelta(weeks=provider.absence_max_weeks)
    term_ends = [k.term_end for k in klasses]
    if provider.absence_until_term_end and term_ends:
        # The midnight after the last day of term, in the provider's zone.
        term_end = local_datetime(max(term_ends) + timedelta(days=1), time(0), provider.zone)
        if term_end > until:
            return AbsenceReach(term_end, term=True)
    return AbsenceReach(until, term=False)


def absence_report_by_date(
    *, student: Student, actor: Actor, starts_at: datetime, ends_at: datetime, reason: str = ""
) -> Absence:
    """An absence over a time range, across every enrolment of the student.
    Staff record one the same way (the family called the desk): make-up
    tokens follow the provider's rules either way. Parents reach as far as
    `absence_reach` allows; staff are not bound."""
    _require_absence(actor, student.family_id)
    if ends_at <= starts_at:
        raise EnrollmentError(_("The end must be after the start."), field="ends_at")
    if ends_at <= clock.now():
        raise EnrollmentError(_("Future absences must end in the future."), field="ends_at")
    with transaction.atomic():
        _lock_student_absences(student.pk)
        enrollments = list(
            Enrollment.objects.filter(student=student, status=Enrollment.Status.ACTIVE)
            .select_related("klass")
            .order_by("pk")
        )
        reach = absence_reach(klasses=[e.klass for e in enrollments], actor=actor)
        if reach is not None and ends_at > reach.until:
            raise EnrollmentError(reach.refusal(), field="ends_at")
        sessions = list(
            Session.objects.filter(
                klass_id__in={e.klass_id for e in enrollments},
                starts_at__lt=ends_at,
                ends_at__gt=max(starts_at, clock.now()),
                status=Session.Status.SCHEDULED,
            )
        )
        already = _already_marked(student, [s.pk for s in sessions])
        items = [
            (s, e)
            for s in sessions
            for e in enrollments
            if e.klass_id == s.klass_id and _covers(e, s) and s.pk not in already
        ]
        if not items and already:
            raise EnrollmentError(
                _("Every session in that time has an absence reported already."),
                field="ends_at",
            )
        absence = Absence.objects.create(
            student=student,
            kind=Absence.Kind.BY_DATE,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=actor_user(actor),
        )
        _mark_sessions(absence, items)
        for hook in absence_reported_hooks:
            hook(absence=absence)
        return absence


def absence_report_by_enrollment(
    *, enrollment: Enrollment, actor: Actor, sessions: list[Session], reason: str = ""
) -> Absence:
    """An absence for chosen sessions of one enrolment."""
    _require_absence(actor, enrollment.student.family_id)
    if enrollment.status != Enrollment.Status.ACTIVE:
        raise EnrollmentError(_("Absences are for classes the child attends."))
    now = clock.now()
    with transaction.atomic():
        _lock_student_absences(enrollment.student_id)
        already = _already_marked(enrollment.student, [s.pk for s in sessions])
        chosen = [
            s
            for s in sessions
            if s.klass_id == enrollment.klass_id
            and _covers(enrollment, s)
            and s.starts_at > now
            and s.pk not in already
        ]
        if not chosen:
            raise EnrollmentError(_("Choose at least one upcoming session."), field="sessions")
        reach = absence_reach(klasses=[enrollment.klass], actor=actor)
        if reach is not None and any(s.ends_at > reach.until for s in chosen):
            raise EnrollmentError(reach.refusal(), field="sessions")
        absence = Absence.objects.create(
            student=enrollment.student,
            kind=Absence.Kind.BY_ENROLLMENT,
            starts_at=min(s.starts_at for s in chosen),
            ends_at=max(s.ends_at for s in chosen),
            reason=reason,
            created_by=actor_user(actor),
        )
        _mark_sessions(absence, [(s, enrollment) for s in chosen])
        for hook in absence_reported_hooks:
            hook(absence=absence)
        return absence


def absence_cancel(*, absence: Absence, actor: Actor) -> Absence:
    """Cancel an absence that has not started. In the same transaction the
    make-up tokens it earned are taken back and make-ups booked with them
    that are still to come are cancelled (benefits, through
    `absence_cancelled_hooks`, which refuses when such a make-up has taken
    place). The student is locked as when reporting, so a cancellation, a
    report and a second cancellation of the same absence take turns."""
    _require_absence(actor, absence.student.family_id, staff="enrollments.change_absence")
    with transaction.atomic():
        _lock_student_absences(absence.student_id)
        absence = Absence.objects.select_for_update().get(pk=absence.pk)
        if absence.cancelled_at:
            raise EnrollmentError(_("This absence was cancelled already."))
        if absence.starts_at <= clock.now():
            raise EnrollmentError(_("This absence has started, so it can no longer be cancelled."))
        absence.cancelled_at = clock.now()
        absence.save(update_fields=["cancelled_at"])
        for hook in absence_cancelled_hooks:
            hook(absence=absence, actor=actor)
    return absence


# --- Check-in codes and calendar feeds ----------------------------------------------


def student_checkin_token(*, student: Student) -> str:
    """The opaque code in a student's check-in QR code, made on first use."""
    if not student.checkin_token:
        Student.objects.filter(pk=student.pk, checkin_token__isnull=True).update(
            checkin_token=secrets.token_urlsafe(32)
        )
        student.refresh_from_db(fields=["checkin_token"])
    assert student.checkin_token is not None  # set just above if it was not
    return student.checkin_token


def calendar_feeds(*, family: Family, students: list[Student]) -> dict[int | None, CalendarFeed]:
    """The live feed of the family (key None) and of each child, made on first use."""
    with transaction.atomic():
        Family.objects.select_for_update().get(pk=family.pk)  # one creator at a time
        feeds = {
            f.student_id: f
            for f in CalendarFeed.objects.filter(family=family, revoked_at__isnull=True)
        }
        for student in [None, *students]:
            key = student.pk if student else None
            if key not in feeds:
                feeds[key] = CalendarFeed.objects.create(family=family, student=student)
    return feeds


def calendar_feed_reset(*, family: Family, student: Student | None = None) -> CalendarFeed:
    """A new secret URL; the old one stops working at once."""
    with transaction.atomic():
        Family.objects.select_for_update().get(pk=family.pk)
        CalendarFeed.objects.filter(family=family, student=student, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        return CalendarFeed.objects.create(family=family, student=student)


def calendar_feeds_revoke(*, family: Family) -> int:
    """Every live feed of the family stops working (a guardian lost access)."""
    return CalendarFeed.objects.filter(family=family, revoked_at__isnull=True).update(
        revoked_at=clock.now()
    )


# --- Staff actions ----------------------------------------------------------------------


def sessions_generate(*, klass: Class, start: date | None = None, end: date | None = None) -> int:
    """Create the weekly sessions of a class's term (idempotent), at the local
    start time in the provider's zone so DST changes keep the wall-clock time."""
    zone = _provider().zone
    created = 0
    for day in weekly_dates(start or klass.term_start, end or klass.term_end, klass.weekday):
        starts = local_datetime(day, klass.start_time, zone)
        _, made = Session.objects.get_or_create(
            klass=klass,
            starts_at=starts,
            defaults={
                "ends_at": starts + timedelta(minutes=klass.duration_minutes),
                "livestream_url": klass.livestream_url,
            },
        )
        created += made
    return created


def _cancelled_students(session: Session) -> list[Student]:
    enrollments = Enrollment.objects.filter(
        klass=session.klass, status=Enrollment.Status.ACTIVE
    ).select_related("student")
    return [e.student for e in enrollments if _covers(e, session)]


def _cancel_recipients(students: list[Student]) -> list[tuple[str, int]]:
    return [
        (g.user.email, g.family_id)
        for g in Guardian.objects.filter(
            family__students__in=students, user__isnull=False, user__is_active=True
        )
        .select_related("user")
        .distinct()
        if g.user is not None  # always (filtered above)
    ]


@provider_language()
def _cancel_email(session: Session, names: str) -> tuple[str, str]:
    subject = _("Cancelled: %(klass)s on %(day)s") % {
        "klass": session.klass.programme.name,
        "day": formatting.moment(session.starts_at, "day_month"),
    }
    body = render_to_string(
        "enrollments/email/session_cancelled.txt",
        {"session": session, "names": names, "provider": _provider()},
    )
    return subject, body


@dataclass
class CancelPreview:
    """What cancelling a session will do, shown to staff before they confirm."""

    students: list[Student]
    recipients: list[str]
    subject: str
    body: str
    consequences: list[str]  # e.g. the make-up tokens benefits will issue


class SessionCancelPreviewHook(Protocol):
    def __call__(self, *, session: Session, students: list[Student]) -> str | None: ...


# Other apps say what a cancellation will do for them (benefits: tokens).
session_cancel_preview_hooks: list[SessionCancelPreviewHook] = []


def session_cancel_preview(
    *, session: Session, reason: str, livestream_url: str = ""
) -> CancelPreview:
    """The e-mail as the families will read it, who gets it, and what else
    happens; nothing is saved."""
    session.cancel_reason = reason
    if livestream_url:
        session.livestream_url = livestream_url
    students = _cancelled_students(session)
    recipients = sorted({email for email, _family in _cancel_recipients(students)})
    subject, body = _cancel_email(session, ", ".join(s.first_name for s in students))
    consequences = [
        line
        for hook in session_cancel_preview_hooks
        if (line := hook(session=session, students=students))
    ]
    return CancelPreview(students, recipients, subject, body, consequences)


def session_cancel(
    *, session: Session, reason: str, livestream_url: str = "", actor: Actor | None = None
) -> list[str]:
    """Cancel a session and e-mail the guardians of every student booked on it.
    Returns the addresses notified."""
    if actor is not None:
        actor_require(
            actor,
            staff="enrollments.change_session",
            refusal=_("You may not cancel sessions."),
        )
    if not reason.strip():
        raise EnrollmentError(_("Say why the session is cancelled."), field="reason")
    with transaction.atomic():
        session = (
            Session.objects.select_for_update(of=("self",))
            .select_related("klass")
            .get(pk=session.pk)
        )
        if session.is_cancelled:
            raise EnrollmentError(_("This session is cancelled already."))
        session.status = Session.Status.CANCELLED
        session.cancel_reason = reason
        if livestream_url:
            session.livestream_url = livestream_url
        session.sequence += 1
        session.save()
        students = _cancelled_students(session)
        for hook in session_cancelled_hooks:
            hook(session=session, students=students)
        logins = _cancel_recipients(students)
        recipients = sorted({email for email, family_id in logins})
        for email in recipients:
            names = ", ".join(s.first_name for s in students if (email, s.family_id) in logins)
            subject, body = _cancel_email(session, names)
            queue_email(subject=subject, body=body, to=[email])
    return recipients


def single_booking_create(
    *, student: Student, session: Session, kind: str, actor_user: User | None = None
) -> Enrollment:
    """A make-up, trial or drop-in place at one session. The caller holds the
    class lock (`lock_class`) and has checked the rules."""
    day = local(session.starts_at).date()
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                student=student,
                klass_id=session.klass_id,
                session=session,
                kind=kind,
                start_date=day,
                end_date=day,
                status=Enrollment.Status.ACTIVE,
            )
    except IntegrityError as error:
        # The database keeps one active booking per student and session.
        if ONE_BOOKING_PER_SESSION not in str(error):
            raise
        raise EnrollmentError(
            _("%(name)s is booked at this session already.") % {"name": student.first_name}
        ) from error
    EnrollmentChange.objects.create(
        enrollment=enrollment,
        action=EnrollmentChange.Action.ENROLLED,
        effective_date=day,
        actor=actor_user,
        note=enrollment.get_kind_display(),
    )
    return enrollment


def single_booking_cancel(*, enrollment: Enrollment, actor_user: User | None = None) -> Enrollment:
    """Cancel a one-session booking before it starts (caller holds the lock)."""
    if enrollment.kind == Enrollment.Kind.REGULAR or enrollment.status != Enrollment.Status.ACTIVE:
        raise EnrollmentError(_("This booking cannot be cancelled."))
    if booked_session(enrollment).starts_at <= clock.now():
        raise EnrollmentError(_("This session has started, so the booking stays."))
    enrollment.status = Enrollment.Status.CANCELLED
    enrollment.save(update_fields=["status"])
    EnrollmentChange.objects.create(
        enrollment=enrollment,
        action=EnrollmentChange.Action.DROPPED,
        effective_date=today(),
        actor=actor_user,
        note=_("Booking cancelled"),
    )
    return enrollment


def lock_class(klass_id: int) -> Class:
    return Class.objects.select_for_update().get(pk=klass_id)


# --- Waitlist offers --------------------------------------------------------------------


@provider_language()
def _send_offer(offer: WaitlistOffer) -> None:
    enrollment = offer.enrollment
    provider = _provider()
    link = provider.absolute_url(reverse("enrollments:offer", args=[offer.token]))
    context = {"offer": offer, "enrollment": enrollment, "provider": provider, "link": link}
    for email in family_login_emails(enrollment.student.family_id):
        queue_email(
            subject=_("A place for %(name)s in %(klass)s")
            % {"name": enrollment.student.first_name, "klass": enrollment.klass},
            body=render_to_string("enrollments/email/waitlist_offer.txt", context),
            to=[email],
            reply_to=[provider.support_email] if provider.support_email else None,
        )


def _open_offer(enrollment: Enrollment, actor: Actor | None) -> WaitlistOffer:
    """The class is locked and has a free place: hold it for this child."""
    hours = _provider().waitlist_offer_hours
    offer = WaitlistOffer.objects.create(
        enrollment=enrollment,
        expires_at=clock.now() + timedelta(hours=hours),
        offered_by=actor_user(actor),
        offered_by_name=actor_name(actor),
    )
    _record(
        enrollment,
        EnrollmentChange.Action.OFFERED,
        today(),
        actor,
        _("Held until %(until)s") % {"until": formatting.moment(offer.expires_at, "day_month")},
    )
    _send_offer(offer)
    return offer


def waitlist_offer(*, enrollment: Enrollment, actor: Actor) -> WaitlistOffer:
    """Offer a waitlisted child a free place. The place is held for the
    provider's hours (other enrolments cannot take it), the family is
    e-mailed accept and decline links, and if nobody answers in time the
    next child in line is offered it."""
    actor_require(
        actor,
        staff="enrollments.change_enrollment",
        refusal=_("You may not offer places from the waitlist."),
    )
    with transaction.atomic():
        klass = _lock_class(enrollment.klass)
        enrollment = _lock_enrollment(enrollment)
        if enrollment.status != Enrollment.Status.WAITLISTED:
            raise EnrollmentError(_("This child is not on the waitlist any more."))
        _lapse_expired(enrollment)
        if enrollment.offers.filter(state=WaitlistOffer.State.OPEN).exists():
            raise EnrollmentError(_("A place is on offer to this child already."))
        if selectors.class_free_places(klass, on=max(today(), enrollment.start_date)) == 0:
            raise ClassFull(_("The class has no free place to offer."))
        return _open_offer(enrollment, actor)


def waitlist_offer_answer(*, offer: WaitlistOffer, accept: bool, actor: Actor) -> Enrollment:
    """The family takes the offered place (the child is enrolled from today
    or the original start) or declines it (the child leaves the waitlist and
    the place goes to the next in line)."""
    enrollment = offer.enrollment
    _require_manager(actor, enrollment.student.family_id)
    with transaction.atomic():
        klass = _lock_class(enrollment.klass)
        offer = WaitlistOffer.objects.select_for_update().get(pk=offer.pk)
        enrollment = _lock_enrollment(enrollment)
        if offer.state != WaitlistOffer.State.OPEN or offer.expires_at <= clock.now():
            raise EnrollmentError(_("This offer has lapsed or was answered already."))
        offer.state = WaitlistOffer.State.ACCEPTED if accept else WaitlistOffer.State.DECLINED
        offer.answered_at = clock.now()
        offer.save(update_fields=["state", "answered_at"])
        if accept:
            enrollment.status = Enrollment.Status.ACTIVE
            enrollment.start_date = max(enrollment.start_date, today())
            enrollment.save(update_fields=["status", "start_date"])
            _record(
                enrollment,
                EnrollmentChange.Action.ENROLLED,
                enrollment.start_date,
                actor,
                _("From the waitlist"),
            )
        else:
            enrollment.status = Enrollment.Status.CANCELLED
            enrollment.end_date = max(enrollment.start_date, today())
            enrollment.save(update_fields=["status", "end_date"])
            _record(enrollment, EnrollmentChange.Action.OFFER_DECLINED, today(), actor)
            _offer_next(klass)
    return enrollment


def _lapse_expired(enrollment: Enrollment) -> int:
    lapsed = 0
    for offer in enrollment.offers.filter(
        state=WaitlistOffer.State.OPEN, expires_at__lte=clock.now()
    ):
        offer.state = WaitlistOffer.State.LAPSED
        offer.save(update_fields=["state"])
        _record(enrollment, EnrollmentChange.Action.OFFER_LAPSED, today(), None)
        lapsed += 1
    return lapsed


def waitlist_offer_next(*, klass: Class, actor: Actor) -> WaitlistOffer:
    """Staff offer a class's free place to the next child in line (the
    earliest on the waitlist not offered a place before)."""
    actor_require(
        actor,
        staff="enrollments.change_enrollment",
        refusal=_("You may not offer places from the waitlist."),
    )
    with transaction.atomic():
        klass = _lock_class(klass)
        if selectors.class_free_places(klass, on=today()) == 0:
            raise ClassFull(_("The class has no free place to offer."))
        offer = _offer_next(klass, actor)
        if offer is None:
            raise EnrollmentError(_("Nobody on this class's waitlist is waiting for an offer."))
        return offer


def _offer_next(klass: Class, actor: Actor | None = None) -> WaitlistOffer | None:
    """If the (locked) class has a free place, offer it to the next child in
    line: the earliest on the waitlist not offered a place before."""
    if selectors.class_free_places(klass, on=today()) == 0:
        return None
    following = (
        Enrollment.objects.filter(
            klass=klass, kind=Enrollment.Kind.REGULAR, status=Enrollment.Status.WAITLISTED
        )
        .exclude(offers__isnull=False)
        .select_related("student", "klass")
        .order_by("pk")
        .first()
    )
    return _open_offer(following, actor) if following else None


def waitlist_offers_lapse() -> int:
    """Offers nobody answered in time lapse; each freed place is offered to
    the next child in line. Run by beat; safe to run twice."""
    expired = WaitlistOffer.objects.filter(
        state=WaitlistOffer.State.OPEN, expires_at__lte=clock.now()
    ).select_related("enrollment__klass")
    count = 0
    for offer in expired:
        with transaction.atomic():
            klass = _lock_class(offer.enrollment.klass)
            count += _lapse_expired(_lock_enrollment(offer.enrollment))
            _offer_next(klass)
    return count


# --- Attendance --------------------------------------------------------------------------


def attendance_record(
    *, session: Session, enrollment: Enrollment, status: str, actor: Actor
) -> Attendance:
    """Who came to a session: only a child booked at it (enrolled in its class
    on the day, or holding a single-session place there) can be marked."""
    actor_require(
        actor, staff="enrollments.change_attendance", refusal=_("You may not take attendance.")
    )
    if session.is_cancelled:
        raise EnrollmentError(_("This session is cancelled: there is no attendance to take."))
    if local(session.starts_at).date() > today():
        raise EnrollmentError(_("Attendance is taken on the day of the session."))
    if not selectors.booked_at(enrollment, session):
        raise EnrollmentError(
            _("%(name)s is not booked at this session.") % {"name": enrollment.student},
            field="enrollment",
        )
    if status not in Attendance.Status.values:
        raise EnrollmentError(_("Choose present, absent, excused or late."), field="status")
    attendance, _created = Attendance.objects.update_or_create(
        session=session, enrollment=enrollment, defaults={"status": status}
    )
    return attendance


# --- Evaluations -------------------------------------------------------------------------


def evaluation_record(
    *, student: Student, skill: Skill, status: str, actor: Actor, comment: str = ""
) -> Evaluation:
    """A skill's status for a child as of today. The newest evaluation
    counts; a second mark on the same day corrects the first instead of
    adding to the history. The child is locked so two marks never race."""
    actor_require(
        actor, staff="enrollments.add_evaluation", refusal=_("You may not record evaluations.")
    )
    if status not in Evaluation.Status.values:
        raise EnrollmentError(_("Choose not started, working on it or achieved."), field="status")
    with transaction.atomic():
        Student.objects.select_for_update().filter(pk=student.pk).first()
        day = today()
        same_day = (
            Evaluation.objects.filter(student=student, skill=skill, evaluated_on=day)
            .order_by("-pk")
            .first()
        )
        if same_day is not None:
            same_day.status = status
            if comment:
                same_day.comment = comment
            same_day.recorded_by_name = actor_name(actor)
            same_day.save(update_fields=["status", "comment", "recorded_by_name"])
            return same_day
        return Evaluation.objects.create(
            student=student,
            skill=skill,
            status=status,
            evaluated_on=day,
            instructor=student_class_instructor(student, skill),
            comment=comment,
            recorded_by_name=actor_name(actor),
        )


def student_class_instructor(student: Student, skill: Skill) -> Instructor | None:
    """The instructor of the child's current class at the skill's level."""
    enrollment = (
        Enrollment.objects.filter(
            student=student,
            klass__level_id=skill.level_id,
            kind=Enrollment.Kind.REGULAR,
            status=Enrollment.Status.ACTIVE,
        )
        .select_related("klass__instructor")
        .first()
    )
    return enrollment.klass.instructor if enrollment else None
