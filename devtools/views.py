from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def bench_static(request):
    """The benchmark's baseline (only routed when BENCH_VIEWS is on): a
    static page of `?bytes=` bytes through the same middleware as the
    dashboard, login included, and no work of its own."""
    size = min(int(request.GET.get("bytes", "0") or 0), 2_000_000)
    head = b"<!doctype html><html lang=en><title>Static</title><p>"
    return HttpResponse(head + b"x" * max(0, size - len(head)), content_type="text/html")
