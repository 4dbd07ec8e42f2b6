"""The platform operator's admin, on the bare host (public schema): providers
and their domains. Provider staff use the default admin site on their own host."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import NestedObjects
from django.db import router, transaction
from django.db.models.deletion import Collector
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.sites import UnfoldAdminSite

from accounts.admin import UserAdmin
from accounts.forms import AdminLoginForm
from accounts.models import User
from portal.adminactions import ReadOnlyAdmin
from portal.adminsample import AdminSample

from . import services
from .forms import ProviderAdminForm
from .models import Domain, Provider, SettingsChange


class PlatformAdminSite(UnfoldAdminSite):
    site_header = _("Family portal: platform")
    site_title = _("Family portal platform")
    index_title = _("Providers and operators")
    login_form = AdminLoginForm


platform_site = PlatformAdminSite(name="platform")


def _link_parts(request) -> tuple[str, str]:
    """Scheme and port for links e-mailed about a provider: as the platform
    admin was reached (providers live on subdomains of the same base)."""
    port = request.get_port()
    return request.scheme, "" if port in ("80", "443") else f":{port}"


class DomainInline(TabularInline):
    model = Domain
    extra = 1


@admin.register(Provider, site=platform_site)
class ProviderAdmin(ModelAdmin):
    form = ProviderAdminForm
    list_display = ["name", "slug", "status", "kind", "currency", "time_zone", "online_payments"]
    search_fields = ["name", "slug", "domains__domain"]
    list_filter = ["kind", "online_payments", "makeup_tokens_enabled"]
    inlines = [DomainInline]
    readonly_fields = ["schema_name", "created_at", "status", "setup_error", "logo_current"]
    actions = ["retry_setup"]
    sample = AdminSample(
        add=lambda: {
            "name": "Sample Swim Club",
            "slug": "sample-swim",
            "kind": Provider.Kind.SWIM,
            "currency": "EUR",
            "time_zone": "Europe/Vienna",
            "language": "en",
            "country": "AT",
            "primary_colour": "#006d77",
            "accent_colour": "#e29578",
            "first_owner_email": "owner@sample-swim.test",
        }
    )
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "slug",
                    "kind",
                    "first_owner_email",
                    "schema_name",
                    "created_at",
                    "status",
                    "setup_error",
                ]
            },
        ),
        (_("Locale"), {"fields": ["currency", "time_zone", "language", "country"]}),
        (
            _("Branding"),
            {
                "fields": [
                    "primary_colour",
                    "accent_colour",
                    "logo_current",
                    "logo_file",
                    "logo_remove",
                    "support_email",
                    "support_phone",
                    "website",
                    "embed_origins",
                ]
            },
        ),
        (
            _("Policies"),
            {"fields": ["cancellation_policy", "makeup_policy", "payment_instructions"]},
        ),
        (
            _("Invoices and VAT"),
            {
                "fields": [
                    "legal_name",
                    "legal_address",
                    "tax_number",
                    "charges_vat",
                    "vat_rate",
                    "prices_include_vat",
                ]
            },
        ),
        (
            _("Payments"),
            {
                "fields": [
                    "online_payments",
                    "echecks_enabled",
                    "require_recurring_authorisation",
                    "invoices_enabled",
                    "full_ledger_history",
                ]
            },
        ),
        (
            _("Classes and benefits"),
            {
                "fields": [
                    "makeup_tokens_enabled",
                    "makeup_requests_enabled",
                    "cancel_waitlist_enabled",
                    "drop_enabled",
                    "transfer_enabled",
                    "future_absences_enabled",
                    "qr_codes_enabled",
                    "pass_redemption_enabled",
                    "livestream_enabled",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).real()

    def save_model(self, request, obj, form, change):
        if not change:
            # The schema is made in the background (Celery), with visible status.
            obj.schema_name = obj.slug.replace("-", "_")
            obj.auto_create_schema = False
            obj.status = Provider.Status.CREATING
        new_currency = None
        if change and "currency" in form.changed_data:
            # Through the service, which refuses once money exists.
            new_currency, obj.currency = obj.currency, form.initial["currency"]
        super().save_model(request, obj, form, change)
        if new_currency:
            try:
                services.provider_currency_set(
                    provider=obj, currency=new_currency, changed_by=request.user.email
                )
            except services.ProviderError as error:
                self.message_user(request, str(error), messages.ERROR)
        # The logo is checked and re-encoded by the form, saved by the service.
        logo_changes, logo = form.logo_change()
        if logo_changes:
            services.provider_logo_set(provider=obj, logo=logo, changed_by=request.user.email)
        # A changed make-up text or rule: parents see the next policy version.
        services.policy_publish(provider=obj, published_by=request.user.email)

    @admin.display(description=_("logo"))
    def logo_current(self, provider):
        return provider.logo.name or "-"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        provider = form.instance
        if provider.status == Provider.Status.CREATING:
            from .tasks import setup_provider

            link = _link_parts(request)
            transaction.on_commit(lambda: setup_provider.delay(provider.pk, *link))
            self.message_user(
                request,
                _("%(name)s is being set up; its status shows here.") % {"name": provider.name},
                messages.INFO,
            )

    @admin.action(description=_("Retry the set-up of failed providers"))
    def retry_setup(self, request, queryset):
        from .tasks import setup_provider

        for provider in queryset.filter(status=Provider.Status.FAILED):
            Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.CREATING)
            link = _link_parts(request)
            transaction.on_commit(lambda pk=provider.pk, link=link: setup_provider.delay(pk, *link))

    def get_readonly_fields(self, request, obj=None):
        # The slug names the schema: fixed once the provider exists; the
        # currency once the provider holds money.
        if obj is None:
            return self.readonly_fields
        fixed = ["currency"] if services.provider_holds_money(obj) else []
        return [*self.readonly_fields, "slug", *fixed]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            # A new provider starts with the defaults; its owner fills in the
            # invoice details later (here or on the staff settings page).
            return [f for f in fieldsets if f[0] != _("Invoices and VAT")]
        if not services.provider_holds_money(obj):
            return fieldsets
        note = _(
            "The currency is fixed: orders, payments or ledger entries exist in it. "
            "Amounts already charged, paid and invoiced cannot change currency."
        )
        return [
            (name, {**options, "description": note}) if name == _("Locale") else (name, options)
            for name, options in fieldsets
        ]


class _PublicRelationsOnly:
    """In the public schema only the shared apps have tables: relations from
    models that live in providers' schemas (a staff view's staff, say) are
    not followed when a platform login is deleted."""

    def related_objects(self, related_model, related_fields, objs):
        if not _in_public_schema(related_model):
            return related_model._base_manager.none()
        return super().related_objects(related_model, related_fields, objs)


def _in_public_schema(model) -> bool:
    configs = apps.get_app_configs()
    shared = {config.label for config in configs if config.name in settings.SHARED_APPS}
    return model._meta.app_label in shared


class PublicCollector(_PublicRelationsOnly, Collector):
    pass


class PublicNestedObjects(_PublicRelationsOnly, NestedObjects):
    pass


class PlatformUserAdmin(UserAdmin):
    """Platform operators: logins of the bare host, not of any provider."""

    change_list_template = "admin/accounts/logins_note.html"

    def changelist_view(self, request, extra_context=None):
        note = _(
            "Platform operators: these logins reach only this platform admin. A provider's "
            "staff are another kind of login, kept in the provider's own data: its owner is "
            "invited when the provider is created (first owner's e-mail) and invites the rest "
            "from the provider's admin. Nobody here can log in to a provider, nor the reverse."
        )
        return super().changelist_view(request, {**(extra_context or {}), "logins_note": note})

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        if not objs:
            return [], {}, set(), []
        collector = PublicNestedObjects(using=router.db_for_write(self.model), origin=objs)
        collector.collect(objs)

        def describe(obj):
            return f"{capfirst(obj._meta.verbose_name)}: {obj}"

        model_count = {
            model._meta.verbose_name_plural: len(found)
            for model, found in collector.model_objs.items()
        }
        protected = [describe(obj) for obj in collector.protected]
        return collector.nested(describe), model_count, set(), protected

    def delete_model(self, request, obj):
        self.delete_queryset(request, self.model.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        collector = PublicCollector(using=router.db_for_write(self.model), origin=queryset)
        collector.collect(queryset)
        collector.delete()


platform_site.register(User, PlatformUserAdmin)


@admin.register(SettingsChange, site=platform_site)
class SettingsChangeAdmin(ReadOnlyAdmin, ModelAdmin):
    """A record: PostgreSQL refuses changes too (portal.models.append_only)."""

    list_display = ["at", "provider", "changed_by", "field", "old", "new"]
    list_filter = ["provider"]
    readonly_fields = ["at", "provider", "changed_by", "field", "old", "new"]
    sample = AdminSample(
        add=None,
        make=lambda: services.provider_settings_update(
            provider=Provider.objects.real().order_by("pk")[0],
            changes={"support_phone": "+43 1 234 5678"},
            changed_by="sample@example.test",
        ),
    )
