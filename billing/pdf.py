"""PDFs with WeasyPrint, in the provider's branding. Imported by the worker
only (importing WeasyPrint costs most of a second). It may fetch nothing but
our own static files: text parents typed can never make it load a URL."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone, translation

STATIC_PREFIX = "static:"


def static_only_fetcher(url: str, *args, **kwargs):
    from weasyprint.urls import default_url_fetcher

    if url.startswith("data:"):
        return default_url_fetcher(url)
    if url.startswith(STATIC_PREFIX):
        found = finders.find(url[len(STATIC_PREFIX) :])
        if found and Path(found).is_file():
            return default_url_fetcher(Path(found).as_uri())
    raise ValueError(f"PDF may not fetch {url!r}")


def render(template: str, context: dict, *, provider) -> bytes:
    from weasyprint import HTML

    with translation.override(provider.language), timezone.override(provider.zone):
        html = render_to_string(
            template,
            {
                **context,
                "provider": provider,
                "theme_css": provider.theme.css(),
                "now": timezone.now(),
            },
        )
        return HTML(
            string=html, url_fetcher=static_only_fetcher, base_url=str(settings.BASE_DIR)
        ).write_pdf()
