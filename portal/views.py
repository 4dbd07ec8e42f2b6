from __future__ import annotations

import email
import email.policy
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from families.pagecache import family_page
from families.selectors import family_students, focused_student, guardian_for_request
from portal.mail import outbox_folder
from portal.permissions import staff_permission_required
from portal.sections import Viewer, get_section, render_sections, sections_for
from portal.tenancy import current_schema
from providers import services as provider_services
from providers.forms import EmbedOriginsForm
from providers.models import FramingAttempt, Provider
from providers.selectors import framing_attempts_refused


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
@family_page(session_inputs=("location_id",))
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
@family_page(session_inputs=("location_id",))
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
    """The 500 page (a 503 while the database is unreachable): portal.errors."""
    from portal.errors import server_error as render

    return render(request)


@login_not_required
@require_GET
def public_home(request):
    return render(request, "portal/public_home.html")


@require_GET
def outbox(request):
    """Development only: the e-mails this provider sent, newest first. They
    hold live links (password resets, invitations): only this provider's
    staff see them; a parent gets a 404, a visitor the login page."""
    if not settings.DEBUG or not (request.user.is_active and request.user.is_staff):
        raise Http404
    folder = outbox_folder(current_schema())
    messages = []
    for path in sorted(folder.glob("*.eml"), reverse=True)[:50] if folder.exists() else []:
        parsed = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        messages.append(
            {
                "subject": parsed["subject"],
                "from": parsed["from"],
                "to": parsed["to"],
                "date": parsed["date"],
                "body": body.get_content() if body else "",
            }
        )
    return render(request, "portal/outbox.html", {"messages_sent": messages})


@staff_permission_required("providers.view_provider")
@require_http_methods(["GET", "POST"])
def embed(request):
    """Staff: the snippet that puts this portal on the provider's website,
    the websites allowed to show it, and those refused."""
    provider = Provider.objects.get(pk=request.tenant.pk)
    may_change = request.user.has_perm("providers.change_provider")
    form = EmbedOriginsForm(initial={"embed_origins": provider.embed_origins})
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        form = EmbedOriginsForm(request.POST)
        if form.is_valid():
            provider_services.provider_settings_update(
                provider=provider,
                changes={"embed_origins": form.cleaned_data["embed_origins"]},
                changed_by=request.user.email,
            )
            messages.success(request, _("Saved: the allowed websites are in effect now."))
            return redirect("embed")
    base = f"{request.scheme}://{request.get_host()}/"
    context = {
        "base": base,
        "origins": provider.allowed_frame_origins,
        "form": form,
        "may_change": may_change,
        "attempts": framing_attempts_refused(provider),
    }
    return render(request, "portal/embed.html", context)


@staff_permission_required("providers.change_provider")
@require_POST
def embed_allow(request, pk: int):
    """Staff: "Allow this site" for a website that was refused."""
    attempt = get_object_or_404(FramingAttempt, pk=pk, provider_id=request.tenant.pk)
    try:
        provider_services.embed_origin_allow(
            provider=request.tenant, origin=attempt.origin, changed_by=request.user.email
        )
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(
            request, _("%(origin)s may now show the portal.") % {"origin": attempt.origin}
        )
    return redirect("embed")
