"""Classes, their dated sessions, and who is enrolled in them.

Times are stored in UTC and shown in the provider's time zone. A class meets
weekly at a local wall-clock time; each Session row is one dated occurrence,
generated with the provider's time zone so daylight-saving changes keep the
local time. Enrolments are never deleted: dropping or transferring changes
their status and dates, and EnrollmentChange records who did what.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from families.models import Family, Student
from portal import clock, formatting
from portal.models import AppendOnly, append_only


class Location(models.Model):
    name = models.CharField(_("name"), max_length=120)
    address = models.CharField(_("address"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("location")
        verbose_name_plural = _("locations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Level(models.Model):
    """A stage of a programme's curriculum, with the skills evaluated in it."""

    name = models.CharField(_("name"), max_length=80)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("level")
        verbose_name_plural = _("levels")
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    level = models.ForeignKey(Level, on_delete=models.CASCADE, related_name="skills")
    name = models.CharField(_("name"), max_length=120)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("skill")
        verbose_name_plural = _("skills")
        ordering = ["level__order", "order", "name"]

    def __str__(self) -> str:
        return self.name


class Programme(models.Model):
    """What a parent buys: "Swim level 2", "Recreational gymnastics"."""

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    vat_rate = models.DecimalField(
        _("VAT rate (%)"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("Empty: the provider's standard rate. Copied onto each order line."),
    )

    class Meta:
        verbose_name = _("programme")
        verbose_name_plural = _("programmes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Instructor(models.Model):
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        verbose_name = _("instructor")
        verbose_name_plural = _("instructors")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Class(models.Model):
    """A programme at a location on a weekly slot, for one term."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="classes")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="classes")
    level = models.ForeignKey(
        Level, on_delete=models.PROTECT, related_name="classes", null=True, blank=True
    )
    instructor = models.ForeignKey(
        Instructor, on_delete=models.SET_NULL, related_name="classes", null=True, blank=True
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start_time = models.TimeField(_("start time"), help_text=_("Local time at the provider."))
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), default=45)
    capacity = models.PositiveSmallIntegerField(_("capacity"), default=8)
    term_start = models.DateField(_("term starts"))
    term_end = models.DateField(_("term ends"))
    livestream_url = models.URLField(_("livestream link"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ["programme__name", "weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(term_end__gte=models.F("term_start")), name="class_term_ordered"
            )
        ]

    def __str__(self) -> str:
        start = formatting.timeofday(self.start_time)
        return f"{self.programme.name} · {self.get_weekday_display()} {start}"


class Session(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        CANCELLED = "cancelled", _("Cancelled")

    klass = models.ForeignKey(Class, on_delete=models.CASCADE, related_name="sessions")
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED
    )
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=200, blank=True)
    livestream_url = models.URLField(_("livestream link"), blank=True)
    note = models.CharField(_("note for parents"), max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    sequence = models.PositiveIntegerField(
        default=0, help_text=_("Bumped on every change parents should see (calendar feeds).")
    )

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        ordering = ["starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["klass", "starts_at"], name="one_session_per_slot"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="session_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["starts_at"])]

    def __str__(self) -> str:
        return f"{self.klass} · {formatting.moment(self.starts_at)}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == self.Status.CANCELLED


ONE_BOOKING_PER_SESSION = "one_active_booking_per_student_and_session"


class EnrollmentQuerySet(models.QuerySet["Enrollment"]):
    def holding_a_place(self) -> EnrollmentQuerySet:
        """Enrolments that count against a class's capacity."""
        return self.filter(status=Enrollment.Status.ACTIVE, kind=Enrollment.Kind.REGULAR)

    def covering(self, day: date) -> EnrollmentQuerySet:
        return self.filter(Q(start_date__lte=day), Q(end_date__isnull=True) | Q(end_date__gte=day))


class Enrollment(models.Model):
    class Kind(models.TextChoices):
        REGULAR = "regular", _("Regular")
        MAKEUP = "makeup", _("Make-up")
        TRIAL = "trial", _("Trial")
        DROPIN = "dropin", _("Drop-in")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Enrolled")
        WAITLISTED = "waitlisted", _("Waitlisted")
        DROPPED = "dropped", _("Dropped")
        TRANSFERRED = "transferred", _("Transferred")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="enrollments")
    klass = models.ForeignKey(Class, on_delete=models.PROTECT, related_name="enrollments")
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.REGULAR)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    start_date = models.DateField(_("starts"))
    end_date = models.DateField(_("ends"), null=True, blank=True)
    # Make-up and trial enrolments are for one session.
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="single_enrollments", null=True, blank=True
    )
    transferred_to = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        related_name="transferred_from",
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    objects = EnrollmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        ordering = ["start_date", "pk"]
        permissions = [
            ("override_capacity", _("Can enrol over a class's capacity, with a reason")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True)
                | Q(end_date__gte=models.F("start_date"))
                | Q(status__in=["dropped", "transferred", "cancelled"]),
                name="enrollment_dates_ordered",
            ),
            models.CheckConstraint(
                condition=Q(kind="regular") | Q(session__isnull=False),
                name="single_session_enrollment_has_session",
            ),
            # A make-up, trial or drop-in place: once per student and session,
            # however the bookings race (services turn a clash into a message).
            models.UniqueConstraint(
                fields=["student", "session"],
                condition=Q(status="active", session__isnull=False),
                name=ONE_BOOKING_PER_SESSION,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.klass}"

    def delete(self, *args, **kwargs):
        raise RuntimeError("Enrolments are kept: change their status instead.")

    @property
    def is_current(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.WAITLISTED)


class EnrollmentChange(AppendOnly):
    """Append-only history of what happened to an enrolment, and who did it."""

    class Action(models.TextChoices):
        ENROLLED = "enrolled", _("Enrolled")
        WAITLISTED = "waitlisted", _("Waitlisted")
        WAITLIST_CANCELLED = "waitlist_cancelled", _("Left the waitlist")
        DROPPED = "dropped", _("Dropped")
        TRANSFERRED = "transferred", _("Transferred")
        OFFERED = "offered", _("Offered a place from the waitlist")
        OFFER_DECLINED = "offer_declined", _("Declined the offered place")
        OFFER_LAPSED = "offer_lapsed", _("The offered place lapsed")

    enrollment = models.ForeignKey(Enrollment, on_delete=models.PROTECT, related_name="changes")
    action = models.CharField(max_length=20, choices=Action.choices)
    effective_date = models.DateField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(
        _("by"), max_length=200, blank=True, help_text=_("As the name read when they acted.")
    )
    note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["at", "pk"]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {formatting.day(self.effective_date)}"


class Attendance(models.Model):
    class Status(models.TextChoices):
        PRESENT = "present", _("Present")
        ABSENT = "absent", _("Absent")
        EXCUSED = "excused", _("Excused")
        LATE = "late", _("Late")

    enrollment = models.ForeignKey(Enrollment, on_delete=models.PROTECT, related_name="attendance")
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="attendance")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("attendance")
        verbose_name_plural = _("attendance")
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "session"], name="attendance_once")
        ]

    def __str__(self) -> str:
        return self.get_status_display()


class Evaluation(models.Model):
    """A skill's status for a student as of a date; the newest per skill counts."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", _("Not started")
        WORKING = "working", _("Working on it")
        ACHIEVED = "achieved", _("Achieved")

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="evaluations")
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="evaluations")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    evaluated_on = models.DateField(_("date"))
    instructor = models.ForeignKey(
        Instructor, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.CharField(_("comment"), max_length=200, blank=True)
    recorded_by_name = models.CharField(_("recorded by"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        ordering = ["-evaluated_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.skill}: {self.get_status_display()}"


class Absence(models.Model):
    """A future absence a parent reports: by date range (across enrolments) or
    for chosen sessions of one enrolment. It marks the sessions it covers."""

    class Kind(models.TextChoices):
        BY_DATE = "by_date", _("By date")
        BY_ENROLLMENT = "by_enrollment", _("By enrolment")

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="absences")
    kind = models.CharField(max_length=15, choices=Kind.choices)
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    sessions = models.ManyToManyField(Session, through="AbsenceMark", related_name="absences")

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="absence_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.student}: {formatting.moment(self.starts_at)}"


class AbsenceMark(models.Model):
    absence = models.ForeignKey(Absence, on_delete=models.CASCADE, related_name="marks")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="absence_marks")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["absence", "session"], name="absence_marks_once")
        ]

    def __str__(self) -> str:
        return f"{self.absence} @ {self.session}"


def new_feed_token() -> str:
    return secrets.token_urlsafe(24)


class CalendarFeed(models.Model):
    """A secret iCalendar URL for a family or one child; resetting replaces it."""

    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="calendar_feeds")
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    token = models.CharField(max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["family", "student"],
                condition=Q(revoked_at__isnull=True),
                nulls_distinct=False,
                name="one_live_feed_per_family_or_child",
            )
        ]

    def __str__(self) -> str:
        return f"{self.family} feed"


def new_offer_token() -> str:
    return secrets.token_urlsafe(24)


class WaitlistOffer(models.Model):
    """A free place offered to a waitlisted child. While open it holds the
    place (enrollments.selectors.with_free_places); the family accepts or
    declines from the e-mailed link, or it lapses and the next child in line
    is offered the place."""

    class State(models.TextChoices):
        OPEN = "open", _("Waiting for the family")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        LAPSED = "lapsed", _("Lapsed")

    enrollment = models.ForeignKey(Enrollment, on_delete=models.PROTECT, related_name="offers")
    token = models.CharField(max_length=64, unique=True, default=new_offer_token)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    offered_at = models.DateTimeField(_("offered"), default=clock.now, editable=False)
    expires_at = models.DateTimeField(_("held until"))
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    offered_by_name = models.CharField(_("offered by"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("waitlist offer")
        verbose_name_plural = _("waitlist offers")
        ordering = ["-offered_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment"],
                condition=Q(state="open"),
                name="one_open_offer_per_enrollment",
            )
        ]
        indexes = [models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.enrollment}: {self.get_state_display()}"


def local_datetime(day: date, at, zone) -> datetime:
    """A wall-clock time on a day in the provider's zone (DST-aware), as aware datetime."""
    return datetime.combine(day, at).replace(tzinfo=zone)


def weekly_dates(start: date, end: date, weekday: int):
    day = start + timedelta(days=(weekday - start.weekday()) % 7)
    while day <= end:
        yield day
        day += timedelta(days=7)
