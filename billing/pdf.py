"""PDFs with WeasyPrint, in the provider's branding. Imported by the worker
only (importing WeasyPrint costs most of a second). It may fetch nothing but
our own static files: text parents typed can never make it load a URL."""

from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone, translation

from portal import clock

STATIC_PREFIX = "static:"
log = logging.getLogger(__name__)


def static_only_fetcher(url: str, *args, **kwargs):
    from weasyprint.urls import default_url_fetcher

    if url.startswith("data:"):
        return default_url_fetcher(url)
    if url.startswith(STATIC_PREFIX):
        found = finders.find(url[len(STATIC_PREFIX) :])
        if found and Path(found).is_file():
            return default_url_fetcher(Path(found).as_uri())
    raise ValueError(f"PDF may not fetch {url!r}")


# Documents with this many rows are laid out in parts, one per core.
PARALLEL_ROWS = 300


def render(template: str, context: dict, *, provider, rows: str | None = None) -> bytes:
    """The PDF of `template`. A long document (`context[rows]` holding at
    least PARALLEL_ROWS rows) is laid out in parts, one per core, and joined:
    the first part carries the heading, the last the totals, and the pages
    are numbered across the whole."""
    with translation.override(provider.language), timezone.override(provider.zone):
        base = {**context, "provider": provider, "theme_css": provider.theme.css()}
        base |= {"now": clock.now(), "part": {"first": True, "last": True, "numbered": True}}
        lines = list(context[rows]) if rows else []
        workers = parallel_workers()
        if not rows or len(lines) < PARALLEL_ROWS or workers < 2:
            return _pdf(render_to_string(template, base))
        size = -(-len(lines) // workers)
        slices = [lines[start : start + size] for start in range(0, len(lines), size)]
        htmls = [
            render_to_string(
                template,
                {**base, rows: part, "part": {"first": n == 0, "last": n == len(slices) - 1}},
            )
            for n, part in enumerate(slices)
        ]
        log.info("laying out %s rows of %s in %s processes", len(lines), template, len(htmls))
        return _join(_render_in_parallel(htmls))


def parallel_workers() -> int:
    """Processes to lay a document out with: PDF_WORKERS when set, else one
    per core (at most 4), but only in a process with no other threads (a
    Celery prefork child), where forking is safe; the web server, where the
    broker-down fallback may render, lays out in one."""
    if settings.PDF_WORKERS:
        return settings.PDF_WORKERS
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def _pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(
        string=html, url_fetcher=static_only_fetcher, base_url=str(settings.BASE_DIR)
    ).write_pdf()


def _render_in_parallel(htmls: Sequence[str]) -> list[bytes]:
    """The first part here, each other in a forked child that writes its PDF
    to a file and exits at once (it touches nothing else it inherited)."""
    import weasyprint  # noqa: F401  (loaded before forking, not in each child)

    with tempfile.TemporaryDirectory(prefix="pdf-parts-") as folder:
        children = []
        for number, html in enumerate(htmls[1:], start=1):
            path = Path(folder) / f"{number}.pdf"
            pid = os.fork()
            if pid == 0:  # the child
                code = 1
                try:
                    path.write_bytes(_pdf(html))
                    code = 0
                finally:
                    os._exit(code)
            children.append((pid, path))
        parts = [_pdf(htmls[0])]
        for pid, path in children:
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError("a part of the document could not be laid out")
            parts.append(path.read_bytes())
    return parts


def _join(parts: list[bytes]) -> bytes:
    """One PDF of the parts, with page numbers stamped across the whole."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in parts:
        writer.append(PdfReader(io.BytesIO(data)))
    count = len(writer.pages)
    stamps = render_to_string("billing/pdf/numbers.html", {"pages": range(count)})
    numbers = PdfReader(io.BytesIO(_pdf(stamps)))
    for page, number in zip(writer.pages, numbers.pages, strict=True):
        page.merge_page(number)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
