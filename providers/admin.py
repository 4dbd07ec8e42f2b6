"""The platform operator's admin, on the bare host (public schema): providers
and their domains. Provider staff use the default admin site on their own host."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.admin import UserAdmin
from accounts.models import User

from .models import Domain, Provider, SettingsChange


class PlatformAdminSite(admin.AdminSite):
    site_header = _("Family portal: platform")
    site_title = _("Family portal platform")
    index_title = _("Providers and operators")


platform_site = PlatformAdminSite(name="platform")


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 1


@admin.register(Provider, site=platform_site)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "kind", "currency", "time_zone", "online_payments"]
    search_fields = ["name", "slug", "domains__domain"]
    list_filter = ["kind", "online_payments", "makeup_tokens_enabled"]
    inlines = [DomainInline]
    readonly_fields = ["schema_name", "created_at", "status", "setup_error"]
    actions = ["retry_setup"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "slug",
                    "kind",
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
                    "logo",
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
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        provider = form.instance
        if provider.status == Provider.Status.CREATING:
            from .tasks import setup_provider

            transaction.on_commit(lambda: setup_provider.delay(provider.pk))
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
            transaction.on_commit(lambda pk=provider.pk: setup_provider.delay(pk))

    def get_readonly_fields(self, request, obj=None):
        # The slug names the schema: fixed once the provider exists.
        return [*self.readonly_fields, "slug"] if obj else self.readonly_fields


platform_site.register(User, UserAdmin)


@admin.register(SettingsChange, site=platform_site)
class SettingsChangeAdmin(admin.ModelAdmin):
    list_display = ["at", "provider", "changed_by", "field", "old", "new"]
    list_filter = ["provider"]
    readonly_fields = ["at", "provider", "changed_by", "field", "old", "new"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
