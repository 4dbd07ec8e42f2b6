from __future__ import annotations

import email
import email.policy
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from families.pagecache import family_page
from families.selectors import family_students, focused_student, guardian_for_request
from portal.mail import outbox_folder
from portal.permissions import staff_permission_required
from portal.sections import Viewer, get_section, render_sections, sections_for
from portal.tenancy import current_schema


def viewer_for(request) -> Viewer | None:
    guardian = guardian_for_request(request)
    if guardian is None:
        return None
    students = family_students(guardian.family)
    return Viewer(
        request=request,
        provider=request.tenant,
        guardian=guardian,
        family=guardian.family,
        students=students,
        focus=focused_student(students, request.GET.get("child")),
    )


def no_family(request):
    return render(request, "portal/no_family.html")


@require_GET
@family_page
def dashboard(request):
    viewer = viewer_for(request)
    if viewer is None:
        return no_family(request)
    sections = sections_for(request.tenant)
    context = {
        "viewer": viewer,
        "family": viewer.family,
        "students": viewer.students,
        "focus": viewer.focus,
        "sections": render_sections(viewer, sections),
        "quick_menu": sections,
    }
    template = "portal/dashboard.html"
    if request.htmx and not request.htmx.boosted:
        template += "#dashboard"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@family_page
def section(request, key: str):
    """One dashboard section: an HTMX fragment, or a page of its own."""
    viewer = viewer_for(request)
    if viewer is None:
        return no_family(request)
    found = get_section(request.tenant, key)
    if found is None:
        raise Http404("No such section.")
    context = {
        "viewer": viewer,
        "family": viewer.family,
        "students": viewer.students,
        "focus": viewer.focus,
        "item": render_sections(viewer, [found])[0],
    }
    template = "portal/section_page.html"
    if request.htmx and not request.htmx.boosted:
        template = "portal/dashboard.html#section"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_not_required
@require_GET
def provider_logo(request):
    logo = request.tenant.logo
    if not logo:
        raise Http404
    response = FileResponse(logo.open("rb"))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@login_not_required
@require_GET
def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


def server_error(request):
    """An error page; while the database is unreachable (a restart, say) a
    plain "try again in a moment" with Retry-After instead."""
    import sys

    from django.db import InterfaceError, OperationalError
    from django.views.defaults import server_error as default_server_error

    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return HttpResponse(
            "The portal is restarting. Please try again in a moment.",
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": "5"},
        )
    return default_server_error(request)


@login_not_required
@require_GET
def public_home(request):
    return render(request, "portal/public_home.html")


@login_not_required
@require_GET
def outbox(request):
    """Development only: the e-mails this provider sent, newest first."""
    if not settings.DEBUG:
        raise Http404
    folder = outbox_folder(current_schema())
    messages = []
    for path in sorted(folder.glob("*.eml"), reverse=True)[:50] if folder.exists() else []:
        parsed = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        messages.append(
            {
                "subject": parsed["subject"],
                "to": parsed["to"],
                "date": parsed["date"],
                "body": body.get_content() if body else "",
            }
        )
    return render(request, "portal/outbox.html", {"messages_sent": messages})


@require_GET
@staff_permission_required("providers.view_provider")
def embed(request):
    """Staff: the snippet that puts this portal on the provider's website."""
    provider = request.tenant
    base = f"{request.scheme}://{request.get_host()}/"
    return render(
        request,
        "portal/embed.html",
        {"base": base, "origins": provider.allowed_frame_origins},
    )
