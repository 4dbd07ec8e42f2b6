"""A family is the unit a parent account sees: its guardians and students.
Every parent-facing lookup is scoped by the logged-in guardian's family."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from accounts.emails import normalise
from portal import clock, formatting
from portal.models import AppendOnly, append_only
from portal.validators import validate_country_code, validate_plain_name

# Long free text is bounded (forms show a counter; the model checks it too).
MEDICAL_NOTES_MAX = 1000
REPORT_TEXT_MAX = 2000

# Avatar colours for children; each carries white text at 4.5:1 or more.
AVATAR_COLOURS = ["#1d6b4f", "#7b3fa0", "#b3261e", "#0b6e99", "#8a5300", "#3f51b5", "#ad1457"]


class Family(models.Model):
    name = models.CharField(_("family name"), max_length=120, validators=[validate_plain_name])
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("family")
        verbose_name_plural = _("families")
        ordering = ["name", "pk"]
        permissions = [("view_as_family", _("Can view the portal as the family sees it"))]

    def __str__(self) -> str:
        return self.name


class Guardian(models.Model):
    """A parent or other responsible adult. The primary guardian manages the
    others and grants them permissions; a guardian without a user cannot log in."""

    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="guardians")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="guardian",
    )
    first_name = models.CharField(_("first name"), max_length=80, validators=[validate_plain_name])
    last_name = models.CharField(_("last name"), max_length=80, validators=[validate_plain_name])
    is_primary = models.BooleanField(_("primary guardian"), default=False)
    can_pay = models.BooleanField(_("may pay"), default=False)
    can_edit_students = models.BooleanField(_("may edit students"), default=False)
    can_manage_enrollments = models.BooleanField(_("may manage enrolments"), default=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("guardian")
        verbose_name_plural = _("guardians")
        ordering = ["-is_primary", "first_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["family"],
                condition=models.Q(is_primary=True),
                name="one_primary_guardian_per_family",
            )
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def may_pay(self) -> bool:
        return self.is_primary or self.can_pay

    @property
    def may_edit_students(self) -> bool:
        return self.is_primary or self.can_edit_students

    @property
    def may_manage_enrollments(self) -> bool:
        return self.is_primary or self.can_manage_enrollments


class Student(models.Model):
    class Gender(models.TextChoices):
        FEMALE = "f", _("Female")
        MALE = "m", _("Male")
        OTHER = "x", _("Other")

    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="students")
    first_name = models.CharField(_("first name"), max_length=80, validators=[validate_plain_name])
    last_name = models.CharField(_("last name"), max_length=80, validators=[validate_plain_name])
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True)
    medical_notes = models.TextField(
        _("medical or allergy notes"),
        blank=True,
        max_length=MEDICAL_NOTES_MAX,
        validators=[MaxLengthValidator(MEDICAL_NOTES_MAX)],
    )
    colour = models.CharField(_("colour"), max_length=7, blank=True)
    photo = models.ImageField(_("photo"), upload_to="students/", blank=True)
    # Opaque code in the check-in QR code (never the database id); made on first use.
    checkin_token = models.CharField(max_length=43, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("student")
        verbose_name_plural = _("students")
        ordering = ["date_of_birth", "first_name", "pk"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def initials(self) -> str:
        return (self.first_name[:1] + self.last_name[:1]).upper()

    @property
    def avatar_colour(self) -> str:
        return self.colour or AVATAR_COLOURS[(self.pk or 0) % len(AVATAR_COLOURS)]


class Invitation(models.Model):
    """A signed, single-use, expiring link that lets a guardian set a password
    and log in. Sending again supersedes the previous link."""

    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail address"))
    nonce = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    expires_at = models.DateTimeField()
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-pk"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"{self.guardian} <{self.email}>"


class ContactEmail(models.Model):
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="emails")
    guardian = models.ForeignKey(
        Guardian, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    email = models.EmailField(_("e-mail address"))
    blasts_opt_out = models.BooleanField(
        _("unsubscribed from e-mail blasts"),
        default=False,
        help_text=_("Receipts and account e-mails are still sent."),
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("e-mail address")
        verbose_name_plural = _("e-mail addresses")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["family", "email"], name="email_once_per_family")
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_login(self) -> bool:
        user = self.guardian.user if self.guardian_id and self.guardian else None
        return bool(user and user.email == normalise(self.email))


class ContactPhone(models.Model):
    class Kind(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        HOME = "home", _("Home")
        WORK = "work", _("Work")

    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="phones")
    guardian = models.ForeignKey(
        Guardian, on_delete=models.SET_NULL, null=True, blank=True, related_name="phones"
    )
    number = PhoneNumberField(_("phone number"))
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.MOBILE)
    sms_opt_out = models.BooleanField(_("unsubscribed from SMS and voice messages"), default=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("phone number")
        verbose_name_plural = _("phone numbers")
        ordering = ["pk"]

    def __str__(self) -> str:
        return str(self.number)


class MailingAddress(models.Model):
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="addresses")
    guardian = models.ForeignKey(
        Guardian, on_delete=models.SET_NULL, null=True, blank=True, related_name="addresses"
    )
    line1 = models.CharField(_("address"), max_length=120)
    line2 = models.CharField(_("address line 2"), max_length=120, blank=True)
    city = models.CharField(_("town or city"), max_length=80)
    postcode = models.CharField(_("postcode"), max_length=20)
    region = models.CharField(_("region"), max_length=80, blank=True)
    country = models.CharField(
        _("country"), max_length=2, blank=True, validators=[validate_country_code]
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("mailing address")
        verbose_name_plural = _("mailing addresses")
        ordering = ["pk"]

    def __str__(self) -> str:
        return ", ".join(p for p in [self.line1, self.line2, f"{self.postcode} {self.city}"] if p)


class FamilyNote(AppendOnly):
    """What the office wants to remember about a family (staff only; never
    shown to the family). Notes are kept: a correction is a new note."""

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="notes")
    text = models.TextField(_("note"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    author_name = models.CharField(_("by"), max_length=200)
    at = models.DateTimeField(_("written"), default=clock.now, editable=False)

    class Meta:
        verbose_name = _("staff note")
        verbose_name_plural = _("staff notes")
        ordering = ["-at", "-pk"]
        triggers = [append_only()]

    def __str__(self) -> str:
        return self.text[:60]


class StaffView(AppendOnly):
    """Every time staff open the portal as a family (read-only), for the record."""

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="staff_views")
    at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("staff view as family")
        verbose_name_plural = _("staff views as family")
        ordering = ["-at"]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.staff} → {self.family}"


class ProblemReport(models.Model):
    """ "Report a problem": what the parent clicked and expected, with the page,
    child, browser and time filled in for them."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    family = models.ForeignKey(
        Family, on_delete=models.SET_NULL, null=True, blank=True, related_name="problem_reports"
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    page = models.CharField(_("page"), max_length=500)
    focused_child = models.ForeignKey(
        Student, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    clicked = models.TextField(
        _("what did you click or do?"),
        max_length=REPORT_TEXT_MAX,
        validators=[MaxLengthValidator(REPORT_TEXT_MAX)],
    )
    expected = models.TextField(
        _("what did you expect to happen?"),
        max_length=REPORT_TEXT_MAX,
        validators=[MaxLengthValidator(REPORT_TEXT_MAX)],
    )
    screenshot = models.ImageField(_("screenshot"), upload_to="problem-reports/", blank=True)
    user_agent = models.CharField(_("browser"), max_length=400, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.NEW
    )
    answer = models.TextField(
        _("answer to the family"),
        blank=True,
        help_text=_("E-mailed to the family when saved, and shown in their portal."),
    )
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by_name = models.CharField(_("answered by"), max_length=254, blank=True)
    staff_note = models.TextField(
        _("internal notes"),
        blank=True,
        help_text=_("For the office only: never shown to the family."),
    )

    class Meta:
        verbose_name = _("problem report")
        verbose_name_plural = _("problem reports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{formatting.moment(self.created_at)} {self.page}"


class FamilyChange(models.Model):
    """A change to data a family sees, recorded by database triggers
    (families/changes.py); family 0 means every family."""

    family_id = models.BigIntegerField()
    at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["family_id", "-id"], name="familychange_latest")]

    def __str__(self) -> str:
        return f"change {self.pk} for family {self.family_id}"
