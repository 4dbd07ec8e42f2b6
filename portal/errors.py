"""The error pages (400, 403, 404, 500, 503): in the provider's colours, saying
what happened and what to do, with a way back to the dashboard.

They are rendered without a request context: no context processor runs, so
neither the database nor the cache is asked anything. The provider's name and
colours come from the provider the host lookup already put on the request
(`request.tenant`); without one the page is neutral. The 500 and 503 pages
never raise: if even the template fails, a fixed page in plain HTML answers.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.http import HttpResponse
from django.template import loader
from django.utils import translation
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.translation import gettext as _

from portal.theme import NEUTRAL, Theme

logger = logging.getLogger("portal.errors")

NEUTRAL_CSS = Theme.from_colours(NEUTRAL, NEUTRAL).css()

FALLBACK = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head>"
    '<body style="font-family:system-ui,sans-serif;margin:2rem auto;max-width:34rem;'
    'padding:0 1rem;color:#111;background:#fff">'
    "<main><h1>{title}</h1><p>{text}</p>"
    '<p><a href="/" style="color:#1d4ed8">{back}</a></p></main></body></html>'
)


def _provider(request) -> Any | None:
    """The provider already on the request, if it is a real one (never loaded here)."""
    try:
        provider = getattr(request, "tenant", None)
        if provider is None or getattr(provider, "is_public", True):
            return None
        name = provider.__dict__.get("name")
        return provider if isinstance(name, str) and name else None
    except Exception:  # noqa: BLE001 - an error page must not raise
        return None


def page_context(request, **extra: Any) -> dict[str, Any]:
    """What every error page shows, from memory only."""
    provider = _provider(request)
    context: dict[str, Any] = {
        "lang": translation.get_language() or "en",
        "provider_name": "",
        "theme_css": NEUTRAL_CSS,
        "support_email": "",
        "support_phone": "",
        "home": "/",
    }
    if provider is not None:
        try:
            context.update(
                provider_name=provider.name,
                theme_css=provider.theme.css(),
                support_email=provider.__dict__.get("support_email") or "",
                support_phone=provider.__dict__.get("support_phone") or "",
            )
        except Exception:  # noqa: BLE001
            logger.exception("error page: the provider's theme could not be read")
    return context | extra


def render_error(
    request, template: str, status: int, headers: dict[str, str] | None = None, **extra: Any
) -> HttpResponse:
    """The error page, or a fixed plain page if even that fails."""
    try:
        body = loader.get_template(template).render(page_context(request, **extra))
    except Exception:  # noqa: BLE001 - an error page must not raise
        logger.exception("error page %s could not be rendered", template)
        body = fallback_body(status)
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def fallback_body(status: int) -> str:
    try:
        if status == 503:
            title, text = _("Please try again in a moment"), _("The portal is restarting.")
        else:
            title, text = _("Something went wrong"), _("Please try again in a moment.")
        back = _("Back to the dashboard")
    except Exception:  # noqa: BLE001
        title, text, back = "Something went wrong", "Please try again in a moment.", "Back"
    return FALLBACK.format(title=escape(title), text=escape(text), back=escape(back))


def _reason(exception: BaseException | None) -> str:
    """The refusal's own message (our PermissionDenied messages are written
    for the person reading them); empty when it has none."""
    if exception is None or not exception.args:
        return ""
    message = exception.args[0]
    return str(message) if isinstance(message, (str, Promise)) else ""


def bad_request(request, exception=None):
    """400: a parameter or the request itself could not be read."""
    return render_error(request, "400.html", 400, reason=_reason(exception))


def permission_denied(request, exception=None):
    """403: what was refused and whom to ask."""
    return render_error(request, "403.html", 403, reason=_reason(exception))


def csrf_failure(request, reason: str = ""):
    """403 for a form whose security token is missing or old (CSRF_FAILURE_VIEW)."""
    return render_error(
        request,
        "403.html",
        403,
        reason=_(
            "This form has expired or was sent from another page. Reload the page and send it "
            "again. Inside a provider’s website, your browser may block the portal’s cookies: "
            "open the portal in a new tab."
        ),
    )


def page_not_found(request, exception=None):
    return render_error(request, "404.html", 404)


def unavailable(request, *, message: str = "", retry_after: int = 5) -> HttpResponse:
    """503: the portal cannot answer now (restarting, a provider being set up)."""
    return render_error(
        request, "503.html", 503, headers={"Retry-After": str(retry_after)}, message=message
    )


def server_error(request=None):
    """500; while the database is unreachable (a restart, say) a 503 "try
    again in a moment" with Retry-After instead. Never raises."""
    try:
        from django.db import InterfaceError, OperationalError

        if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
            return unavailable(request, retry_after=5)
        return render_error(request, "500.html", 500)
    except Exception:  # noqa: BLE001
        return HttpResponse(fallback_body(500), status=500, content_type="text/html; charset=utf-8")
