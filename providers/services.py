"""Creating providers. Saving a Provider creates and migrates its schema
(django-tenants); the Domain rows route host names to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import translation
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context, schema_exists, tenant_context

from accounts import roles
from accounts import services as account_services
from accounts.emails import normalise
from accounts.models import User
from portal import clock
from portal.exceptions import PortalError
from portal.tenancy import use_public_schema

from .branding import origins_clean
from .models import CURRENCIES, Domain, FramingAttempt, PolicyVersion, Provider, SettingsChange


class ProviderError(PortalError):
    pass


def template_ensure() -> None:
    """The migrated template schema new providers are cloned from. It is a
    provider row without domains (so `migrate_schemas` keeps it current) and
    is never routed to; made on first need."""
    if Provider.objects.filter(schema_name=settings.TENANT_BASE_SCHEMA).exists():
        return
    template = Provider(
        schema_name=settings.TENANT_BASE_SCHEMA,
        slug=settings.TENANT_BASE_SCHEMA.replace("_", "-"),
        name="Template for new providers",
    )
    template.save(verbosity=0)
    use_public_schema()


def provider_create(*, slug: str, name: str, domains: list[str], **fields: Any) -> Provider:
    """Create the provider, its schema and its domains (the first is primary)."""
    template_ensure()
    provider = Provider(slug=slug, schema_name=slug.replace("-", "_"), name=name, **fields)
    provider.full_clean()
    provider.save(verbosity=0)
    with transaction.atomic():
        for index, domain in enumerate(domains):
            Domain.objects.create(tenant=provider, domain=domain.lower(), is_primary=index == 0)
        policy_publish(provider=provider, published_by="set-up")
    return provider


def staff_user_ensure(
    *, provider: Provider, email: str, password: str, full_name: str, role: str = roles.OWNER
) -> User:
    """A provider staff login (admin on the provider's host) with this role,
    created if missing. Never a superuser: the owner role holds every
    permission."""
    with schema_context(provider.schema_name):
        user = User.objects.filter(email=normalise(email)).first()
        if user is None:
            user = User.objects.create_user(email, password, full_name=full_name, is_staff=True)
            user.groups.add(Group.objects.get(name=role))
        return user


def default_domain(slug: str) -> str:
    return f"{slug}.{settings.PORTAL_BASE_DOMAIN}"


def provider_setup(
    *, provider_id: int, link_scheme: str = "https", link_port: str = ""
) -> Provider:
    """Create and migrate the schema of a provider saved with status
    "creating" (the platform admin does this through Celery). The provider row
    is locked for the whole set-up, so a second run waits and then finds it
    done. The schema is made inside a savepoint: on failure PostgreSQL undoes
    it, the domains are removed and the provider is marked failed with the
    reason: nothing half-made is reachable. A ready provider answers on its
    default host (<slug>.<PORTAL_BASE_DOMAIN>) when no other was given, and
    its first owner is e-mailed an invitation (its link goes to the primary
    host, with the scheme and port the platform admin was reached on)."""
    template_ensure()
    with transaction.atomic():
        provider = Provider.objects.select_for_update().get(pk=provider_id)
        if provider.status != Provider.Status.CREATING:
            return provider
        try:
            with transaction.atomic():
                if schema_exists(provider.schema_name):
                    raise RuntimeError(f"a schema named {provider.schema_name!r} exists already")
                provider.create_schema(check_if_exists=False, verbosity=0)
                if not Domain.objects.filter(tenant=provider).exists():
                    Domain.objects.create(
                        tenant=provider, domain=default_domain(provider.slug), is_primary=True
                    )
                if provider.first_owner_email:
                    host = (
                        Domain.objects.filter(tenant=provider)
                        .order_by("-is_primary", "pk")
                        .values_list("domain", flat=True)[0]
                    )
                    with tenant_context(provider):
                        account_services.owner_invite(
                            email=provider.first_owner_email,
                            base_url=f"{link_scheme}://{host}{link_port}",
                        )
        except Exception as error:
            Domain.objects.filter(tenant=provider).delete()
            provider.status = Provider.Status.FAILED
            provider.setup_error = f"{type(error).__name__}: {error}"[:2000]
        else:
            provider.status = Provider.Status.READY
            provider.setup_error = ""
        use_public_schema()
        Provider.objects.filter(pk=provider.pk).update(
            status=provider.status, setup_error=provider.setup_error
        )
    return Provider.objects.get(pk=provider_id)


SETTINGS_FIELDS = [
    "name",
    "primary_colour",
    "accent_colour",
    "support_email",
    "support_phone",
    "website",
    "cancellation_policy",
    "makeup_policy",
    "payment_instructions",
    "legal_name",
    "legal_address",
    "tax_number",
    "charges_vat",
    "vat_rate",
    "prices_include_vat",
    "embed_origins",
    "online_payments",
    "echecks_enabled",
    "require_recurring_authorisation",
    "invoices_enabled",
    "full_ledger_history",
    "makeup_tokens_enabled",
    "makeup_requests_enabled",
    "cancel_waitlist_enabled",
    "drop_enabled",
    "transfer_enabled",
    "future_absences_enabled",
    "qr_codes_enabled",
    "pass_redemption_enabled",
    "livestream_enabled",
    "makeup_token_days",
    "makeup_notice_hours",
    "makeup_booking_window_hours",
    "absence_max_weeks",
    "absence_until_term_end",
    "expiry_reminder_days",
]


def provider_settings_update(
    *, provider: Provider, changes: Mapping[str, object], changed_by: str
) -> list[SettingsChange]:
    """Save settings and record each change (who, what, from, to)."""
    recorded: list[SettingsChange] = []
    with transaction.atomic():
        locked = Provider.objects.select_for_update().get(pk=provider.pk)
        for field, value in changes.items():
            if field not in SETTINGS_FIELDS:
                raise ValueError(f"{field} is not a provider setting")
            old = getattr(locked, field)
            if isinstance(value, str):
                # Browsers send a text area's lines ending in CRLF: the same text.
                value = value.replace("\r\n", "\n")
            if old != value:
                setattr(locked, field, value)
                recorded.append(
                    SettingsChange(
                        provider=locked,
                        changed_by=changed_by,
                        field=field,
                        old=str(old),
                        new=str(value),
                    )
                )
        locked.full_clean()
        locked.save()
        SettingsChange.objects.bulk_create(recorded)
        if recorded:
            policy_publish(provider=locked, published_by=changed_by)
    return recorded


# --- The make-up policy ------------------------------------------------------------------
# Apps whose rules parents must know register a writer here from their
# AppConfig.ready() (benefits: make-up tokens and requests). A writer reads
# only the provider's settings and returns plain sentences in the active
# language; what it says is what its app enforces.
policy_sentence_writers: list[Callable[[Provider], list[str]]] = []


def policy_sentences(provider: Provider) -> list[str]:
    """The make-up rules in plain words, from the provider's settings, in the
    provider's language."""
    with translation.override(provider.language):
        return [str(sentence) for write in policy_sentence_writers for sentence in write(provider)]


def policy_publish(*, provider: Provider, published_by: str) -> PolicyVersion | None:
    """Publish the next version of the make-up policy when the provider's
    text or a sentence from its rules changed (None: nothing changed). Runs
    in the settings change's transaction, with the provider's row locked."""
    own_text = provider.makeup_policy.strip()
    rules_text = " ".join(policy_sentences(provider))
    with transaction.atomic():
        current = policy_current(provider=provider)
        if current is not None and (current.own_text, current.rules_text) == (own_text, rules_text):
            return None
        if current is None and not own_text and not rules_text:
            return None
        return PolicyVersion.objects.create(
            provider=provider,
            number=current.number + 1 if current else 1,
            own_text=own_text,
            rules_text=rules_text,
            published_by=published_by,
        )


def policy_current(*, provider: Provider) -> PolicyVersion | None:
    """The make-up policy parents see now (and accept at registration)."""
    return PolicyVersion.objects.filter(provider_id=provider.pk).order_by("-number").first()


# Apps that keep money register a check here from their AppConfig.ready()
# (billing: orders, payments, ledger entries); each is asked in the
# provider's schema whether it holds any.
money_held_checks: list[Callable[[], bool]] = []


def provider_holds_money(provider: Provider) -> bool:
    """Whether any order, payment or ledger entry exists at the provider:
    from then on its currency is fixed."""
    if not schema_exists(provider.schema_name):
        return False
    with tenant_context(provider):
        return any(check() for check in money_held_checks)


def provider_currency_set(
    *, provider: Provider, currency: str, changed_by: str
) -> SettingsChange | None:
    """Change the currency while no money exists yet; refused after (amounts
    already charged, paid and invoiced are in the old one). The row is locked
    first: an order being made holds it too (billing), so the check sees it."""
    if currency not in dict(CURRENCIES):
        raise ProviderError(_("Choose a currency from the list."), field="currency")
    with transaction.atomic():
        locked = Provider.objects.select_for_update().get(pk=provider.pk)
        old = locked.currency
        if old == currency:
            return None
        if provider_holds_money(locked):
            raise ProviderError(
                _(
                    "The currency is fixed at %(currency)s: orders, payments or ledger "
                    "entries exist in it."
                )
                % {"currency": old},
                field="currency",
            )
        locked.currency = currency
        try:
            locked.clean()  # the provider's own rules (bank payments collect euros only)
        except ValidationError as error:
            raise ProviderError(" ".join(error.messages), field="currency") from error
        Provider.objects.filter(pk=locked.pk).update(currency=currency)
        change = SettingsChange.objects.create(
            provider=locked, changed_by=changed_by, field="currency", old=old, new=currency
        )
    provider.currency = currency
    return change


def provider_logo_set(
    *, provider: Provider, logo: File[Any] | None, changed_by: str
) -> SettingsChange | None:
    """Replace the provider's logo (an image already checked and re-encoded:
    providers.branding.logo_clean), or remove it with `logo=None`; the change
    is recorded. The file is kept with the provider's own files, whichever
    host staff uploaded it from; the old one is removed after commit."""
    with transaction.atomic():
        locked = Provider.objects.select_for_update().get(pk=provider.pk)
        old = locked.logo.name or ""
        new = ""
        if logo is not None:
            with schema_context(locked.schema_name):
                new = default_storage.save(f"branding/{logo.name}", logo)
        if old == new:
            return None
        Provider.objects.filter(pk=locked.pk).update(logo=new)
        change = SettingsChange.objects.create(
            provider=locked, changed_by=changed_by, field="logo", old=old, new=new
        )
        if old:
            schema = locked.schema_name
            transaction.on_commit(lambda: _file_delete(schema, old))
    provider.logo.name = new
    return change


def _file_delete(schema_name: str, name: str) -> None:
    with schema_context(schema_name):
        default_storage.delete(name)


def embed_origin_allow(*, provider: Provider, origin: str, changed_by: str) -> list[SettingsChange]:
    """Add a website to those allowed to frame the portal (the embed page's
    "Allow this site"); recorded as a settings change. A website that is not
    an https origin (but for localhost) is refused: ValidationError."""
    normal = origins_clean(origin)  # refuses http:// but for localhost
    current = Provider.objects.get(pk=provider.pk).allowed_frame_origins
    if normal in current:
        return []
    return provider_settings_update(
        provider=provider,
        changes={"embed_origins": "\n".join([*current, normal])},
        changed_by=changed_by,
    )


FRAMING_ATTEMPTS_KEPT = 100


def framing_attempt_record(*, provider_id: int, origin: str, seen: int = 1) -> None:
    """Count `seen` refused framings by `origin` (one row per website: the
    first framing inserts it, later ones add to its count)."""
    now = clock.now()
    updated = FramingAttempt.objects.filter(provider_id=provider_id, origin=origin).update(
        count=F("count") + seen, last_seen=now
    )
    if updated:
        return
    if FramingAttempt.objects.filter(provider_id=provider_id).count() >= FRAMING_ATTEMPTS_KEPT:
        return  # the Referer is the client's to write: the list stays bounded
    try:
        with transaction.atomic():
            FramingAttempt.objects.create(provider_id=provider_id, origin=origin, count=seen)
    except IntegrityError:  # another request inserted it first
        FramingAttempt.objects.filter(provider_id=provider_id, origin=origin).update(
            count=F("count") + seen, last_seen=now
        )
