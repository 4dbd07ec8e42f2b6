"""Middleware for a portal that lives inside other websites' iframes."""

from __future__ import annotations

from http.cookies import Morsel

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone, translation
from django_tenants.middleware.main import TenantMainMiddleware

# Python 3.11's Morsel does not know the CHIPS `Partitioned` attribute, and
# Django 5.2 cannot set it. Teach Morsel once; EmbeddingMiddleware sets it.
if "partitioned" not in Morsel._reserved:  # type: ignore[attr-defined]
    Morsel._reserved["partitioned"] = "Partitioned"  # type: ignore[attr-defined]
    Morsel._flags.add("partitioned")  # type: ignore[attr-defined]


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' host name -> provider lookup, kept in the "hosts"
    cache: most requests make no query for it. Saving a provider or a domain
    forgets its entries (providers.signals), so a change is seen at once by
    every web process."""

    def get_tenant(self, domain_model, hostname):
        hosts = caches["hosts"]
        key = host_key(hostname)
        tenant = hosts.get(key)
        if tenant is None:
            tenant = super().get_tenant(domain_model, hostname)
            hosts.set(key, tenant)
        return tenant


def host_key(hostname: str) -> str:
    return f"host:{hostname.lower()}"


# Staff pages are never framed, not even by the provider's own website.
UNFRAMED = ("/admin/", "/staff/")


def frame_ancestors(request) -> str:
    if request.path.startswith(UNFRAMED):
        return "'none'"
    provider = getattr(request, "tenant", None)
    origins = provider.allowed_frame_origins if provider is not None else []
    return " ".join(["'self'", *origins])


class EmbeddingMiddleware:
    """Lets exactly the provider's own websites frame the portal
    (CSP frame-ancestors) and partitions the session and CSRF cookies so they
    keep working in a third-party iframe."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault(
            "Content-Security-Policy", f"frame-ancestors {frame_ancestors(request)}"
        )
        for name in settings.PARTITIONED_COOKIES:
            morsel = response.cookies.get(name)
            if morsel is not None and morsel["secure"]:
                morsel["partitioned"] = True
        return response


class ProviderLocaleMiddleware:
    """Pages speak the provider's language and show its local time."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        provider = getattr(request, "tenant", None)
        if provider is None or provider.is_public:
            return self.get_response(request)
        with translation.override(provider.language):
            request.LANGUAGE_CODE = provider.language
            timezone.activate(provider.zone)
            try:
                response = self.get_response(request)
            finally:
                timezone.deactivate()
        response.headers.setdefault("Content-Language", provider.language)
        return response


class StaffLanguageMiddleware:
    """The admin and the front desk speak the staff login's own language when
    it chose one (after the provider's, set above); parents' pages never change."""

    STAFF_PATHS = ("/admin/", "/staff/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = ""
        if request.path.startswith(self.STAFF_PATHS):
            user = request.user
            if user.is_authenticated and user.is_staff:
                language = user.language
        if not language:
            return self.get_response(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers["Content-Language"] = language
        return response


class ProviderReadyMiddleware:
    """A provider whose schema is still being made (or failed) shows a plain
    page instead of errors."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from portal.errors import unavailable

        provider = getattr(request, "tenant", None)
        status = getattr(provider, "status", "ready")
        if provider is not None and not provider.is_public and status != "ready":
            return unavailable(
                request,
                message=translation.gettext(
                    "This portal is being set up. Please try again in a minute."
                ),
                retry_after=30,
            )
        return self.get_response(request)


class PrivateResponseMiddleware:
    """Whatever a logged-in person is shown (pages, fragments, PDFs, CSV
    exports, photos, error pages, pages served from the page cache) is never
    stored by the browser or a proxy: `Cache-Control: no-store`; so is a
    page reached by a secret link (an invitation, a pay hand-off, a calendar
    feed: a `token` in its URL), logged in or not. Only a response that says
    it is public (the provider's logo) keeps its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if is_public(response):
            return response
        user = getattr(request, "user", None)
        match = getattr(request, "resolver_match", None)
        by_secret_link = match is not None and "token" in match.kwargs
        if by_secret_link or (user is not None and user.is_authenticated):
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response


def is_public(response) -> bool:
    directives = {part.strip().lower() for part in response.get("Cache-Control", "").split(",")}
    return "public" in directives
