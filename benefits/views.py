"""Benefit pages: what the family still has and where the rest went, and the
actions that spend a benefit (book a make-up, book a visit with a pass, redeem
a code). Lookups go through the logged-in family; switched-off features 404."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from enrollments.models import Enrollment, Location, Session
from families.pagecache import family_page
from families.rules import refusal
from families.selectors import family_students, student_in_family
from families.views import family_member
from portal.exceptions import PortalError
from portal.params import int_param
from providers.services import policy_current

from . import selectors, services
from .forms import MakeupRequestForm, VoucherForm
from .models import MakeupRequest


def location_choice(request) -> dict:
    """For the location picker (components/location_picker.html)."""
    from enrollments.views import current_location

    return {
        "locations": list(Location.objects.filter(is_active=True)),
        "current_location": current_location(request),
    }


def _require(enabled: bool) -> None:
    if not enabled:
        raise Http404("This feature is switched off.")


def _partial(request, template: str, part: str | None) -> str:
    """`page.html#part` for an HTMX request naming a part, else the page."""
    if request.htmx and part:
        return f"{template}#{part}"
    return template


# --- Make-ups ------------------------------------------------------------------------------


@require_GET
@family_page(session_inputs=("location_id",))
@family_member
def makeups(request, guardian):
    provider = request.tenant
    _require(provider.makeups_enabled)
    students = family_students(guardian.family)
    context = {
        "students": students,
        "may_book": guardian.may_manage_enrollments,
        "policy": policy_current(provider=provider),
    }
    if provider.makeup_tokens_enabled:
        context["tokens"] = selectors.token_groups(students, request.session.get("location_id"))
        selectors.token_advice(context["tokens"].available)
        context.update(location_choice(request))
    else:
        context["requests"] = selectors.makeup_requests(students)
        context["upcoming"] = selectors.upcoming_makeups(students)
        context["past"] = selectors.past_makeups(students)
    part = request.GET.get("part") if request.GET.get("part") in ("history",) else None
    return render(request, _partial(request, "benefits/makeups.html", part), context)


@require_http_methods(["GET", "POST"])
@family_member
def makeup_book(request, guardian, pk):
    _require(request.tenant.makeup_tokens_enabled)
    token = selectors.token_in_family(guardian.family, pk)
    if not guardian.may_manage_enrollments:
        raise PermissionDenied(refusal(guardian, "manage_enrollments"))
    if request.method == "POST":
        session_id = int_param(request, "session", source="POST")
        session = get_object_or_404(Session, pk=session_id) if session_id else None
        if session is None:
            messages.error(request, _("Choose a session."))
            return redirect("benefits:makeup_book", token.pk)
        try:
            services.makeup_book(token=token, session=session, actor=guardian)
        except PortalError as error:
            messages.error(request, str(error))
            return redirect("benefits:makeup_book", token.pk)
        messages.success(
            request,
            _("Booked: %(name)s, %(klass)s. The token is now pending until the session.")
            % {"name": token.student.first_name, "klass": session.klass.programme.name},
        )
        return redirect("benefits:makeups")
    offers = selectors.makeup_offers(token) if token.state == "available" else []
    context = {
        "token": token,
        "bookable": [o for o in offers if o.bookable],
        "not_bookable": [o for o in offers if not o.bookable],
    }
    return render(request, "benefits/book_makeup.html", context)


@require_POST
@family_member
def booking_cancel(request, guardian, pk):
    """Cancel a make-up or drop-in booking; the token or punch comes back."""
    enrollment = get_object_or_404(
        Enrollment.objects.select_related("session", "student"),
        pk=pk,
        student__family=guardian.family,
        kind__in=[Enrollment.Kind.MAKEUP, Enrollment.Kind.DROPIN],
    )
    try:
        services.single_booking_cancel(enrollment=enrollment, actor=guardian)
    except PortalError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("The booking is cancelled and the benefit is back."))
    target = "benefits:passes" if enrollment.kind == Enrollment.Kind.DROPIN else "benefits:makeups"
    return redirect(target)


@require_http_methods(["GET", "POST"])
@family_member
def makeup_request(request, guardian, student_pk):
    """The sessions a family may ask for; the service judges the one chosen
    (eligibility and permission live there)."""
    provider = request.tenant
    _require(provider.makeup_requests_enabled and not provider.makeup_tokens_enabled)
    student = student_in_family(guardian.family, student_pk)
    if not guardian.may_manage_enrollments:
        raise PermissionDenied(refusal(guardian, "manage_enrollments"))
    form = MakeupRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        session_id = int_param(request, "session", source="POST")
        session = Session.objects.filter(pk=session_id).first() if session_id else None
        if session is None:
            form.add_error(None, _("Choose one of the sessions offered."))
        else:
            try:
                services.makeup_request(
                    student=student,
                    session=session,
                    actor=guardian,
                    note=form.cleaned_data["note"],
                )
            except PortalError as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request, _("Request sent. The office will confirm it here and by e-mail.")
                )
                return redirect("benefits:makeups")
    offers = selectors.makeup_request_sessions(student)
    context = {
        "student": student,
        "form": form,
        "bookable": [o for o in offers if o.bookable],
        "not_bookable": [o for o in offers if not o.bookable],
        "chosen": request.POST.get("session", ""),
    }
    return render(request, "benefits/request_makeup.html", context)


@require_POST
@family_member
def makeup_request_withdraw(request, guardian, pk):
    """The family takes back a request the office has not answered."""
    item = get_object_or_404(
        MakeupRequest.objects.select_related("student"), pk=pk, student__family=guardian.family
    )
    try:
        services.makeup_request_withdraw(request=item, actor=guardian)
    except PortalError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Your request is withdrawn."))
    return redirect("benefits:makeups")


# --- Passes --------------------------------------------------------------------------------


@require_GET
@family_page
@family_member
def passes(request, guardian):
    students = family_students(guardian.family)
    context = {
        "passes": selectors.pass_groups(guardian.family, students),
        "may_book": guardian.may_manage_enrollments and request.tenant.pass_redemption_enabled,
    }
    return render(request, "benefits/passes.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def pass_book(request, guardian, pk):
    _require(request.tenant.pass_redemption_enabled)
    pass_obj = selectors.pass_in_family(guardian.family, pk)
    if not guardian.may_manage_enrollments:
        raise PermissionDenied(refusal(guardian, "manage_enrollments"))
    students = family_students(guardian.family)
    if pass_obj.student_id:
        students = [s for s in students if s.pk == pass_obj.student_id]
    if not students:
        messages.info(request, _("Add a child to your family first: a pass is used for a child."))
        return redirect("families:account")
    student_id = int_param(request, "student") or students[0].pk
    student = student_in_family(guardian.family, student_id)
    if pass_obj.student_id and student.pk != pass_obj.student_id:
        raise Http404
    if request.method == "POST":
        session_id = int_param(request, "session", source="POST")
        session = get_object_or_404(Session, pk=session_id) if session_id else None
        if session is None:
            messages.error(request, _("Choose a session."))
            return redirect("benefits:pass_book", pass_obj.pk)
        try:
            services.pass_book(pass_obj=pass_obj, student=student, session=session, actor=guardian)
        except PortalError as error:
            messages.error(request, str(error))
            return redirect(f"{request.path}?student={student.pk}")
        messages.success(request, _("Visit booked for %(name)s.") % {"name": student.first_name})
        return redirect("benefits:passes")
    offers = selectors.dropin_offers(pass_obj, student)
    context = {
        "pass_obj": pass_obj,
        "student": student,
        "students": students,
        "bookable": [o for o in offers if o.bookable],
        "not_bookable": [o for o in offers if not o.bookable][:20],
    }
    return render(request, "benefits/book_pass.html", context)


# --- Credits, discounts, vouchers ------------------------------------------------------------


@require_GET
@family_page
@family_member
def credits(request, guardian):
    return render(
        request, "benefits/credits.html", {"credits": selectors.credit_summary(guardian.family)}
    )


@require_GET
@family_page
@family_member
def discounts(request, guardian):
    students = family_students(guardian.family)
    return render(
        request,
        "benefits/discounts.html",
        {"discounts": selectors.discount_groups(guardian.family, students)},
    )


@require_http_methods(["GET", "POST"])
@family_member
def redeem(request, guardian):
    students = family_students(guardian.family)
    form = VoucherForm(request.POST or None, students=students)
    if request.method == "POST" and form.is_valid():
        raw = form.cleaned_data["student"]
        student = student_in_family(guardian.family, raw) if raw else None
        try:
            result = services.voucher_redeem(
                code=form.cleaned_data["code"],
                family=guardian.family,
                actor=guardian,
                student=student,
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(request, result)
            return redirect("dashboard")
    return render(request, "benefits/redeem.html", {"form": form})
