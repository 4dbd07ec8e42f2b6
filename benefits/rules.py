"""Make-up and pass rules, in one place: the same functions decide what a
parent may book and explain, in plain words, why something is not offered.
Parents' most common complaint about peers is make-up rules nobody can
explain; here the list of reasons *is* the rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils.translation import gettext as _

from enrollments.models import Enrollment, Session
from enrollments.selectors import booked_session
from families.models import Student
from portal import clock, formatting
from portal.clock import local, today
from portal.tenancy import current_provider

from .models import MakeupToken, Pass, TokenEvent

AVAILABLE = "available"
PENDING = "pending"
SPENT = "spent"
EXPIRED = "expired"
REVOKED = "revoked"


def state_from(last_kind: str | None, session_starts, expires_on) -> str:
    """A token's state from its newest event (and, when that event applied it
    to a booking, the booked session's start)."""
    if last_kind is None or last_kind == TokenEvent.Kind.REVOKED:
        return REVOKED
    if last_kind == TokenEvent.Kind.EXPIRED:
        return EXPIRED
    if last_kind == TokenEvent.Kind.APPLIED:
        return SPENT if session_starts <= clock.now() else PENDING
    # issued or returned
    return EXPIRED if expires_on < today() else AVAILABLE


def token_state(token: MakeupToken) -> str:
    """From annotations (`last_kind`, `last_starts`, see selectors) when the
    query made them, else from the prefetched events."""
    if hasattr(token, "last_kind") and hasattr(token, "last_starts"):
        return state_from(token.last_kind, token.last_starts, token.expires_on)
    events = list(token.events.all())
    last = events[-1] if events else None
    if last is None:
        return REVOKED
    starts = None
    if last.kind == TokenEvent.Kind.APPLIED:
        assert last.enrollment is not None, "an applied event books an enrolment"
        starts = booked_session(last.enrollment).starts_at
    return state_from(last.kind, starts, token.expires_on)


def applied_event(token: MakeupToken) -> TokenEvent | None:
    events = list(token.events.all())
    if events and events[-1].kind == TokenEvent.Kind.APPLIED:
        return events[-1]
    return None


def pass_punches_left(pass_obj: Pass) -> int | None:
    """None for a permanent pass (unlimited until it expires). Uses the
    `punches_sum` annotation when the query made it."""
    if pass_obj.kind == Pass.Kind.PERMANENT:
        return None
    if hasattr(pass_obj, "punches_sum"):
        return pass_obj.punches_sum
    return sum(e.punches for e in pass_obj.events.all())


def pass_is_usable(pass_obj: Pass) -> bool:
    if hasattr(pass_obj, "ended"):
        ended = pass_obj.ended
    else:
        ended = any(e.kind in ("expired", "revoked") for e in pass_obj.events.all())
    if ended:
        return False
    if pass_obj.expires_on and pass_obj.expires_on < today():
        return False
    left = pass_punches_left(pass_obj)
    return left is None or left > 0


@dataclass
class Offer:
    """A session considered for a make-up or a drop-in, with why it cannot be
    booked (empty reasons: it can)."""

    session: Session
    free: int
    reasons: list[str] = field(default_factory=list)

    @property
    def bookable(self) -> bool:
        return not self.reasons


def student_levels_and_programmes(student: Student) -> tuple[set[int], set[int], set[int]]:
    """Levels, programmes and classes of the student's current regular enrolments."""
    regular = Enrollment.objects.filter(
        student=student, status=Enrollment.Status.ACTIVE, kind=Enrollment.Kind.REGULAR
    ).select_related("klass")
    day = today()
    current = [e for e in regular if e.end_date is None or e.end_date >= day]
    return (
        {e.klass.level_id for e in current if e.klass.level_id},
        {e.klass.programme_id for e in current},
        {e.klass_id for e in current},
    )


def session_reasons(
    *,
    session: Session,
    free: int,
    student_booked: bool,
    levels: set[int],
    programmes: set[int] | None = None,
    token: MakeupToken | None = None,
    pass_obj: Pass | None = None,
) -> list[str]:
    """Why this session cannot be booked with this token or pass (empty: it can)."""
    provider = current_provider()
    reasons = []
    starts = local(session.starts_at)
    if session.is_cancelled:
        reasons.append(_("The session is cancelled."))
    if not session.klass.is_active:
        reasons.append(_("This class is not running."))
    hours = getattr(provider, "makeup_booking_window_hours", 0)
    if session.starts_at - timedelta(hours=hours) <= clock.now():
        reasons.append(_("Booking closes %(hours)d hours before the start.") % {"hours": hours})
    if token is not None:
        if token.expires_on < starts.date():
            reasons.append(
                _("Your token expires on %(date)s, before this session.")
                % {"date": formatting.day(token.expires_on, "long")}
            )
        location = token.location  # joined by the callers
        if location is not None and session.klass.location_id != location.pk:
            reasons.append(
                _("This token is for %(location)s; the session is at %(other)s.")
                % {"location": location.name, "other": session.klass.location.name}
            )
        if levels and session.klass.level_id not in levels:
            reasons.append(_("The class is a different level."))
        elif not levels and session.klass.programme_id not in (programmes or set()):
            reasons.append(_("Make-ups are in your child's own programme."))
    if pass_obj is not None:
        if pass_obj.expires_on and pass_obj.expires_on < starts.date():
            reasons.append(
                _("The pass expires on %(date)s, before this session.")
                % {"date": formatting.day(pass_obj.expires_on, "long")}
            )
        if pass_obj.programme_id and session.klass.programme_id != pass_obj.programme_id:
            reasons.append(_("The pass is for another programme."))
    if student_booked:
        reasons.append(_("Already booked for this session."))
    if free <= 0:
        reasons.append(_("The class is full that day."))
    return reasons
