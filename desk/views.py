"""The front desk's pages: the day (sessions, what needs attention), a
session's roster, a class's skills, a family's whole picture and search.
Thin callers of the apps' selectors and services, inside the staff admin."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.services import staff_language_set
from benefits import selectors as benefit_selectors
from benefits import services as benefit_services
from benefits.models import MakeupRequest
from billing import selectors as billing_selectors
from enrollments import selectors as enrollment_selectors
from enrollments import services as enrollment_services
from enrollments.forms import AbsenceByDateForm
from enrollments.models import Attendance, Class, Evaluation, Session, Skill
from families import selectors as family_selectors
from families import services as family_services
from families.models import Family, Student
from portal import clock
from portal.clock import local, today
from portal.exceptions import PortalError
from portal.params import parse_int
from portal.permissions import staff_permission_required
from portal.tenancy import current_provider

SESSIONS = "enrollments.view_session"
FAMILIES = "families.view_family"


def _page(request: HttpRequest, template: str, title: str, **context: Any) -> HttpResponse:
    """A page inside the staff admin: its header, navigation and colours."""
    return render(
        request, template, {**admin.site.each_context(request), "title": title, **context}
    )


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


def _staff(request: HttpRequest) -> User:
    """The staff login (the permission decorator let only staff in)."""
    user = request.user
    assert isinstance(user, User)
    return user


def _day(raw: str | None) -> date:
    """?day=YYYY-MM-DD within a few years of today; today otherwise."""
    try:
        day = date.fromisoformat(raw) if raw else today()
    except ValueError:
        return today()
    return day if abs((day - today()).days) <= 3660 else today()


def _pk(raw: str | None, name: str) -> int | None:
    return parse_int(raw, name)


# --- The day ------------------------------------------------------------------------------


@staff_permission_required(SESSIONS)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Today's and tomorrow's sessions per location, and what needs the desk."""
    day = _day(request.GET.get("day"))
    can = request.user.has_perm
    days = []
    both = {on: enrollment_selectors.sessions_on(on) for on in (day, day + timedelta(days=1))}
    places = enrollment_selectors.session_places([s for ss in both.values() for s in ss])
    for on, sessions in both.items():
        by_location = groupby(sessions, key=lambda s: s.klass.location)
        days.append(
            {
                "date": on,
                "locations": [
                    (location, [(s, places[s.pk]) for s in items])
                    for location, items in by_location
                ],
                "count": len(sessions),
            }
        )
    context: dict[str, Any] = {
        "day": day,
        "days": days,
        "previous": day - timedelta(days=1),
        "following": day + timedelta(days=1),
        "is_today": day == today(),
        "languages": settings.LANGUAGES,
        "absences": enrollment_selectors.absences_on(day)
        if can("enrollments.view_absence")
        else None,
    }
    if can("benefits.view_makeuprequest"):
        context["requests"] = benefit_selectors.pending_makeup_requests()
        context["may_decide"] = can("benefits.change_makeuprequest")
    if can("enrollments.view_enrollment"):
        context["offers"] = enrollment_selectors.open_offers()
        context["room"] = enrollment_selectors.classes_with_room_and_waitlist(on=today())
        context["may_offer"] = can("enrollments.change_enrollment")
    if can("families.view_problemreport"):
        context["reports"] = family_selectors.new_problem_reports()
    if can("billing.view_ledgerentry"):
        owing, owing_count, owing_total = billing_selectors.families_owing(limit=8)
        context.update(owing=owing, owing_count=owing_count, owing_total=owing_total)
    if can("billing.view_finding"):
        findings, findings_count = billing_selectors.recent_findings(limit=6)
        context.update(
            findings=findings,
            findings_count=findings_count,
            findings_days=billing_selectors.FINDINGS_DAYS,
        )
    return _page(request, "desk/home.html", _("Front desk"), **context)


@staff_permission_required(SESSIONS)
@require_POST
def language(request: HttpRequest) -> HttpResponse:
    """The staff login's own language for the admin and the front desk."""
    try:
        staff_language_set(user=_staff(request), language=request.POST.get("language", ""))
    except PortalError as error:
        messages.error(request, str(error))
    return _back(request, reverse("desk:home"))


# --- A session's roster --------------------------------------------------------------------

MARKS = [
    (Attendance.Status.PRESENT, _("Present")),
    (Attendance.Status.LATE, _("Late")),
    (Attendance.Status.ABSENT, _("Absent")),
    (Attendance.Status.EXCUSED, _("Excused")),
]


@staff_permission_required(SESSIONS)
@require_http_methods(["GET", "POST"])
def roster(request: HttpRequest, pk: int) -> HttpResponse:
    """Everyone expected at a session, attendance taken in one screen."""
    session = get_object_or_404(
        Session.objects.select_related(
            "klass__programme", "klass__location", "klass__instructor", "klass__level"
        ),
        pk=pk,
    )
    rows = enrollment_selectors.session_roster(session)
    errors: dict[int, str] = {}
    if request.method == "POST":
        everyone = request.POST.get("everyone")
        saved = 0
        for row in rows:
            status = request.POST.get(f"mark-{row.enrollment.pk}", "")
            if everyone and not row.attendance and not status:
                status = Attendance.Status.EXCUSED if row.absence_reported else everyone
            if not status or status == row.attendance:
                continue
            try:
                enrollment_services.attendance_record(
                    session=session, enrollment=row.enrollment, status=status, actor=_staff(request)
                )
                saved += 1
            except PortalError as error:
                errors[row.enrollment.pk] = str(error)
        if errors:  # the marks that were not saved stay as chosen, with the reason
            rows = enrollment_selectors.session_roster(session)
            for row in rows:
                if row.enrollment.pk in errors:
                    row.attendance = request.POST.get(f"mark-{row.enrollment.pk}", "")
        else:
            if saved:
                messages.success(
                    request,
                    _("Attendance saved for %(n)d children.") % {"n": saved}
                    if saved != 1
                    else _("Attendance saved for one child."),
                )
            else:
                messages.info(request, _("Nothing changed."))
            return redirect("desk:roster", pk=session.pk)
    for row in rows:
        row.error = errors.get(row.enrollment.pk, "")
    counts = {status: sum(1 for r in rows if r.attendance == status) for status, _label in MARKS}
    return _page(
        request,
        "desk/roster.html",
        _("Roster"),
        session=session,
        starts=local(session.starts_at),
        ends=local(session.ends_at),
        rows=rows,
        marks=MARKS,
        counts=counts,
        not_taken=sum(1 for r in rows if not r.attendance),
        may_mark=request.user.has_perm("enrollments.change_attendance")
        and not session.is_cancelled
        and local(session.starts_at).date() <= today(),
        is_future=local(session.starts_at).date() > today(),
        may_evaluate=bool(session.klass.level_id)
        and request.user.has_perm("enrollments.view_evaluation"),
    )


# --- A class's skills ----------------------------------------------------------------------

# One tap moves a skill on; on "achieved" it steps back to "working on it"
# (a slip of the finger is one tap to undo, never a reset to nothing).
NEXT_STATUS = {
    "": Evaluation.Status.WORKING,
    Evaluation.Status.NOT_STARTED: Evaluation.Status.WORKING,
    Evaluation.Status.WORKING: Evaluation.Status.ACHIEVED,
    Evaluation.Status.ACHIEVED: Evaluation.Status.WORKING,
}


@staff_permission_required("enrollments.view_evaluation")
@require_http_methods(["GET", "POST"])
def skills(request: HttpRequest, pk: int) -> HttpResponse:
    """The class's children against its level's skills: one click moves a
    child's skill on (not started, working on it, achieved)."""
    klass = get_object_or_404(
        Class.objects.select_related("programme", "location", "level", "instructor"), pk=pk
    )
    session_pk = _pk(request.GET.get("session") or request.POST.get("session"), "session")
    back = reverse("desk:skills", args=[klass.pk])
    if session_pk:
        back += "?" + urlencode({"session": session_pk})
    if request.method == "POST":
        student = enrollment_selectors.class_student(
            klass, _pk(request.POST.get("student"), "student") or 0, on=today()
        )
        skill = get_object_or_404(
            Skill, pk=_pk(request.POST.get("skill"), "skill") or 0, level_id=klass.level_id
        )
        error = ""
        evaluation: Evaluation | None
        try:
            evaluation = enrollment_services.evaluation_record(
                student=student,
                skill=skill,
                status=request.POST.get("status", ""),
                actor=_staff(request),
            )
        except PortalError as refused:
            error = str(refused)
            evaluation = enrollment_selectors.newest_evaluation(student, skill)
        if request.htmx:  # type: ignore[attr-defined]
            return render(
                request,
                "desk/skill_cell.html",
                {
                    "klass": klass,
                    "student": student,
                    "cell": enrollment_selectors.SkillRow(skill, evaluation),
                    "next_status": NEXT_STATUS,
                    "session_pk": session_pk or "",
                    "may_evaluate": True,
                    "error": error,
                },
            )
        if error:
            messages.error(request, error)
        return redirect(back)
    grid = enrollment_selectors.class_skill_grid(klass, on=today())
    return _page(
        request,
        "desk/skills.html",
        _("Skills"),
        klass=klass,
        grid=grid,
        next_status=NEXT_STATUS,
        session_pk=session_pk or "",
        statuses=Evaluation.Status.choices,
        may_evaluate=request.user.has_perm("enrollments.add_evaluation"),
    )


# --- Search and a family's whole picture ---------------------------------------------------


@staff_permission_required(FAMILIES)
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    hits = family_selectors.family_search(query, region=current_provider().country)
    if len(hits) == 1:
        return redirect("desk:family", pk=hits[0].family.pk)
    return _page(request, "desk/search.html", _("Find a family"), query=query, hits=hits)


@staff_permission_required(FAMILIES)
@require_GET
def family(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything about one family on one screen, with the desk's actions."""
    family = get_object_or_404(Family, pk=pk)
    can = request.user.has_perm
    students = family_selectors.family_students(family)
    enrollments = enrollment_selectors.students_enrollments(students)
    context: dict[str, Any] = {
        "family": family,
        "contacts": family_selectors.family_contacts(family),
        "children": [(s, enrollments[s.pk]) for s in students],
        "next_sessions": enrollment_selectors.upcoming_sessions(students, limit=6),
        "notes": family_selectors.family_notes(family) if can("families.view_familynote") else None,
        "may_note": can("families.add_familynote"),
        "may_view_as": can("families.view_as_family"),
    }
    if can("benefits.view_makeuptoken"):
        context["tokens"] = benefit_selectors.token_groups(students, with_history=False)
    if can("benefits.view_pass"):
        context["passes"] = benefit_selectors.pass_groups(family, students, with_history=False)
    if can("benefits.view_creditgrant"):
        context["credit"] = benefit_selectors.family_credit_balance(family)
    if can("benefits.view_discount"):
        context["discounts"] = benefit_selectors.discount_groups(
            family, students, with_history=False
        )
    if can("benefits.view_makeuprequest"):
        context["requests"] = benefit_selectors.makeup_requests(
            students, status=MakeupRequest.Status.PENDING
        )
        context["may_decide"] = can("benefits.change_makeuprequest")
    if can("billing.view_order"):
        context["orders"] = billing_selectors.order_groups(family, paid_limit=5)
        context["money"] = billing_selectors.financials(family)
    if can("billing.view_payment"):
        context["payments"] = billing_selectors.recent_payments(family)
    return _page(request, "desk/family.html", family.name, **context)


@staff_permission_required("families.add_familynote")
@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    family = get_object_or_404(Family, pk=pk)
    try:
        family_services.family_note_add(
            family=family, text=request.POST.get("text", ""), actor=_staff(request)
        )
        messages.success(request, _("Note saved."))
    except PortalError as error:
        messages.error(request, str(error))
    return redirect(reverse("desk:family", args=[family.pk]) + "#notes")


# --- The desk's actions --------------------------------------------------------------------


@staff_permission_required("enrollments.add_absence")
@require_http_methods(["GET", "POST"])
def absence_add(request: HttpRequest, pk: int) -> HttpResponse:
    """A parent phones in an absence: the same form and rules as the
    parent's own (make-up tokens by the provider's rules)."""
    student = get_object_or_404(Student.objects.select_related("family"), pk=pk)
    start = local(clock.now()).replace(minute=0, second=0, microsecond=0)
    form = AbsenceByDateForm(
        request.POST or None,
        initial={"starts_at": start, "ends_at": start.replace(hour=23, minute=59)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            absence = enrollment_services.absence_report_by_date(
                student=student, actor=_staff(request), **form.cleaned_data
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(
                request,
                _("Absence recorded for %(name)s: %(count)d session(s) marked.")
                % {"name": student.first_name, "count": absence.marks.count()},
            )
            return redirect("desk:family", pk=student.family_id)
    return _page(
        request,
        "desk/absence.html",
        _("Report an absence"),
        student=student,
        form=form,
    )


@staff_permission_required("benefits.change_makeuprequest")
@require_POST
def makeup_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve (booking the place) or decline a make-up request; the family
    is e-mailed the decision and the answer."""
    makeup = get_object_or_404(MakeupRequest.objects.select_related("student"), pk=pk)
    approve = request.POST.get("decision") == "approve"
    try:
        benefit_services.makeup_request_decide(
            request=makeup,
            approve=approve,
            actor=_staff(request),
            answer=request.POST.get("answer", "").strip()[:300],
        )
        messages.success(
            request,
            (_("Approved: %(name)s is booked in.") if approve else _("Declined for %(name)s."))
            % {"name": makeup.student.first_name},
        )
    except PortalError as error:
        messages.error(request, str(error))
    return _back(request, reverse("desk:home"))


@staff_permission_required("enrollments.change_enrollment")
@require_POST
def offer_next(request: HttpRequest, pk: int) -> HttpResponse:
    """Offer a class's free place to the next child on its waitlist."""
    klass = get_object_or_404(Class, pk=pk)
    try:
        offer = enrollment_services.waitlist_offer_next(klass=klass, actor=_staff(request))
        messages.success(
            request,
            _("Place offered to %(name)s; the family has been e-mailed.")
            % {"name": offer.enrollment.student},
        )
    except PortalError as error:
        messages.error(request, str(error))
    return _back(request, reverse("desk:home"))
