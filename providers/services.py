"""Creating providers. Saving a Provider creates and migrates its schema
(django-tenants); the Domain rows route host names to it."""

from __future__ import annotations

from django.db import transaction
from django_tenants.utils import schema_context

from accounts.models import User

from .models import Domain, Provider


def provider_create(*, slug: str, name: str, domains: list[str], **fields) -> Provider:
    """Create the provider, its schema and its domains (the first is primary)."""
    provider = Provider(slug=slug, schema_name=slug.replace("-", "_"), name=name, **fields)
    provider.full_clean()
    provider.save(verbosity=0)
    with transaction.atomic():
        for index, domain in enumerate(domains):
            Domain.objects.create(tenant=provider, domain=domain.lower(), is_primary=index == 0)
    return provider


def staff_user_ensure(*, provider: Provider, email: str, password: str, full_name: str) -> User:
    """A provider staff account (admin on the provider's host), created if missing."""
    with schema_context(provider.schema_name):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(
                email, password, full_name=full_name, is_staff=True, is_superuser=True
            )
        return user
