"""Providers live in the public schema: one row (and one PostgreSQL schema) per
swim school, gym, studio or club. Everything a parent sees is inside that
schema; this table only says who the provider is, how it looks and which
features it has switched on."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal
from functools import cached_property
from typing import Any

from babel import Locale
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from portal import clock
from portal.middleware import host_key
from portal.models import AppendOnly, append_only
from portal.theme import Theme
from portal.validators import validate_country_code

from .branding import validate_embed_origins

colour_validator = RegexValidator(
    r"^#[0-9a-fA-F]{6}$", _("Enter a colour as # followed by six hex digits, e.g. #1f5fbf.")
)

CURRENCIES = [
    ("EUR", "EUR"),
    ("GBP", "GBP"),
    ("USD", "USD"),
    ("CHF", "CHF"),
    ("AUD", "AUD"),
    ("CAD", "CAD"),
    ("NZD", "NZD"),
    ("SEK", "SEK"),
    ("NOK", "NOK"),
    ("DKK", "DKK"),
    ("PLN", "PLN"),
    ("CZK", "CZK"),
]


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


class ProviderQuerySet(models.QuerySet["Provider"]):
    def real(self) -> ProviderQuerySet:
        """Providers people use: not the public schema, not the template."""
        return self.exclude(schema_name__in=["public", settings.TENANT_BASE_SCHEMA])

    def ready(self) -> ProviderQuerySet:
        """Real providers whose set-up is complete: what scheduled jobs run for."""
        return self.real().filter(status=Provider.Status.READY)

    def update(self, **kwargs: Any) -> int:
        """As QuerySet.update, and the cached host lookups of the providers
        changed are forgotten (portal.middleware.TenantMiddleware)."""
        changed = list(self.values_list("pk", flat=True))
        count = super().update(**kwargs)
        hosts_forget(changed)
        return count


class Provider(TenantMixin):
    """A provider and its settings. The schema is created and migrated when the
    row is first saved (django-tenants)."""

    class Kind(models.TextChoices):
        SWIM = "swim", _("Swim school")
        GYM = "gym", _("Gymnastics")
        DANCE = "dance", _("Dance studio")
        CLUB = "club", _("Club")
        OTHER = "other", _("Other")

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.OTHER)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="EUR")
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Ljubljana", validators=[validate_time_zone]
    )
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )
    country = models.CharField(
        _("country"),
        max_length=2,
        default="SI",
        validators=[validate_country_code],
        help_text=_("Two-letter country code; the default region for phone numbers."),
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Status(models.TextChoices):
        CREATING = "creating", _("Being set up")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Set-up failed")

    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.READY
    )
    setup_error = models.TextField(_("set-up error"), blank=True)
    first_owner_email = models.EmailField(
        _("first owner's e-mail"),
        blank=True,
        help_text=_(
            "Invited as the provider's owner once it is set up: the e-mail holds a link to "
            "choose a password for the provider's own admin. Owners invite further staff there."
        ),
    )

    # Branding
    primary_colour = models.CharField(
        _("primary colour"), max_length=7, default="#1f5fbf", validators=[colour_validator]
    )
    accent_colour = models.CharField(
        _("accent colour"), max_length=7, default="#f2a900", validators=[colour_validator]
    )
    logo = models.ImageField(_("logo"), upload_to="branding/", blank=True)
    support_email = models.EmailField(_("support e-mail"), blank=True)
    support_phone = models.CharField(_("support phone"), max_length=40, blank=True)
    website = models.URLField(_("website"), blank=True)
    cancellation_policy = models.TextField(_("cancellation policy"), blank=True)
    makeup_policy = models.TextField(_("make-up policy"), blank=True)
    payment_instructions = models.TextField(
        _("payment instructions"),
        blank=True,
        help_text=_("Shown when online payment is off: bank details and the reference to quote."),
    )
    embed_origins = models.TextField(
        _("websites allowed to embed the portal"),
        blank=True,
        help_text=_("One origin per line, e.g. https://www.example-swim.com"),
        validators=[validate_embed_origins],
    )

    # Who issues the invoices (EU invoices name the supplier as registered) and their tax.
    legal_name = models.CharField(
        _("registered name"),
        max_length=200,
        blank=True,
        help_text=_("As registered, for invoices (e.g. Aqua Kids d.o.o.); the name if empty."),
    )
    legal_address = models.TextField(
        _("registered address"), blank=True, help_text=_("Printed on invoices.")
    )
    tax_number = models.CharField(
        _("VAT or tax number"),
        max_length=40,
        blank=True,
        help_text=_("Printed on invoices, e.g. SI12345678."),
    )
    charges_vat = models.BooleanField(
        _("charges VAT"),
        default=False,
        help_text=_("Invoices show net, VAT per rate and gross."),
    )
    vat_rate = models.DecimalField(
        _("standard VAT rate (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("For what has no rate of its own; a programme may set its own rate."),
    )
    prices_include_vat = models.BooleanField(
        _("prices include VAT"),
        default=True,
        help_text=_("If not, VAT is added to the prices when an order is made."),
    )

    # Feature switches (seed documents). A switched-off feature is hidden and its URLs refuse.
    online_payments = models.BooleanField(_("online payments"), default=False)
    echecks_enabled = models.BooleanField(
        _("bank account payments (e-checks)"),
        default=False,
        help_text=_(
            "SEPA Direct Debit: parents pay from a bank account, once or as a saved "
            "method. Payments take a few days to clear."
        ),
    )
    require_recurring_authorisation = models.BooleanField(
        _("require saved payment methods authorised for recurring billing"), default=False
    )
    invoices_enabled = models.BooleanField(_("invoices in the portal"), default=True)
    full_ledger_history = models.BooleanField(
        _("full ledger history"),
        default=False,
        help_text=_("Parents may choose a date range; otherwise ledgers cover the last 30 days."),
    )
    makeup_tokens_enabled = models.BooleanField(_("make-up tokens"), default=False)
    makeup_requests_enabled = models.BooleanField(
        _("parents may request make-up enrolments"), default=False
    )
    cancel_waitlist_enabled = models.BooleanField(_("parents may leave a waitlist"), default=True)
    drop_enabled = models.BooleanField(_("parents may drop enrolments"), default=False)
    transfer_enabled = models.BooleanField(_("parents may transfer enrolments"), default=False)
    future_absences_enabled = models.BooleanField(_("future absences"), default=True)
    qr_codes_enabled = models.BooleanField(_("QR codes for check-in"), default=False)
    pass_redemption_enabled = models.BooleanField(
        _("parents may redeem punch passes in the portal"), default=False
    )
    livestream_enabled = models.BooleanField(_("livestream links"), default=False)
    waitlist_offer_hours = models.PositiveSmallIntegerField(
        _("a place offered from the waitlist is held for (hours)"),
        default=48,
        help_text=_("Then the offer lapses and the next child in line is offered the place."),
    )

    # Make-up and expiry rules
    makeup_token_days = models.PositiveSmallIntegerField(
        _("make-up tokens are valid for (days)"), default=60
    )
    makeup_notice_hours = models.PositiveSmallIntegerField(
        _("an absence reported this many hours ahead earns a token"), default=24
    )
    makeup_booking_window_hours = models.PositiveSmallIntegerField(
        _("make-up booking closes this many hours before the session"), default=2
    )
    absence_max_weeks = models.PositiveSmallIntegerField(
        _("parents may report absences up to this many weeks ahead"),
        default=8,
        validators=[MinValueValidator(1)],
        help_text=_("Staff may record longer absences."),
    )
    absence_until_term_end = models.BooleanField(
        _("absences may reach to the end of the class's term"),
        default=False,
        help_text=_("Even when the term ends later than the weeks above."),
    )
    expiry_reminder_days = models.PositiveSmallIntegerField(
        _("remind families this many days before a token, pass or credit expires"),
        default=7,
        help_text=_("0: no reminders."),
    )

    auto_create_schema = True
    auto_drop_schema = False

    objects = ProviderQuerySet.as_manager()

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.schema_name:
            self.schema_name = self.slug.replace("-", "_")
        super().save(*args, **kwargs)

    def create_schema(
        self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1
    ) -> bool | None:
        """The template is migrated; every other provider's schema is made
        from the models' DDL in one transaction (providers/schema.py)."""
        from django_tenants.utils import schema_exists

        from .schema import schema_create

        template = settings.TENANT_BASE_SCHEMA
        if self.schema_name == template or not sync_schema or not schema_exists(template):
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        schema_create(self.schema_name)
        return True

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"

    @property
    def is_template(self) -> bool:
        return self.schema_name == settings.TENANT_BASE_SCHEMA

    @cached_property
    def theme(self) -> Theme:
        return Theme.from_colours(self.primary_colour, self.accent_colour)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def locale(self) -> str:
        """Babel locale for money and dates: language plus the provider's country."""
        language = self.language.split("-")[0]
        try:
            return str(Locale.parse(f"{language}_{self.country}"))
        except (ValueError, LookupError):
            return language

    @property
    def echecks_unavailable_reason(self) -> str:
        """Why bank account payments cannot be switched on ("" when they can):
        they are SEPA Direct Debit, which collects euros only."""
        if self.currency != "EUR":
            return str(
                _(
                    "Bank account payments are SEPA Direct Debit, which collects euros "
                    "only; this provider charges in %(currency)s."
                )
                % {"currency": self.currency}
            )
        return ""

    @property
    def echecks_active(self) -> bool:
        return self.echecks_enabled and not self.echecks_unavailable_reason

    def clean(self) -> None:
        super().clean()
        if self.echecks_enabled and self.echecks_unavailable_reason:
            raise ValidationError({"echecks_enabled": self.echecks_unavailable_reason})

    @property
    def makeups_enabled(self) -> bool:
        return self.makeup_tokens_enabled or self.makeup_requests_enabled

    @property
    def allowed_frame_origins(self) -> list[str]:
        return [line.strip() for line in self.embed_origins.splitlines() if line.strip()]

    def absolute_url(self, path: str) -> str:
        """A link to `path` on the provider's primary host, for e-mails sent
        without a request (PORTAL_LINK_SCHEME, PORTAL_LINK_PORT)."""
        host = (
            Domain.objects.filter(tenant=self)
            .order_by("-is_primary", "pk")
            .values_list("domain", flat=True)
            .first()
        )
        return f"{settings.PORTAL_LINK_SCHEME}://{host}{settings.PORTAL_LINK_PORT}{path}"


class Domain(DomainMixin):
    """A host name that routes to a provider."""

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")

    def __str__(self) -> str:
        return self.domain


def hosts_forget(provider_ids: list[int], *extra_hosts: str) -> None:
    """Forget the cached host name lookups of these providers (one query), now
    and again after the transaction commits (a request in between may have
    cached the old row). Called on every provider or domain change
    (providers/signals.py, ProviderQuerySet.update)."""
    hosts = list(Domain.objects.filter(tenant_id__in=provider_ids).values_list("domain", flat=True))
    keys = [host_key(host) for host in [*hosts, *extra_hosts]]
    if keys:
        caches["hosts"].delete_many(keys)
        transaction.on_commit(lambda: caches["hosts"].delete_many(keys))


class SettingsChange(AppendOnly):
    """Who changed which provider setting, from what to what."""

    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="settings_changes"
    )
    changed_by = models.CharField(_("changed by"), max_length=254)
    field = models.CharField(_("setting"), max_length=64)
    old = models.TextField(_("from"), blank=True)
    new = models.TextField(_("to"), blank=True)
    at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = _("settings change")
        verbose_name_plural = _("settings changes")
        ordering = ["-at", "-pk"]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.field}: {self.old} → {self.new}"


class PolicyVersion(AppendOnly):
    """The make-up policy as parents were shown it: the provider's own text
    and the sentences generated from its rules (providers.services
    policy_sentences), frozen when published. A settings change that changes
    either publishes the next number; registration records the number a
    family accepted."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="policy_versions")
    number = models.PositiveIntegerField(_("version"))
    own_text = models.TextField(_("the provider's text"), blank=True)
    rules_text = models.TextField(_("from the rules"), blank=True)
    published_at = models.DateTimeField(_("published"), default=clock.now, editable=False)
    published_by = models.CharField(_("published by"), max_length=254)

    class Meta:
        verbose_name = _("make-up policy version")
        verbose_name_plural = _("make-up policy versions")
        ordering = ["provider", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "number"], name="one_policy_per_number")
        ]
        triggers = [append_only()]

    def __str__(self) -> str:
        return f"{self.provider}: {self.number}"

    @property
    def text(self) -> str:
        """The whole policy, as shown: the provider's text, then the rules."""
        return "\n\n".join(part for part in (self.own_text, self.rules_text) if part)


class FramingAttempt(models.Model):
    """A website that put the portal in a frame and was refused (it is not
    among the provider's allowed websites): shown to staff on the embed page
    with a one-click "allow". Counted, not logged per request: the middleware
    writes at most once a minute per website (providers.middleware)."""

    provider = models.ForeignKey(
        Provider, on_delete=models.CASCADE, related_name="framing_attempts"
    )
    origin = models.CharField(_("website"), max_length=255)
    first_seen = models.DateTimeField(_("first seen"), default=clock.now, editable=False)
    last_seen = models.DateTimeField(_("last seen"), default=clock.now, editable=False)
    count = models.PositiveIntegerField(_("times seen"), default=1)

    class Meta:
        verbose_name = _("refused framing attempt")
        verbose_name_plural = _("refused framing attempts")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "origin"], name="framingattempt_unique_origin"
            )
        ]

    def __str__(self) -> str:
        return self.origin
