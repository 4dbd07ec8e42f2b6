"""Make-up and pass rules, in one place: the same functions decide what a
parent may book and explain, in plain words, why something is not offered.
Parents' most common complaint about peers is make-up rules nobody can
explain; here the list of reasons *is* the rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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


def students_levels_and_programmes(
    students: list[Student],
) -> dict[int, tuple[set[int], set[int], set[int]]]:
    """student_levels_and_programmes for several students, in one query."""
    found: dict[int, tuple[set[int], set[int], set[int]]] = {
        s.pk: (set(), set(), set()) for s in students
    }
    day = today()
    for enrollment in Enrollment.objects.filter(
        student__in=students, status=Enrollment.Status.ACTIVE, kind=Enrollment.Kind.REGULAR
    ).select_related("klass"):
        if enrollment.end_date is not None and enrollment.end_date < day:
            continue
        levels, programmes, classes = found[enrollment.student_id]
        if enrollment.klass.level_id:
            levels.add(enrollment.klass.level_id)
        programmes.add(enrollment.klass.programme_id)
        classes.add(enrollment.klass_id)
    return found


TOKEN_SOON_DAYS = 7  # a token expiring within this many days is flagged


def token_advice(
    token: MakeupToken,
    offers: list[tuple[Session, int, bool]],
    levels: set[int],
    programmes: set[int],
) -> str:
    """What the family should do about an available token ("" when nothing):
    it cannot be used anywhere (no upcoming session it could book), or it
    expires within a week. `offers`: (session, free places, student already
    booked) for the sessions of the student's levels and programmes."""

    def reasons(session: Session, free: int, booked: bool, check_location: bool = True):
        return session_reasons(
            session=session,
            free=free,
            student_booked=booked,
            levels=levels,
            programmes=programmes,
            token=token,
            check_location=check_location,
        )

    if not any(not reasons(*offer) for offer in offers):
        if token.location is not None and any(not reasons(*offer, False) for offer in offers):
            return _(
                "No suitable session at %(location)s has a free place before the token "
                "expires on %(date)s. Ask the office to book it at another location."
            ) % {
                "location": token.location.name,
                "date": formatting.day(token.expires_on, "long"),
            }
        return _(
            "No suitable session has a free place before the token expires on %(date)s. "
            "Ask the office what they can offer."
        ) % {"date": formatting.day(token.expires_on, "long")}
    if (token.expires_on - today()).days <= TOKEN_SOON_DAYS:
        return _("Expires soon: book a make-up by %(date)s.") % {
            "date": formatting.day(token.expires_on, "long")
        }
    return ""


def session_reasons(
    *,
    session: Session,
    free: int,
    student_booked: bool,
    levels: set[int],
    programmes: set[int] | None = None,
    token: MakeupToken | None = None,
    pass_obj: Pass | None = None,
    check_location: bool = True,
) -> list[str]:
    """Why this session cannot be booked with this token or pass (empty: it
    can). `check_location=False`: whether it could, were it valid anywhere
    (staff may issue such a token)."""
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
        if check_location and location is not None and session.klass.location_id != location.pk:
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


# --- The rules in plain words -----------------------------------------------------------
# The make-up policy parents see (providers.services.policy_publish) ends with
# these sentences: each states a rule this module or benefits.services applies,
# from the same settings. Change a rule here and its sentence with it.

MAKEUP_WEEKS_AHEAD = 6  # sessions offered for a make-up (benefits.selectors)


def policy_sentences(provider) -> list[str]:
    """The make-up rules of `provider`, from its settings alone."""
    window = provider.makeup_booking_window_hours
    closes = (
        ngettext(
            "Booking closes %(hours)d hour before the session starts.",
            "Booking closes %(hours)d hours before the session starts.",
            window,
        )
        % {"hours": window}
        if window
        else _("Booking is open until the session starts.")
    )
    if provider.makeup_tokens_enabled:
        notice = provider.makeup_notice_hours
        days = provider.makeup_token_days
        sentences = [
            ngettext(
                "An absence reported at least %(hours)d hour before the session earns a "
                "make-up token; a session we cancel always earns one.",
                "An absence reported at least %(hours)d hours before the session earns a "
                "make-up token; a session we cancel always earns one.",
                notice,
            )
            % {"hours": notice},
            ngettext(
                "A token is valid for %(days)d day from the session missed, and only at "
                "the location of that session.",
                "A token is valid for %(days)d days from the session missed, and only at "
                "the location of that session.",
                days,
            )
            % {"days": days},
            _(
                "It books one place in a class of your child's level (or programme) "
                "with a free place."
            ),
            closes,
        ]
        reminder = provider.expiry_reminder_days
        if reminder:
            sentences.append(
                ngettext(
                    "We remind you %(days)d day before a token expires.",
                    "We remind you %(days)d days before a token expires.",
                    reminder,
                )
                % {"days": reminder}
            )
        return sentences
    if provider.makeup_requests_enabled:
        return [
            ngettext(
                "Ask for a make-up in a class of your child's level (or programme) with a "
                "free place, in the next %(weeks)d week; the office confirms each request.",
                "Ask for a make-up in a class of your child's level (or programme) with a "
                "free place, in the next %(weeks)d weeks; the office confirms each request.",
                MAKEUP_WEEKS_AHEAD,
            )
            % {"weeks": MAKEUP_WEEKS_AHEAD},
            closes,
        ]
    return []
