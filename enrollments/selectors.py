"""Reads for classes and enrolments, scoped to students the caller already
resolved through the family. Every function runs a fixed number of queries,
however many students, enrolments or sessions there are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta  # noqa: F401
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest, Now
from django.shortcuts import get_object_or_404

from families.models import Family, Student
from portal import clock
from portal.clock import local, provider_zone, today

from .models import (
    AbsenceMark,
    Attendance,
    Class,
    Enrollment,
    Evaluation,
    Level,
    Location,
    Session,
    Skill,
    WaitlistOffer,
)


class AbsentIds(TypedDict):
    absent_ids: list[int]  # with_absences


class FreePlaces(TypedDict):
    taken: int  # with_free_places
    free: int


if TYPE_CHECKING:
    from django_stubs_ext import StrPromise, WithAnnotations

    SessionWithAbsences: TypeAlias = WithAnnotations[Session, AbsentIds]
    ClassWithPlaces: TypeAlias = WithAnnotations[Class, FreePlaces]

ENROLLMENT_RELATED = (
    "student",
    "klass__programme",
    "klass__location",
    "klass__instructor",
    "klass__level",
    "session",
)


@dataclass
class SessionItem:
    """One student at one session."""

    session: SessionWithAbsences
    student: Student
    enrollment: Enrollment
    absence_reported: bool = False
    attendance: str = ""

    @property
    def klass(self) -> Class:
        return self.session.klass


def booked_session(enrollment: Enrollment) -> Session:
    """The session of a single-session enrolment (make-up, trial, drop-in)."""
    assert enrollment.session is not None, "a regular enrolment has no single session"
    return enrollment.session


def _covers(enrollment: Enrollment, session: Session) -> bool:
    if enrollment.kind != Enrollment.Kind.REGULAR:
        return enrollment.session_id == session.pk
    day = local(session.starts_at).date()
    return enrollment.start_date <= day and (
        enrollment.end_date is None or day <= enrollment.end_date
    )


def booked_at(enrollment: Enrollment, session: Session) -> bool:
    """Whether the enrolment holds a place at the session: its class on the
    day for a regular enrolment, its one session for a single booking."""
    if enrollment.kind != Enrollment.Kind.REGULAR:
        return enrollment.session_id == session.pk
    return enrollment.klass_id == session.klass_id and _covers(enrollment, session)


def with_absences(
    sessions: QuerySet[Session], student_ids: Iterable[int]
) -> QuerySet[SessionWithAbsences]:
    """Sessions annotated with `absent_ids`: which of these students have an
    absence reported for each (in the same query)."""
    marks = AbsenceMark.objects.filter(
        session_id=OuterRef("pk"),
        absence__student_id__in=list(student_ids),
        absence__cancelled_at__isnull=True,
    ).values("absence__student_id")
    return sessions.annotate(absent_ids=ArraySubquery(marks))


def with_open_offer(enrollments: QuerySet[Enrollment]) -> QuerySet[Enrollment]:
    """Each enrolment with the place offered to it from the waitlist, if one
    is open: `offer_token` and `offer_until` (None otherwise), in the same query."""
    offer = WaitlistOffer.objects.filter(
        enrollment=OuterRef("pk"), state=WaitlistOffer.State.OPEN, expires_at__gt=Now()
    )
    return enrollments.annotate(
        offer_token=Subquery(offer.values("token")[:1]),
        offer_until=Subquery(offer.values("expires_at")[:1]),
    )


def open_enrollments(students: Iterable[Student]) -> list[Enrollment]:
    """Active and waitlisted enrolments of these students (one query; the
    dashboard's upcoming sessions and bookings share it)."""
    return list(
        with_open_offer(
            Enrollment.objects.filter(
                student__in=students,
                status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.WAITLISTED],
            )
        )
        .select_related(*ENROLLMENT_RELATED)
        .order_by("student__date_of_birth", "student_id", "status", "start_date", "pk")
    )


def sessions_for(
    students: Iterable[Student],
    *,
    start: datetime,
    end: datetime,
    limit: int | None = None,
    enrollments: list[Enrollment] | None = None,
) -> list[SessionItem]:
    """Each student's sessions in [start, end), cancelled ones included, in
    time order. Two queries (one when `enrollments` are given)."""
    students = list(students)
    if enrollments is None:
        enrollments = open_enrollments(students)
    enrollments = [e for e in enrollments if e.status == Enrollment.Status.ACTIVE]
    class_ids = {e.klass_id for e in enrollments if e.kind == Enrollment.Kind.REGULAR}
    single_ids = {e.session_id for e in enrollments if e.session_id}
    if not class_ids and not single_ids:
        return []
    sessions = with_absences(
        Session.objects.filter(Q(klass_id__in=class_ids) | Q(pk__in=single_ids))
        .filter(starts_at__gte=start, starts_at__lt=end)
        .select_related("klass__programme", "klass__location", "klass__instructor")
        .order_by("starts_at", "pk"),
        {s.pk for s in students},
    )
    by_class: defaultdict[int, list[Enrollment]] = defaultdict(list)
    for enrollment in enrollments:
        by_class[enrollment.klass_id].append(enrollment)
    items: list[SessionItem] = []
    for session in sessions:
        for enrollment in by_class[session.klass_id]:
            if _covers(enrollment, session):
                items.append(SessionItem(session, enrollment.student, enrollment))
        if limit and len(items) >= limit:
            break
    items = items[:limit] if limit else items
    for item in items:
        item.absence_reported = item.student.pk in item.session.absent_ids
    return items


def upcoming_sessions(
    students: Iterable[Student],
    *,
    limit: int = 8,
    days: int = 120,
    enrollments: list[Enrollment] | None = None,
) -> list[SessionItem]:
    now = clock.now()
    return sessions_for(
        students, start=now, end=now + timedelta(days=days), limit=limit, enrollments=enrollments
    )


def bookings(
    students: Iterable[Student], *, enrollments: list[Enrollment] | None = None
) -> dict[str, list[Enrollment]]:
    """Active and open (waitlisted) bookings that have not ended."""
    if enrollments is None:
        enrollments = open_enrollments(students)
    day, now = today(), clock.now()
    current = [
        e
        for e in enrollments
        if (e.end_date is None or e.end_date >= day)
        and (e.kind == Enrollment.Kind.REGULAR or booked_session(e).starts_at >= now)
    ]
    return {
        "active": [e for e in current if e.status == Enrollment.Status.ACTIVE],
        "open": [e for e in current if e.status == Enrollment.Status.WAITLISTED],
    }


def student_enrollments(student: Student) -> dict[str, list[Enrollment]]:
    """Current, waitlisted and past enrolments of one student."""
    return students_enrollments([student])[student.pk]


def students_enrollments(students: Iterable[Student]) -> dict[int, dict[str, list[Enrollment]]]:
    """Per student: current, waitlisted and past enrolments, in one query
    however many students."""
    students = list(students)
    everything = list(
        with_open_offer(Enrollment.objects.filter(student__in=students))
        .select_related(*ENROLLMENT_RELATED, "transferred_to__klass__programme")
        .order_by("-start_date", "-pk")
    )
    day, now = today(), clock.now()

    def is_past(e: Enrollment) -> bool:
        if e.status not in (Enrollment.Status.ACTIVE, Enrollment.Status.WAITLISTED):
            return True
        if e.session_id:
            return booked_session(e).starts_at < now
        return e.end_date is not None and e.end_date < day

    result: dict[int, dict[str, list[Enrollment]]] = {
        s.pk: {"current": [], "waitlisted": [], "past": []} for s in students
    }
    for e in everything:
        if is_past(e):
            key = "past"
        elif e.status == Enrollment.Status.ACTIVE:
            key = "current"
        else:
            key = "waitlisted"
        result[e.student_id][key].append(e)
    return result


def enrollment_for_student(student: Student, pk: int | str) -> Enrollment:
    return get_object_or_404(
        Enrollment.objects.select_related(*ENROLLMENT_RELATED), pk=pk, student=student
    )


def enrollment_in_family(family: Family, pk: int | str) -> Enrollment:
    return get_object_or_404(
        Enrollment.objects.select_related(*ENROLLMENT_RELATED), pk=pk, student__family=family
    )


@dataclass
class AttendanceRow:
    session: Session
    status: str  # an Attendance.Status, "absence_reported", "cancelled" or "not_recorded"
    label: str | StrPromise


def attendance_history(enrollments: list[Enrollment]) -> dict[int, list[AttendanceRow]]:
    """Per enrolment, its sessions up to now with what happened. Two queries."""
    from django.utils.translation import gettext as _

    if not enrollments:
        return {}
    now = clock.now()
    sessions = list(
        with_absences(
            Session.objects.filter(
                Q(klass_id__in={e.klass_id for e in enrollments if not e.session_id})
                | Q(pk__in={e.session_id for e in enrollments if e.session_id}),
                starts_at__lt=now,
            ).order_by("-starts_at"),
            {e.student_id for e in enrollments},
        )
    )
    records = {
        (a.enrollment_id, a.session_id): a
        for a in Attendance.objects.filter(enrollment__in=enrollments)
    }
    labels = dict(Attendance.Status.choices)
    result: dict[int, list[AttendanceRow]] = {}
    for enrollment in enrollments:
        rows = []
        for session in sessions:
            if session.klass_id != enrollment.klass_id or not _covers(enrollment, session):
                continue
            record = records.get((enrollment.pk, session.pk))
            if record:
                rows.append(AttendanceRow(session, record.status, labels[record.status]))
            elif session.is_cancelled:
                rows.append(AttendanceRow(session, "cancelled", _("Cancelled")))
            elif enrollment.student_id in session.absent_ids:
                rows.append(AttendanceRow(session, "absence_reported", _("Absence reported")))
            else:
                rows.append(AttendanceRow(session, "not_recorded", _("Not recorded")))
        result[enrollment.pk] = rows
    return result


@dataclass
class SkillRow:
    skill: Skill
    evaluation: Evaluation | None


def evaluations(
    student: Student, enrollments: list[Enrollment]
) -> list[tuple[Level, list[SkillRow]]]:
    """The skills of each level the student is in, with their newest evaluation."""
    levels: list[Level] = []
    for e in enrollments:
        if e.klass.level and e.klass.level not in levels:
            levels.append(e.klass.level)
    if not levels:
        return []
    skills = list(Skill.objects.filter(level__in=levels))
    newest: dict[int, Evaluation] = {}
    for evaluation in Evaluation.objects.filter(student=student, skill__in=skills).select_related(
        "instructor"
    ):
        newest.setdefault(evaluation.skill_id, evaluation)  # ordered newest first
    return [
        (level, [SkillRow(s, newest.get(s.pk)) for s in skills if s.level_id == level.pk])
        for level in levels
    ]


@dataclass
class TransferOption:
    klass: Class
    free: int
    reason: str  # why it cannot be chosen; empty when it can


def transfer_options(
    enrollment: Enrollment, *, on: date, current_location: Location | None = None
) -> list[TransferOption]:
    """Classes of the same programme the student could move to, with free places."""
    from django.utils.translation import gettext as _

    classes = with_free_places(
        Class.objects.filter(programme_id=enrollment.klass.programme_id, is_active=True)
        .exclude(pk=enrollment.klass_id)
        .filter(term_end__gte=on)
        .select_related("programme", "location", "instructor", "level"),
        on=on,
    ).order_by("location__name", "weekday", "start_time")
    options = []
    for klass in classes:
        reason = ""
        if klass.free == 0:
            reason = _("Full")
        elif enrollment.klass.level_id and klass.level_id != enrollment.klass.level_id:
            reason = _("Another level")
        options.append(TransferOption(klass, klass.free, reason))
    if current_location:
        options.sort(key=lambda o: o.klass.location_id != current_location.pk)
    return options


def future_sessions_of(enrollment: Enrollment, *, after: datetime) -> list[Session]:
    """Scheduled sessions of this enrolment from `after` on (what a drop releases)."""
    sessions = Session.objects.filter(
        klass_id=enrollment.klass_id,
        starts_at__gte=after,
        status=Session.Status.SCHEDULED,
    ).order_by("starts_at")
    return [s for s in sessions if _covers(enrollment, s)]


def class_sessions_from(klass: Class, *, after: datetime) -> list[Session]:
    return list(
        Session.objects.filter(
            klass=klass, starts_at__gte=after, status=Session.Status.SCHEDULED
        ).order_by("starts_at")
    )


# --- Places: the one definition of a class's and a session's free places -----------------


def _holding_a_place_from(on: date, prefix: str = "") -> Q:
    """Enrolments that hold one of a class's places on `on` or later: anyone
    enrolled from then on, including enrolments that start later, counts
    (conservative: a place promised for later is not free now)."""
    return Q(
        **{f"{prefix}status": Enrollment.Status.ACTIVE, f"{prefix}kind": Enrollment.Kind.REGULAR}
    ) & (Q(**{f"{prefix}end_date__isnull": True}) | Q(**{f"{prefix}end_date__gte": on}))


def with_free_places(classes: QuerySet[Class], *, on: date) -> QuerySet[ClassWithPlaces]:
    """Classes annotated with `taken` (places held on `on` or later, and
    places offered from the waitlist while the offer is open) and `free`
    (never below zero), counted in the same query."""
    offered = (
        WaitlistOffer.objects.filter(
            enrollment__klass=OuterRef("pk"),
            state=WaitlistOffer.State.OPEN,
            expires_at__gt=Now(),
        )
        .order_by()
        .values("enrollment__klass")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return classes.annotate(
        taken=Count("enrollments", filter=_holding_a_place_from(on, "enrollments__"))
        + Coalesce(Subquery(offered), Value(0)),
        free=Greatest(F("capacity") - F("taken"), Value(0)),
    )


def class_free_places(klass: Class, *, on: date) -> int:
    """A class's free places for regular enrolment from `on`. Services call it
    after locking the class, so the answer holds until they commit."""
    annotated = with_free_places(Class.objects.filter(pk=klass.pk), on=on)
    return int(annotated.values_list("free", flat=True).get())


@dataclass(frozen=True)
class SessionPlaces:
    capacity: int
    booked: frozenset[int]  # students holding a place at the session

    @property
    def taken(self) -> int:
        return len(self.booked)

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.taken)


def session_places(sessions: list[Session]) -> dict[int, SessionPlaces]:
    """Per session: who holds a place and how many are free, in three queries
    however many sessions (each session's `klass` loaded by the caller).
    Regular students who reported an absence free their place; single-session
    bookings (make-up, trial, drop-in) take one."""
    if not sessions:
        return {}
    class_ids = {s.klass_id for s in sessions}
    regulars = list(
        Enrollment.objects.filter(klass_id__in=class_ids)
        .holding_a_place()
        .values_list("klass_id", "student_id", "start_date", "end_date")
    )
    absent = set(
        AbsenceMark.objects.filter(
            session__in=sessions, absence__cancelled_at__isnull=True
        ).values_list("session_id", "absence__student_id")
    )
    singles: defaultdict[int, set[int]] = defaultdict(set)
    for session_id, student_id in Enrollment.objects.filter(
        session__in=sessions, status=Enrollment.Status.ACTIVE
    ).values_list("session_id", "student_id"):
        singles[session_id].add(student_id)
    result: dict[int, SessionPlaces] = {}
    for session in sessions:
        day = local(session.starts_at).date()
        booked = {
            student
            for klass, student, start, end in regulars
            if klass == session.klass_id
            and start <= day
            and (end is None or day <= end)
            and (session.pk, student) not in absent
        }
        booked |= singles[session.pk]
        result[session.pk] = SessionPlaces(session.klass.capacity, frozenset(booked))
    return result


def session_free_places(session: Session) -> SessionPlaces:
    """One session's places (session_places)."""
    return session_places([session])[session.pk]


# --- The front desk ------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The provider's day, midnight to midnight in its time zone."""
    zone = provider_zone()
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    return start, start + timedelta(days=1)


def sessions_on(day: date, *, location_id: int | None = None) -> list[Session]:
    """The provider's sessions on a day (its own time zone), cancelled ones
    included, each with `attendance_count`, `absence_count` (absences reported
    and not withdrawn) and `single_count` (make-up, trial and drop-in places):
    one query however many sessions."""
    start, end = day_bounds(day)
    sessions = (
        Session.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .select_related("klass__programme", "klass__location", "klass__instructor", "klass__level")
        .annotate(
            attendance_count=Count("attendance", distinct=True),
            absence_count=Count(
                "absence_marks",
                filter=Q(absence_marks__absence__cancelled_at__isnull=True),
                distinct=True,
            ),
            single_count=Count(
                "single_enrollments",
                filter=Q(single_enrollments__status=Enrollment.Status.ACTIVE),
                distinct=True,
            ),
        )
        .order_by("klass__location__name", "starts_at", "pk")
    )
    if location_id is not None:
        sessions = sessions.filter(klass__location_id=location_id)
    return list(sessions)


def absences_on(day: date) -> list[AbsenceMark]:
    """Absences reported for the day's sessions and not withdrawn: one query."""
    start, end = day_bounds(day)
    return list(
        AbsenceMark.objects.filter(
            session__starts_at__gte=start,
            session__starts_at__lt=end,
            absence__cancelled_at__isnull=True,
        )
        .select_related(
            "absence__student__family", "session__klass__programme", "session__klass__location"
        )
        .order_by("session__starts_at", "pk")
    )


def open_offers(*, limit: int = 20) -> list[WaitlistOffer]:
    """Places offered from waitlists that families have not answered yet."""
    return list(
        WaitlistOffer.objects.filter(state=WaitlistOffer.State.OPEN, expires_at__gt=Now())
        .select_related(
            "enrollment__student__family",
            "enrollment__klass__programme",
            "enrollment__klass__location",
        )
        .order_by("expires_at")[:limit]
    )


@dataclass
class RosterRow:
    """One child expected at (or recorded for) a session."""

    enrollment: Enrollment
    student: Student
    attendance: str = ""  # the recorded status, "" when not taken yet
    absence_reported: bool = False
    absence_reason: str = ""
    error: str = ""  # why the desk could not save this child's mark

    @property
    def kind(self) -> str:
        return self.enrollment.kind

    @property
    def is_single(self) -> bool:
        return self.enrollment.kind != Enrollment.Kind.REGULAR


# Regular enrolments that held a place on a day, whatever happened to them later.
_ON_THE_ROLL = [
    Enrollment.Status.ACTIVE,
    Enrollment.Status.DROPPED,
    Enrollment.Status.TRANSFERRED,
    Enrollment.Status.COMPLETED,
]


def session_roster(session: Session) -> list[RosterRow]:
    """Who is expected at a session: the class's regular students on the day
    (those who reported an absence flagged) and the children booked into this
    one session (make-up, trial, drop-in), with the attendance recorded so far.
    Three queries, however many children."""
    day = local(session.starts_at).date()
    enrollments = list(
        Enrollment.objects.filter(
            Q(
                klass_id=session.klass_id,
                kind=Enrollment.Kind.REGULAR,
                status__in=_ON_THE_ROLL,
                start_date__lte=day,
            )
            & (Q(end_date__isnull=True) | Q(end_date__gte=day))
            | Q(session=session, status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.COMPLETED])
            # Marked already, whatever happened since (dropped later that day).
            | Q(pk__in=Attendance.objects.filter(session=session).values("enrollment_id"))
        )
        .select_related("student__family")
        .order_by("student__first_name", "student__last_name", "pk")
    )
    recorded = dict(
        Attendance.objects.filter(session=session).values_list("enrollment_id", "status")
    )
    absences = {
        student_id: reason
        for student_id, reason in AbsenceMark.objects.filter(
            session=session, absence__cancelled_at__isnull=True
        ).values_list("absence__student_id", "absence__reason")
    }
    rows = [
        RosterRow(
            enrollment=e,
            student=e.student,
            attendance=recorded.get(e.pk, ""),
            absence_reported=e.student_id in absences,
            absence_reason=absences.get(e.student_id, ""),
        )
        for e in enrollments
    ]
    # Regular children first, then the ones here for this session only.
    rows.sort(key=lambda r: r.is_single)
    return rows


@dataclass
class SkillGrid:
    klass: Class
    skills: list[Skill]
    rows: list[tuple[Student, list[SkillRow]]]


def newest_evaluation(student: Student, skill: Skill) -> Evaluation | None:
    return (
        Evaluation.objects.filter(student=student, skill=skill)
        .order_by("-evaluated_on", "-pk")
        .first()
    )


def _in_class_on(klass: Class, on: date) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(
        klass=klass, kind=Enrollment.Kind.REGULAR, status=Enrollment.Status.ACTIVE
    ).covering(on)


def class_student(klass: Class, pk: int | str, *, on: date) -> Student:
    """A child enrolled in the class on the day, or 404."""
    return get_object_or_404(
        Student.objects.filter(pk__in=_in_class_on(klass, on).values("student_id")), pk=pk
    )


def class_skill_grid(klass: Class, *, on: date) -> SkillGrid:
    """The class's children on a day against its level's skills, each cell
    with the newest evaluation: three queries, however big the class."""
    skills = list(Skill.objects.filter(level_id=klass.level_id)) if klass.level_id else []
    students = [
        e.student
        for e in _in_class_on(klass, on)
        .select_related("student")
        .order_by("student__first_name", "student__last_name", "pk")
    ]
    newest: dict[tuple[int, int], Evaluation] = {}
    if skills and students:
        for evaluation in Evaluation.objects.filter(
            student__in=students, skill__in=skills
        ).order_by("-evaluated_on", "-pk"):
            newest.setdefault((evaluation.student_id, evaluation.skill_id), evaluation)
    rows = [
        (student, [SkillRow(skill, newest.get((student.pk, skill.pk))) for skill in skills])
        for student in students
    ]
    return SkillGrid(klass=klass, skills=skills, rows=rows)


def classes_with_room_and_waitlist(*, on: date, limit: int = 20) -> list[ClassWithPlaces]:
    """Classes with a free place and children waiting for one: where the desk
    can offer a place."""
    waiting = (  # children who can still be offered a place (never offered one)
        Enrollment.objects.filter(
            klass_id=OuterRef("pk"),
            kind=Enrollment.Kind.REGULAR,
            status=Enrollment.Status.WAITLISTED,
            offers__isnull=True,
        )
        .order_by()
        .values("klass_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    classes = (
        with_free_places(Class.objects.filter(term_end__gte=on), on=on)
        .annotate(waiting=Coalesce(Subquery(waiting), Value(0)))
        .filter(free__gt=0, waiting__gt=0)
        .select_related("programme", "location")
        .order_by("location__name", "weekday", "start_time")
    )
    return list(classes[:limit])


def sessions_marked_absent(*, student: Student, session_ids: Iterable[int]) -> set[int]:
    """Of these sessions, those the student has a (not cancelled) absence for."""
    return set(
        AbsenceMark.objects.filter(
            session_id__in=list(session_ids),
            absence__student=student,
            absence__cancelled_at__isnull=True,
        ).values_list("session_id", flat=True)
    )
