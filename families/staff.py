"""Staff see what a family sees: read-only, with a banner, every time recorded."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import limits
from portal.exceptions import PortalError
from portal.params import BadParameter, int_param, parse_int
from portal.permissions import staff_permission_required
from portal.uploads import ACCEPT, MEGABYTE, ImageUploadField, image_response

from . import services
from .models import Family, ProblemReport, StaffView, Student
from .selectors import guardian_for_request

SESSION_KEY = "view_as_family"


VIEW_AS = "families.view_as_family"


def may_view_as(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff and user.has_perm(VIEW_AS)


@staff_permission_required(VIEW_AS)
@require_http_methods(["GET", "POST"])
def view_as_start(request, pk):
    family = get_object_or_404(Family, pk=pk)
    if request.method == "GET":
        return render(request, "families/view_as.html", {"family": family})
    StaffView.objects.create(staff=request.user, family=family)
    request.session[SESSION_KEY] = family.pk
    request.__dict__.pop("_portal_guardian", None)
    return redirect("dashboard")


@staff_permission_required(VIEW_AS)
@require_POST
def view_as_stop(request):
    family_id = request.session.pop(SESSION_KEY, None)
    if family_id:
        return redirect(reverse("admin:families_family_change", args=[family_id]))
    return redirect("admin:index")


class ViewAsReadOnlyMiddleware:
    """While staff view as a family, nothing can be changed in the portal."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_KEY):
            if not may_view_as(request.user):
                session.pop(SESSION_KEY, None)
            elif (
                request.method not in self.SAFE
                and not request.path.startswith("/admin/")
                and request.path != reverse("view_as_stop")
            ):
                raise PermissionDenied(_("Read-only: you are viewing the portal as a family."))
        return self.get_response(request)


def viewing_as(request) -> Family | None:
    if request.session.get(SESSION_KEY) and may_view_as(request.user):
        guardian = guardian_for_request(request)
        return guardian.family if guardian else None
    return None


# --- Problem reports ------------------------------------------------------------------------


SCREENSHOT_MAX_BYTES = 5 * MEGABYTE
SCREENSHOT_MAX_SIDE = 3840


class ProblemReportForm(forms.ModelForm):
    screenshot = ImageUploadField(
        max_bytes=SCREENSHOT_MAX_BYTES,
        max_side=SCREENSHOT_MAX_SIDE,
        what=gettext_lazy("The screenshot"),
        stem="screenshot",
        required=False,
        label=gettext_lazy("Screenshot"),
        widget=forms.FileInput(attrs={"accept": ACCEPT}),
        help_text=gettext_lazy(
            "Optional. A picture of the screen helps a lot. PNG, JPEG or WebP, up to 5 MB."
        ),
    )

    class Meta:
        model = ProblemReport
        fields = ["clicked", "expected", "screenshot"]
        widgets = {
            "clicked": forms.Textarea(attrs={"rows": 3, "data-counter": ""}),
            "expected": forms.Textarea(attrs={"rows": 3, "data-counter": ""}),
        }


def _child_on_page(page: str) -> int | None:
    """The child the reported page shows: `?child=5` or `/students/5/...`
    (the link is rewritten to the page the parent is on when clicked, after
    any in-page navigation). Looked up in the family only."""
    parts = urlsplit(page)
    found = STUDENT_PATH.match(parts.path)
    raw = found.group(1) if found else next(iter(parse_qs(parts.query).get("child", [])), None)
    try:
        return parse_int(raw, "child")
    except BadParameter:
        return None


STUDENT_PATH = re.compile(r"^/students/(\d+)/")


@require_http_methods(["GET", "POST"])
def report_problem(request):
    page = (request.POST.get("page") or request.GET.get("page") or "/")[:500]
    child_id = int_param(request, "child") or _child_on_page(page)
    guardian = guardian_for_request(request)
    family = guardian.family if guardian else None
    child = (
        Student.objects.filter(family=family, pk=child_id).first() if family and child_id else None
    )
    limited = None
    if request.method == "POST":
        try:  # past the limit, a screenshot is not even decoded
            limits.check(limits.PROBLEM_REPORT, request.user.pk)
        except limits.LimitReached as refused:
            limited = refused
    form = ProblemReportForm(request.POST or None, None if limited else request.FILES or None)
    if limited is not None:
        form.is_valid()
        form.add_error(None, str(limited))
    elif request.method == "POST" and form.is_valid():
        try:
            services.problem_report_create(
                reporter=request.user,
                family=family,
                page=page,
                focused_child=child,
                clicked=form.cleaned_data["clicked"],
                expected=form.cleaned_data["expected"],
                screenshot=form.cleaned_data.get("screenshot"),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(
                request, _("Thank you. The office has your report and will get back to you.")
            )
            safe = url_has_allowed_host_and_scheme(page, {request.get_host()}, request.is_secure())
            return redirect(page if safe else "dashboard")
    return render(
        request, "families/report_problem.html", {"form": form, "page": page, "child": child}
    )


@staff_permission_required("families.view_problemreport")
@require_GET
def report_screenshot(request, pk):
    report = get_object_or_404(ProblemReport, pk=pk)
    if not report.screenshot:
        raise Http404
    return image_response(report.screenshot, stem=f"screenshot-{report.pk}")
