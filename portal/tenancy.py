"""The provider (tenant) the database connection is set to.

django-tenants adds `tenant`, `schema_name`, `set_tenant()` and
`set_schema_to_public()` to `django.db.connection`; Django's type stubs do not
know them. Code reads and switches the schema through these functions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, cast

from django.db import connection

if TYPE_CHECKING:
    from providers.models import Provider


class _TenantConnection(Protocol):
    # A Provider, or django-tenants' FakeTenant after set_schema_to_public().
    tenant: Provider
    schema_name: str

    def set_tenant(self, tenant: Provider, include_public: bool = True) -> None: ...

    def set_schema_to_public(self) -> None: ...


def _connection() -> _TenantConnection:
    return cast("_TenantConnection", connection)


def current_provider() -> Provider:
    """The provider whose schema the connection uses (in a request, the
    provider the host name routed to)."""
    return _connection().tenant


def current_schema() -> str:
    """The schema the connection uses: a provider's, or "public"."""
    return _connection().schema_name


def use_provider(provider: Provider) -> None:
    """Switch the connection to the provider's schema."""
    _connection().set_tenant(provider)


def use_public_schema() -> None:
    """Switch the connection to the public schema."""
    _connection().set_schema_to_public()


@contextmanager
def provider_language() -> Iterator[None]:
    """What families read (e-mails, documents) is in the provider's language,
    whoever's request or task writes it: a staff login may read the admin in
    a language of its own. Also a decorator."""
    from django.utils import translation

    language = getattr(current_provider(), "language", None)
    if not language:
        yield
        return
    with translation.override(language):
        yield
