"""A student's enrolments, attendance, evaluations, absences and QR code; the
enrolment actions; calendar feeds. Lookups go through the logged-in family."""

from __future__ import annotations

from datetime import timedelta

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from families.rules import refusal
from families.selectors import family_students, student_in_family
from families.staff import viewing_as
from families.views import family_member
from portal import clock, formatting
from portal.clock import today
from portal.exceptions import PortalError
from portal.params import int_param
from providers import services as provider_services

from . import feeds, selectors, services
from .forms import AbsenceByDateForm, AbsenceSessionsForm
from .models import Absence, CalendarFeed, Class, Enrollment, Location, Session, WaitlistOffer

TABS = [
    ("enrollments", gettext_lazy("Enrolments"), None),
    ("attendance", gettext_lazy("Attendance"), None),
    ("evaluations", gettext_lazy("Evaluations"), None),
    ("absences", gettext_lazy("Future absences"), "future_absences_enabled"),
    ("qr", gettext_lazy("QR code"), "qr_codes_enabled"),
]


def enabled_tabs(provider):
    return [(key, label) for key, label, switch in TABS if not switch or getattr(provider, switch)]


def require_setting(provider, name: str) -> None:
    """A switched-off feature's URLs refuse (404: as if they did not exist)."""
    if not getattr(provider, name):
        raise Http404("This feature is switched off.")


def current_location(request):
    location_id = request.session.get("location_id")
    return Location.objects.filter(pk=location_id).first() if location_id else None


# --- The student page and its tabs ------------------------------------------------------


def tab_enrollments(request, guardian, student):
    groups = selectors.student_enrollments(student)
    return {
        **groups,
        "show_waitlist": request.GET.get("waitlist") != "0",
        "show_past": request.GET.get("past") == "1",
        "may_manage": guardian.may_manage_enrollments,
    }


def tab_attendance(request, guardian, student):
    groups = selectors.student_enrollments(student)
    show_past = request.GET.get("past") == "1"
    attended = [e for e in groups["past"] if e.status != Enrollment.Status.CANCELLED]
    # This term's earlier classes (before a transfer or drop) always show.
    this_term = [e for e in attended if e.klass.term_end >= today()]
    shown = groups["current"] + (attended if show_past else this_term)
    history = selectors.attendance_history(shown)
    return {"rows": [(e, history.get(e.pk, [])) for e in shown], "show_past": show_past}


def tab_evaluations(request, guardian, student):
    groups = selectors.student_enrollments(student)
    return {"levels": selectors.evaluations(student, groups["current"])}


def tab_absences(request, guardian, student):
    absences = list(
        Absence.objects.filter(student=student).prefetch_related("marks__session__klass__programme")
    )
    now = clock.now()
    return {
        "scheduled": [a for a in absences if not a.cancelled_at and a.ends_at > now],
        "earlier": [a for a in absences if a.cancelled_at or a.ends_at <= now],
        "now": now,
        "enrollments": selectors.student_enrollments(student)["current"],
        "may_manage": guardian.may_manage_enrollments,
    }


def tab_qr(request, guardian, student):
    token = services.student_checkin_token(student=student)
    image = qrcode.make(token, image_factory=qrcode.image.svg.SvgPathImage, box_size=12)
    return {"qr_svg": image.to_string(encoding="unicode"), "token": token}


TAB_CONTEXT = {
    "enrollments": tab_enrollments,
    "attendance": tab_attendance,
    "evaluations": tab_evaluations,
    "absences": tab_absences,
    "qr": tab_qr,
}


@require_GET
@family_member
def student(request, guardian, pk, tab):
    student = student_in_family(guardian.family, pk)
    tabs = enabled_tabs(request.tenant)
    if tab not in dict(tabs):
        raise Http404("No such tab.")
    context = {
        "student": student,
        "students": family_students(guardian.family),
        "tabs": tabs,
        "tab": tab,
        "data": TAB_CONTEXT[tab](request, guardian, student),
    }
    template = "enrollments/student.html"
    if request.htmx and not request.htmx.boosted:
        template += "#tab"
    return render(request, template, context)


# --- Enrolment actions ------------------------------------------------------------------


def _managed_enrollment(guardian, pk) -> Enrollment:
    enrollment = selectors.enrollment_in_family(guardian.family, pk)
    if not guardian.may_manage_enrollments:
        raise PermissionDenied(refusal(guardian, "manage_enrollments"))
    return enrollment


def _back_to(enrollment):
    return redirect("enrollments:student", enrollment.student_id, "enrollments")


def _run(request, action, success: str, enrollment, **kwargs):
    try:
        result = action(enrollment=enrollment, **kwargs)
    except PortalError as error:
        messages.error(request, str(error))
        return None
    messages.success(request, success)
    return result


@require_http_methods(["GET", "POST"])
@family_member
def waitlist_cancel(request, guardian, pk):
    require_setting(request.tenant, "cancel_waitlist_enabled")
    enrollment = _managed_enrollment(guardian, pk)
    if request.method == "POST":
        _run(
            request,
            services.waitlist_cancel,
            _("%(name)s has left the waitlist.") % {"name": enrollment.student.first_name},
            enrollment,
            actor=guardian,
        )
        return _back_to(enrollment)
    return render(request, "enrollments/confirm_waitlist.html", {"enrollment": enrollment})


@require_http_methods(["GET", "POST"])
@family_member
def offer(request, guardian, token):
    """A place offered from the waitlist: accept or decline (the e-mailed link)."""
    found = get_object_or_404(
        WaitlistOffer.objects.select_related("enrollment__student", "enrollment__klass__location"),
        token=token,
        enrollment__student__family=guardian.family,
    )
    if request.method == "POST":
        accept = request.POST.get("answer") == "accept"
        try:
            services.waitlist_offer_answer(offer=found, accept=accept, actor=guardian)
        except PortalError as error:
            messages.error(request, str(error))
        else:
            done = _("%(name)s has the place.") if accept else _("Declined: the place goes on.")
            messages.success(request, done % {"name": found.enrollment.student.first_name})
        return _back_to(found.enrollment)
    is_open = found.state == WaitlistOffer.State.OPEN and found.expires_at > clock.now()
    return render(request, "enrollments/offer.html", {"offer": found, "open": is_open})


@require_http_methods(["GET", "POST"])
@family_member
def drop(request, guardian, pk):
    require_setting(request.tenant, "drop_enabled")
    enrollment = _managed_enrollment(guardian, pk)
    if request.method == "POST":
        _run(
            request,
            services.enrollment_drop,
            _("%(name)s is no longer enrolled in %(klass)s.")
            % {"name": enrollment.student.first_name, "klass": enrollment.klass.programme.name},
            enrollment,
            actor=guardian,
        )
        return _back_to(enrollment)
    released = selectors.future_sessions_of(enrollment, after=clock.now())
    context = {
        "enrollment": enrollment,
        "effective": services.drop_effective_date(),
        "released": released,
    }
    return render(request, "enrollments/confirm_drop.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def transfer(request, guardian, pk):
    require_setting(request.tenant, "transfer_enabled")
    enrollment = _managed_enrollment(guardian, pk)
    if enrollment.status != Enrollment.Status.ACTIVE or enrollment.kind != "regular":
        messages.error(request, _("Only a current enrolment can be transferred."))
        return _back_to(enrollment)
    effective = today()
    to = int_param(request, "to")
    if to is not None:
        target = get_object_or_404(
            Class.objects.select_related("programme", "location", "instructor"),
            pk=to,
            programme_id=enrollment.klass.programme_id,
        )
        if request.method == "POST":
            new = _run(
                request,
                services.enrollment_transfer,
                _("%(name)s now goes to %(klass)s.")
                % {"name": enrollment.student.first_name, "klass": target},
                enrollment,
                to_class=target,
                actor=guardian,
            )
            if new is None:
                return redirect(reverse("enrollments:transfer", args=[enrollment.pk]))
            return _back_to(enrollment)
        now = clock.now()
        context = {
            "enrollment": enrollment,
            "target": target,
            "effective": effective,
            "released": selectors.future_sessions_of(enrollment, after=now),
            "booked": selectors.class_sessions_from(target, after=now),
        }
        return render(request, "enrollments/confirm_transfer.html", context)
    location = current_location(request)
    context = {
        "enrollment": enrollment,
        "options": selectors.transfer_options(enrollment, on=effective, current_location=location),
        "current_location": location,
        "locations": list(Location.objects.filter(is_active=True)),
    }
    return render(request, "enrollments/transfer.html", context)


@require_POST
@family_member
def location_choose(request, guardian):
    """Remember the parent's current location (where a provider has several)."""
    location_id = int_param(request, "location", source="POST")
    location = (
        Location.objects.filter(pk=location_id, is_active=True).first() if location_id else None
    )
    if location:
        request.session["location_id"] = location.pk
    else:
        request.session.pop("location_id", None)
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if safe else "/")


# --- Future absences --------------------------------------------------------------------


def _require_absence_manager(guardian) -> None:
    """The page refuses as the service would (which checks again)."""
    if not guardian.may_manage_enrollments:
        raise PermissionDenied(
            _(
                "Only a guardian who may manage enrolments can report or cancel absences. "
                "Ask the family's primary guardian."
            )
        )


def _reach_note(reach) -> str:
    if reach is None:
        return ""
    return _("You can report absences until %(day)s.") % {
        "day": formatting.moment(reach.until - timedelta(minutes=1), "long")
    }


@require_http_methods(["GET", "POST"])
@family_member
def absence_by_date(request, guardian, pk):
    require_setting(request.tenant, "future_absences_enabled")
    student = student_in_family(guardian.family, pk)
    _require_absence_manager(guardian)
    form = AbsenceByDateForm(request.POST or None)
    classes = [e.klass for e in selectors.student_enrollments(student)["current"]]
    form.fields["ends_at"].help_text = " ".join(
        filter(
            None,
            [
                str(form.fields["ends_at"].help_text),
                _reach_note(services.absence_reach(klasses=classes, actor=guardian)),
            ],
        )
    )
    if request.method == "POST" and form.is_valid():
        try:
            absence = services.absence_report_by_date(
                student=student, actor=guardian, **form.cleaned_data
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(
                request,
                _("Absence reported: %(count)d session(s) marked.")
                % {"count": absence.marks.count()},
            )
            return redirect("enrollments:student", student.pk, "absences")
    return render(
        request, "enrollments/absence_form.html", {"student": student, "form": form, "kind": "date"}
    )


@require_http_methods(["GET", "POST"])
@family_member
def absence_by_enrollment(request, guardian, pk, enrollment_pk):
    require_setting(request.tenant, "future_absences_enabled")
    student = student_in_family(guardian.family, pk)
    enrollment = selectors.enrollment_for_student(student, enrollment_pk)
    if enrollment.status != Enrollment.Status.ACTIVE:
        raise Http404("Absences are for classes the child attends.")
    _require_absence_manager(guardian)
    reach = services.absence_reach(klasses=[enrollment.klass], actor=guardian)
    upcoming = Session.objects.filter(
        klass=enrollment.klass,
        status=Session.Status.SCHEDULED,
        starts_at__gt=clock.now(),
        starts_at__lt=clock.now() + timedelta(weeks=10),
    ).filter(Q(starts_at__date__gte=enrollment.start_date))
    if reach is not None:
        upcoming = upcoming.filter(ends_at__lte=reach.until)
    if enrollment.end_date:
        upcoming = upcoming.filter(starts_at__date__lte=enrollment.end_date)
    form = AbsenceSessionsForm(request.POST or None, sessions=upcoming.order_by("starts_at"))
    if request.method == "POST" and form.is_valid():
        try:
            services.absence_report_by_enrollment(
                enrollment=enrollment,
                actor=guardian,
                sessions=list(form.cleaned_data["sessions"]),
                reason=form.cleaned_data["reason"],
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(request, _("Absence reported."))
            return redirect("enrollments:student", student.pk, "absences")
    context = {
        "student": student,
        "form": form,
        "kind": "enrollment",
        "enrollment": enrollment,
        "reach_note": _reach_note(reach),
    }
    return render(request, "enrollments/absence_form.html", context)


@require_POST
@family_member
def absence_cancel(request, guardian, pk):
    require_setting(request.tenant, "future_absences_enabled")
    absence = get_object_or_404(Absence, pk=pk, student__family=guardian.family)
    _require_absence_manager(guardian)
    try:
        services.absence_cancel(absence=absence, actor=guardian)
    except PortalError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("The absence is cancelled."))
    return redirect("enrollments:student", absence.student_id, "absences")


# --- Calendar feeds and policies -----------------------------------------------------------


@require_GET
@family_member
def calendar(request, guardian):
    if viewing_as(request):
        # The links are the family's secrets (anyone holding one sees the
        # sessions): never shown to staff, and none is made on their visit.
        return render(request, "enrollments/calendar.html", {"rows": [], "hidden": True})
    students = family_students(guardian.family)
    live = services.calendar_feeds(family=guardian.family, students=students)
    feeds_ = [(None, live[None])] + [(s, live[s.pk]) for s in students]
    base = f"{request.scheme}://{request.get_host()}"
    rows = [
        {
            "student": student,
            "url": base + reverse("enrollments:feed", args=[feed.token]),
            "webcal": "webcal://"
            + request.get_host()
            + reverse("enrollments:feed", args=[feed.token]),
        }
        for student, feed in feeds_
    ]
    return render(request, "enrollments/calendar.html", {"rows": rows})


@require_POST
@family_member
def calendar_reset(request, guardian):
    student_id = int_param(request, "student", source="POST")
    student = student_in_family(guardian.family, student_id) if student_id else None
    services.calendar_feed_reset(family=guardian.family, student=student)
    messages.success(
        request,
        _("A new calendar link is ready. The old one no longer works: update your calendar app."),
    )
    return redirect("enrollments:calendar")


@login_not_required
@require_GET
def feed(request, token):
    found = (
        CalendarFeed.objects.select_related("family", "student")
        .filter(token=token, revoked_at__isnull=True)
        .first()
    )
    if found is None:
        raise Http404("No such calendar.")
    students = [found.student] if found.student else family_students(found.family)
    body = feeds.calendar_for(
        provider=request.tenant, students=students, host=request.get_host(), feed=found
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    # A family's own schedule: no copy stays in a browser or proxy cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = 'inline; filename="sessions.ics"'
    return response


@require_GET
def policies(request):
    policy = provider_services.policy_current(provider=request.tenant)
    return render(request, "enrollments/policies.html", {"policy": policy})
