"""Orders, the ledger, payments, invoices and documents.

The ledger is append-only: every charge, payment, refund, credit application
and adjustment is one signed entry from the family's point of view (a charge
adds to what they owe, a payment takes it away). What a family owes, an
order's status and the last payment are all derived from the entries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from benefits.models import Discount
from enrollments.models import Enrollment, Location
from families.models import Family, Guardian, Student
from portal import clock, formatting
from portal.models import AppendOnly, append_only

if TYPE_CHECKING:
    from .selectors import OrderStatus

ZERO = Decimal("0.00")


class Order(models.Model):
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="orders")
    student = models.ForeignKey(
        Student, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    # Set once, by billing.services.order_cancel (with a credit note).
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancel_reason = models.CharField(
        _("reason for cancelling"), max_length=200, blank=True, editable=False
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # One promo code per order: the promotional discount that reduced it.
    promo = models.ForeignKey(
        Discount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("promo code"),
    )

    # Not stored: billing.selectors sets it on the orders it lists.
    status: OrderStatus  # selectors.order_status

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"#{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"{self.pk:05d}" if self.pk else ""


class OrderLine(models.Model):
    class Kind(models.TextChoices):
        ENROLLMENT = "enrollment", _("Enrolment fee")
        REGISTRATION = "registration", _("Registration")
        PASS = "pass", _("Pass")
        DISCOUNT = "discount", _("Discount")
        OTHER = "other", _("Other")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    # A percentage (22.00), copied from the programme when the line is made; the
    # invoice groups its lines by rate.
    vat_rate = models.DecimalField(_("VAT rate (%)"), max_digits=5, decimal_places=2, default=ZERO)
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A discount line (kind DISCOUNT, negative price): which discount, and the
    # line it reduces (billing/pricing.py says how much).
    discount = models.ForeignKey(
        Discount, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reduces = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reductions"
    )

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="discount", unit_price__lte=0, reduces__isnull=False)
                | (~Q(kind="discount") & Q(unit_price__gte=0)),
                name="discount_lines_reduce_a_line",
            )
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


class LedgerEntry(AppendOnly):
    class Kind(models.TextChoices):
        CHARGE = "charge", _("Charge")
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        CREDIT = "credit", _("Credit applied")
        ADJUSTMENT = "adjustment", _("Adjustment")
        CREDIT_NOTE = "credit_note", _("Credit note")
        TO_CREDIT = "to_credit", _("Moved to family credit")
        DISCOUNT = "discount", _("Discount")

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="ledger")
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, help_text=_("+ the family owes more, - less")
    )
    description = models.CharField(max_length=200)
    payment = models.ForeignKey(
        "Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    refund = models.OneToOneField(
        "Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="entry"
    )
    credit_note = models.OneToOneField(
        "CreditNote", on_delete=models.PROTECT, null=True, blank=True, related_name="entry"
    )
    reference = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)
    # PROTECT: deleting a login must not rewrite the ledger (staff deactivate logins).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who it was as they were named then (a login renamed or removed later
    # leaves the entry as it was): families.actors.actor_name.
    actor_name = models.CharField(_("by"), max_length=200, blank=True)

    # Not stored: billing.selectors.ledger_lines sets the balance after each entry.
    running: Decimal

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["family", "at"])]
        constraints = [
            # A payment is booked in the ledger once, however often Stripe tells us.
            models.UniqueConstraint(
                fields=["payment"], condition=Q(kind="payment"), name="payment_booked_once"
            ),
            models.UniqueConstraint(
                fields=["family", "reference"],
                condition=~Q(reference=""),
                name="ledger_reference_once",
            ),
        ]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {formatting.money(self.amount)}"


class StripeCustomer(models.Model):
    guardian = models.OneToOneField(Guardian, on_delete=models.CASCADE, related_name="stripe")
    stripe_customer_id = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.stripe_customer_id


class PaymentMethod(models.Model):
    """A card or bank account saved with Stripe; we keep only what is shown.
    It belongs to the guardian who saved it: only they pay with it, change it
    or delete it (the family's other guardians see it, read-only). Each sits
    in one of its guardian's three slots, so PostgreSQL itself refuses a
    fourth, whatever races; at most one of them is primary."""

    MAX_PER_GUARDIAN = 3

    class Kind(models.TextChoices):
        CARD = "card", _("Card")
        BANK = "bank", _("Bank account")

    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="payment_methods")
    stripe_payment_method_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.CARD)
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    is_primary = models.BooleanField(_("primary"), default=False)
    recurring_authorized = models.BooleanField(_("authorised for recurring billing"), default=False)
    slot = models.PositiveSmallIntegerField(editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-is_primary", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["guardian"], condition=Q(is_primary=True), name="one_primary_method"
            ),
            models.UniqueConstraint(fields=["guardian", "slot"], name="one_method_per_slot"),
            models.CheckConstraint(
                condition=Q(slot__gte=1) & Q(slot__lte=3), name="at_most_three_methods"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand or self.get_kind_display()} •••• {self.last4}"


class Payment(models.Model):
    """One attempt to pay: its state only moves forward."""

    class Method(models.TextChoices):
        CARD = "card", _("Card")
        OFFLINE = "offline", _("Paid at the office")
        BANK = "bank", _("Bank transfer")
        CASH = "cash", _("Cash at the desk")
        DESK_CARD = "desk_card", _("Card at the desk")
        SEPA = "sepa", _("Bank account (SEPA Direct Debit)")

    class Status(models.TextChoices):
        PROCESSING = "processing", _("Processing")
        REQUIRES_ACTION = "requires_action", _("Waiting for your bank")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="payments")
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    payer = models.ForeignKey(
        Guardian, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    method = models.CharField(max_length=12, choices=Method.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    idempotency_key = models.CharField(max_length=80, unique=True)
    # The key of every PaymentIntent create sent for this payment, and the
    # parameters sent with it: a retry after a timeout and reconciliation send
    # exactly the same request again, and Stripe answers it once.
    stripe_idempotency_key = models.CharField(max_length=120, blank=True)
    stripe_request = models.JSONField(default=dict, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    client_secret = models.CharField(max_length=200, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    decline_code = models.CharField(
        _("decline code"),
        max_length=60,
        blank=True,
        help_text=_("Stripe's reason, for staff (the parent sees the message)."),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    # Money taken at the desk or by bank transfer, recorded by staff.
    DESK_METHODS = (Method.CASH, Method.DESK_CARD, Method.BANK, Method.OFFLINE)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{formatting.money(self.amount)} {self.get_status_display()}"

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def in_progress(self) -> bool:
        return self.status in (self.Status.PROCESSING, self.Status.REQUIRES_ACTION)


class RefundRequest(models.Model):
    """What staff asked to give back from a payment. While Stripe has not
    answered, it holds its amount against the payment (two refunds racing can
    never give back more than was paid); its state only moves forward, from
    pending to succeeded (a Refund is booked) or failed (nothing was)."""

    class Meaning(models.TextChoices):
        CREDIT_NOTE = "credit_note", _("Reduce the charge (credit note)")
        STILL_OWED = "still_owed", _("Money back, the amount is still owed")

    class Method(models.TextChoices):
        CARD = "card", _("Back to the card")
        DESK = "desk", _("Paid back at the desk")
        BANK = "bank", _("By bank transfer")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for Stripe")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refund_requests")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=200)
    meaning = models.CharField(max_length=12, choices=Meaning.choices)
    method = models.CharField(max_length=5, choices=Method.choices)
    key = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    stripe_refund_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    settled_at = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_request_positive")
        ]

    def __str__(self) -> str:
        return f"{self.amount} ({self.get_status_display()})"


class Refund(AppendOnly):
    """Money given back, booked once its outcome is known: written once and
    never changed (a refund Stripe's dashboard made has no request)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=200)
    method = models.CharField(
        max_length=5, choices=RefundRequest.Method.choices, default=RefundRequest.Method.CARD
    )
    request = models.OneToOneField(
        RefundRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="refund"
    )
    stripe_refund_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_positive")]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{formatting.money(self.amount)} ({self.reason})"


class StripeEvent(models.Model):
    """Each webhook event once: stored before it is acted on."""

    event_id = models.CharField(max_length=80, unique=True)
    type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80, blank=True)
    received_at = models.DateTimeField(default=clock.now, editable=False)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class NumberSequence(models.Model):
    """Gapless numbers (invoices): the row is locked while a number is taken,
    in the same transaction that uses it."""

    name = models.CharField(max_length=20, unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last}"


class Invoice(models.Model):
    """Issued once per order, with a snapshot of what it said at the time."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    number = models.PositiveIntegerField(unique=True)
    issued_at = models.DateTimeField(default=clock.now, editable=False)
    snapshot = models.JSONField()

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"INV-{self.number:06d}"


class CreditNote(AppendOnly):
    """A numbered document that reduces an order's charge (a return, a
    cancellation, a refund that reduces the charge). It refers to the order's
    invoice and keeps a snapshot of what it said when issued; its ledger
    entry reduces what the order owes. Numbers have their own gapless
    sequence."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.PositiveIntegerField(unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=200)
    issued_at = models.DateTimeField(default=clock.now, editable=False)
    snapshot = models.JSONField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("credit note")
        verbose_name_plural = _("credit notes")
        ordering = ["-number"]
        triggers = [append_only()]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_positive")
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"CN-{self.number:06d}"


class Document(models.Model):
    """A PDF made in the background: a statement, a ledger report or an invoice."""

    class Kind(models.TextChoices):
        STATEMENT = "statement", _("Statement")
        LEDGER = "ledger", _("Ledger report")
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Being prepared")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to="documents/", blank=True)
    error = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {formatting.moment(self.created_at)}"


class Finding(AppendOnly):
    """Something the books' checks found for staff to look at: a payment that
    reconciliation settled or cancelled, a webhook whose amount did not match
    its order, an invariant of the ledger that does not hold."""

    class Source(models.TextChoices):
        RECONCILIATION = "reconciliation", _("Reconciliation with Stripe")
        WEBHOOK = "webhook", _("Stripe event")
        CHECK = "check", _("Ledger check")

    class Severity(models.TextChoices):
        INFO = "info", _("For information")
        PROBLEM = "problem", _("Needs a look")

    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    severity = models.CharField(
        _("severity"), max_length=8, choices=Severity.choices, default=Severity.PROBLEM
    )
    code = models.CharField(_("code"), max_length=40)
    message = models.CharField(_("what was found"), max_length=500)
    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="findings"
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="findings"
    )
    at = models.DateTimeField(_("found"), default=clock.now, editable=False)

    class Meta:
        verbose_name = _("finding")
        verbose_name_plural = _("findings")
        ordering = ["-at", "-pk"]
        triggers = [append_only()]

    def __str__(self) -> str:
        return self.message
