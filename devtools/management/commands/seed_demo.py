"""Demo data for `make run`: idempotent, so every run can call it.

Providers and logins here are relied upon by the README and by checks: keep
their names, hosts and e-mail addresses stable. Each app adds its own demo data
in `<app>/demo.py` (a `seed(provider)` function run in the provider's schema).
"""

from __future__ import annotations

import importlib
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import tenant_context

from accounts import roles
from accounts.models import User
from providers.models import Domain, Provider
from providers.services import provider_create, provider_settings_update, staff_user_ensure

DEMO_PASSWORD = "portal-demo"
DEMO_APPS = ["families", "enrollments", "benefits", "billing"]

PROVIDERS = [
    {
        "slug": "aquakids",
        "name": "Aqua Kids Swim School",
        "kind": Provider.Kind.SWIM,
        "currency": "EUR",
        "time_zone": "Europe/Ljubljana",
        "language": "en",
        "country": "SI",
        "primary_colour": "#0b63ce",
        "accent_colour": "#ffb703",
        "support_email": "hello@aquakids.test",
        "support_phone": "+386 1 555 0100",
        "website": "https://aquakids.example",
        # The rules themselves (notice, validity, which pool) are stated by the
        # portal from the settings (benefits.rules.policy_sentences): the
        # provider's own words must not repeat them, or they drift apart.
        "cancellation_policy": (
            "Tell us as early as you can when your child cannot come: report the absence "
            "on your child's page."
        ),
        "makeup_policy": (
            "Missed a lesson? Book a make-up with your token under Make-ups, at a time "
            "that suits you."
        ),
        "online_payments": True,
        "invoices_enabled": True,
        "makeup_tokens_enabled": True,
        "transfer_enabled": True,
        "drop_enabled": True,
        "qr_codes_enabled": True,
        "livestream_enabled": True,
        "pass_redemption_enabled": True,
        "embed_origins": "http://127.0.0.1:8001",
        # Invoices: registered name and VAT number; 22 % standard, swimming
        # lessons at the reduced 9,5 % (enrollments/demo.py), prices with VAT.
        "legal_name": "Aqua Kids, plavalna šola d.o.o.",
        "legal_address": "Celovška cesta 25\n1000 Ljubljana\nSlovenia",
        "tax_number": "SI12345678",
        "charges_vat": True,
        "vat_rate": Decimal("22.00"),
        "prices_include_vat": True,
        "staff": "staff@aquakids.test",
    },
    {
        "slug": "leaps",
        "name": "Leaps Gymnastics Club",
        "kind": Provider.Kind.GYM,
        "currency": "GBP",
        "time_zone": "Europe/London",
        "language": "en-gb",
        "country": "GB",
        "primary_colour": "#8e24aa",
        "accent_colour": "#00a896",
        "support_email": "office@leaps.test",
        "support_phone": "+44 20 7946 0321",
        "website": "https://leaps.example",
        "cancellation_policy": "Tell the office before the session if your gymnast cannot come.",
        "makeup_policy": "Ask for a make-up in the portal; the office confirms within a day.",
        "payment_instructions": (
            "Pay by bank transfer to Leaps Gymnastics Club, sort code 20-00-00, "
            "account 55779911. Quote your family name and order number."
        ),
        "online_payments": False,
        "invoices_enabled": True,
        "makeup_requests_enabled": True,
        # Below the VAT threshold: invoices say no VAT is charged.
        "legal_name": "Leaps Gymnastics Club Ltd",
        "legal_address": "14 Canal Street\nLondon E1 6AN\nUnited Kingdom",
        "staff": "staff@leaps.test",
    },
]


# Demo texts of earlier versions that contradicted the rules (tokens "at any of
# our pools" while a token books only at its own): replaced where unchanged.
OUTDATED_TEXTS = {
    "cancellation_policy": (
        "Tell us 24 hours before a lesson and you get a make-up token for it. "
        "Cancelled lessons by the school always give a token."
    ),
    "makeup_policy": (
        "Make-up tokens are valid for 60 days at any of our pools, in a class of the "
        "same level with a free place."
    ),
}


class Command(BaseCommand):
    help = "Create or update the demo providers, families and data (idempotent)."

    def handle(self, *args, **options):
        self.ensure_public()
        for spec in PROVIDERS:
            provider = self.ensure_provider(dict(spec))
            for app in DEMO_APPS:
                try:
                    module = importlib.import_module(f"{app}.demo")
                except ModuleNotFoundError:
                    continue
                with tenant_context(provider), transaction.atomic():
                    module.seed(provider, password=DEMO_PASSWORD)
        self.stdout.write("Demo data is ready.")

    def ensure_public(self) -> None:
        public = Provider.objects.filter(schema_name="public").first()
        if public is None:
            public = Provider(schema_name="public", slug="public", name="Family portal")
            public.save()
        for index, host in enumerate([settings.PORTAL_BASE_DOMAIN, "127.0.0.1"]):
            Domain.objects.get_or_create(
                domain=host, defaults={"tenant": public, "is_primary": index == 0}
            )
        if not User.objects.filter(email="admin@portal.test").exists():
            User.objects.create_superuser(
                "admin@portal.test", DEMO_PASSWORD, full_name="Platform operator"
            )

    def replace_outdated_texts(self, provider: Provider, spec: dict) -> None:
        changes = {
            field: spec[field]
            for field, old in OUTDATED_TEXTS.items()
            if getattr(provider, field) == old and field in spec
        }
        if changes:
            provider_settings_update(provider=provider, changes=changes, changed_by="demo data")

    def ensure_provider(self, spec: dict) -> Provider:
        staff = spec.pop("staff")
        provider = Provider.objects.filter(slug=spec["slug"]).first()
        if provider is not None:
            self.replace_outdated_texts(provider, spec)
        if provider is None:
            provider = provider_create(
                domains=[f"{spec['slug']}.{settings.PORTAL_BASE_DOMAIN}"], **spec
            )
            self.stdout.write(f"Created provider {provider.name}")
        # The owner, and one login for each other role (accounts/roles.py).
        domain = staff.split("@", 1)[1]
        for email, full_name, role in [
            (staff, "Office owner", roles.OWNER),
            (f"manager@{domain}", "Manager", roles.MANAGER),
            (f"desk@{domain}", "Front desk", roles.FRONT_DESK),
        ]:
            staff_user_ensure(
                provider=provider,
                email=email,
                password=DEMO_PASSWORD,
                full_name=full_name,
                role=role,
            )
        return provider
