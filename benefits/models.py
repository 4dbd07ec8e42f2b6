"""Benefits: make-up tokens and requests, passes, credits, discounts, vouchers.

Each benefit keeps its history as append-only rows; what is left (a token's
state, a pass's punches, a family's credit) is derived from that history, never
stored as an editable number. Rows are locked (SELECT ... FOR UPDATE) before
they are spent, so two requests cannot spend the same thing twice.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from enrollments.models import Enrollment, Location, Programme, Session
from families.models import Family, Student
from portal import clock, formatting
from portal.models import AppendOnly, append_only

ZERO = Decimal("0.00")


# --- Make-ups ----------------------------------------------------------------------------


class MakeupToken(models.Model):
    """A right to one make-up session. Its state comes from its events."""

    class Reason(models.TextChoices):
        ABSENCE = "absence", _("Absence reported in advance")
        CANCELLED = "cancelled", _("Session cancelled by the school")
        GOODWILL = "goodwill", _("Goodwill")
        OTHER = "other", _("Other")

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="makeup_tokens")
    location = models.ForeignKey(
        Location,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Where it can be used; empty: at any location."),
    )
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)
    source_session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    expires_on = models.DateField(_("expires on"))
    issued_at = models.DateTimeField(default=clock.now, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    # Not stored: benefits.selectors sets these on the tokens it lists.
    state: str
    applied: TokenEvent | None
    advice: str  # what to do when it cannot be used or expires soon (token_advice)

    class Meta:
        verbose_name = _("make-up token")
        verbose_name_plural = _("make-up tokens")
        ordering = ["expires_on", "pk"]
        indexes = [models.Index(fields=["expires_on"], name="token_expires_on")]
        constraints = [
            # One token per student and missed session, however often it is reported.
            models.UniqueConstraint(
                fields=["student", "source_session"],
                condition=Q(source_session__isnull=False),
                name="one_token_per_missed_session",
            )
        ]

    def __str__(self) -> str:
        return f"{self.student}: {self.get_reason_display()} ({formatting.day(self.expires_on)})"


class TokenEvent(AppendOnly):
    class Kind(models.TextChoices):
        ISSUED = "issued", _("Issued")
        APPLIED = "applied", _("Used for a make-up booking")
        RETURNED = "returned", _("Returned (booking cancelled)")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")

    token = models.ForeignKey(MakeupToken, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["at"], name="token_event_at")]
        triggers = [append_only()]

    def __str__(self) -> str:
        return self.get_kind_display()


class MakeupRequest(models.Model):
    """Request mode: a parent asks for a make-up place; staff approve or decline."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the office")
        APPROVED = "approved", _("Approved")
        DECLINED = "declined", _("Declined")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="makeup_requests")
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="makeup_requests")
    missed_session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    enrollment = models.OneToOneField(
        Enrollment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=clock.now, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(_("answer to the family"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("make-up request")
        verbose_name_plural = _("make-up requests")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "session"],
                condition=Q(status="pending"),
                name="one_pending_request_per_session",
            )
        ]

    def __str__(self) -> str:
        return f"{self.student} → {self.session}"


# --- Passes --------------------------------------------------------------------------------


class Pass(models.Model):
    """A punch card (N visits), an entry pass (one visit) or a permanent pass
    (unlimited until it expires). Punches left = the sum of its events."""

    class Kind(models.TextChoices):
        PUNCH = "punch", _("Punch card")
        ENTRY = "entry", _("Entry pass")
        PERMANENT = "permanent", _("Permanent pass")

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="passes")
    student = models.ForeignKey(
        Student, on_delete=models.PROTECT, null=True, blank=True, related_name="passes"
    )
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    programme = models.ForeignKey(
        Programme,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Valid only for this programme; empty: any."),
    )
    purchased_on = models.DateField(_("purchased on"))
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    amount_paid = models.DecimalField(
        _("amount paid"), max_digits=10, decimal_places=2, default=ZERO
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    # Not stored: benefits.selectors.pass_groups sets these on the passes it lists.
    left: int | None  # punches left; None: unlimited
    used: int  # visits
    usable: bool

    class Meta:
        verbose_name = _("pass")
        verbose_name_plural = _("passes")
        ordering = ["-purchased_on", "pk"]
        indexes = [models.Index(fields=["expires_on"], name="pass_expires_on")]

    def __str__(self) -> str:
        return self.name


class PassEvent(AppendOnly):
    class Kind(models.TextChoices):
        PURCHASED = "purchased", _("Purchased")
        PUNCH = "punch", _("Visit booked")
        RETURNED = "returned", _("Visit cancelled, punch returned")
        ADJUSTED = "adjusted", _("Adjusted by the office")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")

    pass_obj = models.ForeignKey(Pass, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    punches = models.IntegerField(default=0, help_text=_("+ adds punches, - uses them"))
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["at"], name="pass_event_at")]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.punches:+d}"


# --- Credits -------------------------------------------------------------------------------


class CreditGrant(AppendOnly):
    """Family account credit from a refund, a cancellation or goodwill."""

    class Source(models.TextChoices):
        REFUND = "refund", _("Refund")
        CANCELLATION = "cancellation", _("Cancellation")
        GOODWILL = "goodwill", _("Goodwill")
        GIFT = "gift", _("Gift voucher")
        ADJUSTMENT = "adjustment", _("Adjustment")

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="credit_grants")
    amount = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    description = models.CharField(max_length=200)
    expires_on = models.DateField(null=True, blank=True)
    granted_at = models.DateTimeField(default=clock.now, editable=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    # Not stored: benefits.selectors.credit_summary sets it on the grants it lists.
    expired: bool

    class Meta:
        verbose_name = _("credit")
        verbose_name_plural = _("credits")
        ordering = ["granted_at", "pk"]
        indexes = [
            models.Index(fields=["expires_on"], name="credit_expires_on"),
            models.Index(fields=["granted_at"], name="credit_granted_at"),
        ]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="credit_positive")]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{formatting.money(self.amount)} {self.description}"


class CreditUse(AppendOnly):
    """Credit taken from a grant: spent on something, expired or withdrawn."""

    class Kind(models.TextChoices):
        SPENT = "spent", _("Used")
        EXPIRED = "expired", _("Expired")
        WITHDRAWN = "withdrawn", _("Withdrawn by the office")

    grant = models.ForeignKey(CreditGrant, on_delete=models.PROTECT, related_name="uses")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    where = models.CharField(_("used for"), max_length=200, blank=True)
    reference = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_use_positive")
        ]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{formatting.money(-self.amount)} {self.where}"


# --- Discounts and vouchers ------------------------------------------------------------------


class Discount(models.Model):
    class Kind(models.TextChoices):
        SIBLING = "sibling", _("Sibling discount")
        MULTI_CLASS = "multi_class", _("Multi-class discount")
        PROMOTIONAL = "promotional", _("Promotion")

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="discounts")
    student = models.ForeignKey(
        Student,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="discounts",
        help_text=_("Empty: for the whole family."),
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    description = models.CharField(max_length=200)
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    max_uses = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("How many orders it reduces. Empty: unlimited.")
    )
    valid_until = models.DateField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    # The promo code it came from, if any (benefits.services.promo_code_discount).
    voucher = models.ForeignKey(
        "Voucher", on_delete=models.PROTECT, null=True, blank=True, related_name="discounts"
    )

    class Meta:
        verbose_name = _("discount")
        verbose_name_plural = _("discounts")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(percent__isnull=False) & Q(amount__isnull=True))
                | (Q(percent__isnull=True) & Q(amount__isnull=False)),
                name="discount_percent_or_amount",
            )
        ]

    def __str__(self) -> str:
        return self.description


class DiscountUse(AppendOnly):
    """One order a discount reduced (and by how much in all)."""

    discount = models.ForeignKey(Discount, on_delete=models.PROTECT, related_name="uses")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    where = models.CharField(max_length=200)
    reference = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["discount", "reference"],
                condition=~Q(reference=""),
                name="discount_used_once_per_reference",
            )
        ]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{formatting.money(self.amount)} {self.where}"


class Voucher(models.Model):
    """A code a parent redeems: a gift becomes credit, a pass voucher a pass,
    a promo code a discount. Usable `max_redemptions` times in all."""

    class Kind(models.TextChoices):
        GIFT = "gift", _("Gift voucher (credit)")
        PASS = "pass", _("Pass voucher")
        PROMO = "promo", _("Promo code (discount)")

    code = models.CharField(_("code"), max_length=40)
    kind = models.CharField(_("kind"), max_length=6, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=200)
    max_redemptions = models.PositiveIntegerField(_("times it can be used"), default=1)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    credit_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    pass_kind = models.CharField(max_length=10, choices=Pass.Kind.choices, blank=True)
    pass_punches = models.PositiveIntegerField(null=True, blank=True)
    pass_valid_days = models.PositiveIntegerField(null=True, blank=True)
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    discount_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    discount_uses = models.PositiveIntegerField(
        _("orders a promo code reduces"),
        default=1,
        help_text=_("Per family: 1 is the next order (one period)."),
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        constraints = [models.UniqueConstraint(Lower("code"), name="voucher_code_unique_ci")]

    def __str__(self) -> str:
        return self.code


class VoucherRedemption(AppendOnly):
    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="redemptions")
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField(default=clock.now, editable=False)
    result = models.CharField(max_length=200)

    class Meta:
        ordering = ["at"]
        constraints = [
            models.UniqueConstraint(fields=["voucher", "family"], name="voucher_once_per_family")
        ]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.voucher} by {self.family}"


class ReminderSent(models.Model):
    """So an expiry reminder goes out once per benefit."""

    kind = models.CharField(max_length=10)
    object_id = models.PositiveBigIntegerField()
    sent_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="reminder_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}"


class ExpiryCheckpoint(models.Model):
    """Where the hourly expiry job left off in this provider: the next run
    looks only at what lapsed on or after `day` and at what had an event
    since `started_at` (a token given back after its expiry, a benefit
    created already lapsed), never at the whole history
    (benefits.services.expire_lapsed). One row per job."""

    job = models.CharField(max_length=20, unique=True)
    day = models.DateField()
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.job}: {self.day}"
