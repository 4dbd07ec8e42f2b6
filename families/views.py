"""My account: students, guardians and their access, contact details.

Every lookup goes through the logged-in guardian's family (another family's
id is a 404). Rules live in `families.rules` and `families.services`; views
load, validate, call one service, and turn a PortalError into a message.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import limits
from portal.exceptions import PortalError
from portal.params import parse_int
from portal.uploads import image_response

from . import rules, selectors, services
from .exceptions import InvitationInvalid
from .forms import (
    CONTACT_FORMS,
    AcceptInvitationForm,
    GuardianAddForm,
    GuardianEditForm,
    InviteForm,
    StudentForm,
)
from .models import ContactEmail

ACCOUNT = "families:account"


def family_member(view):
    """The view runs for a guardian of a family; anyone else gets a 404."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        guardian = selectors.guardian_for_request(request)
        if guardian is None:
            raise Http404("No family for this login.")
        return view(request, guardian, *args, **kwargs)

    return wrapper


def primary_only(guardian) -> None:
    if not guardian.is_primary:
        raise PermissionDenied(rules.refusal(guardian, "primary"))


def apply_error(form, error: PortalError) -> None:
    form.add_error(error.field if error.field in form.fields else None, str(error))


def base_url(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


@require_GET
@family_member
def account(request, guardian):
    guardians = selectors.family_guardians(guardian.family)
    context = {
        "me": guardian,
        "family": guardian.family,
        "students": selectors.family_students(guardian.family),
        "guardians": guardians,
        "columns": selectors.contact_columns(guardian, guardians),
        "may_edit_students": rules.may_edit_students(guardian),
        "access_labels": rules.ACCESS_LABELS,
    }
    return render(request, "families/account.html", context)


# --- Problem reports -----------------------------------------------------------------


@require_GET
@family_member
def problem_reports(request, guardian):
    """The family's problem reports, their status and the office's answers."""
    reports = selectors.family_problem_reports(guardian.family)
    return render(request, "families/problem_reports.html", {"reports": reports, "single": False})


@require_GET
@family_member
def problem_report(request, guardian, pk):
    report = selectors.problem_report_in_family(guardian.family, pk)
    return render(request, "families/problem_reports.html", {"reports": [report], "single": True})


# --- Students ----------------------------------------------------------------------


def _photo_within_limit(request) -> tuple[object, limits.LimitReached | None]:
    """The files to read: a photo posted counts against the login's limit
    (portal.limits.PHOTO) before it is decoded; past it, it is not read."""
    if request.method != "POST" or not request.FILES:
        return None, None
    try:
        limits.take(limits.PHOTO, request.user.pk, field="photo")
    except limits.LimitReached as refused:
        return None, refused
    return request.FILES, None


@require_http_methods(["GET", "POST"])
@family_member
def student_add(request, guardian):
    if not rules.may_edit_students(guardian):
        raise PermissionDenied(rules.refusal(guardian, "edit_students"))
    files, refused = _photo_within_limit(request)
    form = StudentForm(request.POST or None, files)
    if refused is not None:
        form.is_valid()
        form.add_error("photo", str(refused))
    elif request.method == "POST" and form.is_valid():
        try:
            student = services.student_create(
                family=guardian.family, actor=guardian, **form.cleaned_data
            )
        except (PortalError, ValidationError) as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("%(name)s is added.") % {"name": student.first_name})
            return redirect(ACCOUNT)
    return render(request, "families/student_form.html", {"form": form, "student": None})


@require_http_methods(["GET", "POST"])
@family_member
def student_edit(request, guardian, pk):
    student = selectors.student_in_family(guardian.family, pk)
    if not rules.may_edit_students(guardian):
        raise PermissionDenied(rules.refusal(guardian, "edit_students"))
    files, refused = _photo_within_limit(request)
    form = StudentForm(request.POST or None, files, instance=student)
    if refused is not None:
        form.is_valid()
        form.add_error("photo", str(refused))
    elif request.method == "POST" and form.is_valid():
        try:
            services.student_update(student=student, actor=guardian, **form.cleaned_data)
        except (PortalError, ValidationError) as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": student.first_name})
            return redirect(ACCOUNT)
    return render(request, "families/student_form.html", {"form": form, "student": student})


@require_GET
@family_member
def student_photo(request, guardian, pk):
    student = selectors.student_in_family(guardian.family, pk)
    if not student.photo:
        raise Http404
    response = image_response(student.photo, stem="photo")
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


# --- Guardians ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@family_member
def guardian_add(request, guardian):
    primary_only(guardian)
    form = GuardianAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        send = data.pop("send_invitation")
        try:
            with transaction.atomic():  # no guardian without the invitation asked for
                added = services.guardian_add(family=guardian.family, actor=guardian, **data)
                if send:
                    services.invitation_send(
                        guardian=added,
                        actor=guardian,
                        email=data["email"],
                        base_url=base_url(request),
                    )
        except PortalError as error:
            apply_error(form, error)
        else:
            text = (
                _("%(name)s is added and invited by e-mail.") if send else _("%(name)s is added.")
            )
            messages.success(request, text % {"name": added.full_name})
            return redirect(ACCOUNT)
    return render(request, "families/guardian_form.html", {"form": form, "guardian": None})


@require_http_methods(["GET", "POST"])
@family_member
def guardian_edit(request, guardian, pk):
    target = selectors.guardian_in_family(guardian.family, pk)
    if target != guardian:
        primary_only(guardian)
    names_editable = rules.may_edit_details_of(guardian, target)
    permissions_editable = guardian.is_primary and not target.is_primary
    initial = {
        "first_name": target.first_name,
        "last_name": target.last_name,
        "can_pay": target.can_pay,
        "can_edit_students": target.can_edit_students,
        "can_manage_enrollments": target.can_manage_enrollments,
    }
    form = GuardianEditForm(
        request.POST or None,
        initial=initial,
        names_editable=names_editable,
        permissions_editable=permissions_editable,
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.guardian_update(guardian=target, actor=guardian, **form.cleaned_data)
        except PortalError as error:
            apply_error(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": target.full_name})
            return redirect(ACCOUNT)
    context = {
        "form": form,
        "guardian": target,
        "access": rules.access_state(target),
        "access_labels": rules.ACCESS_LABELS,
        "names_editable": names_editable,
    }
    return render(request, "families/guardian_form.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def guardian_invite(request, guardian, pk):
    primary_only(guardian)
    target = selectors.guardian_in_family(guardian.family, pk)
    if target.is_primary:
        raise Http404
    if target.user_id and target.user.is_active:
        messages.info(
            request,
            _("%(name)s can log in already. Use “Reset password” if they forgot it.")
            % {"name": target.first_name},
        )
        return redirect(ACCOUNT)
    latest = next(iter(target.invitations.all()), None)
    suggested = (
        target.user.email
        if target.user_id
        else latest.email
        if latest
        else next((e.email for e in target.emails.all()), "")
    )
    form = InviteForm(request.POST or None, initial={"email": suggested})
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_send(
                guardian=target,
                actor=guardian,
                email=form.cleaned_data["email"],
                base_url=base_url(request),
            )
        except PortalError as error:
            apply_error(form, error)
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s. The link works for 7 days.")
                % {"email": form.cleaned_data["email"]},
            )
            return redirect(ACCOUNT)
    context = {"form": form, "guardian": target, "resend": latest is not None}
    return render(request, "families/guardian_invite.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def guardian_revoke(request, guardian, pk):
    primary_only(guardian)
    target = selectors.guardian_in_family(guardian.family, pk)
    if request.method == "POST":
        try:
            services.invitation_revoke(guardian=target, actor=guardian)
        except PortalError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request, _("%(name)s can no longer log in.") % {"name": target.full_name}
            )
        return redirect(ACCOUNT)
    return render(request, "families/guardian_revoke.html", {"guardian": target})


@require_POST
@family_member
def guardian_reset_password(request, guardian, pk):
    primary_only(guardian)
    target = selectors.guardian_in_family(guardian.family, pk)
    try:
        services.guardian_password_reset(guardian=target, actor=guardian, request=request)
    except PortalError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("%(name)s will get an e-mail to choose a new password.") % {"name": target.full_name},
        )
    return redirect(ACCOUNT)


# --- Contact details ---------------------------------------------------------------


def contact_owner(guardian, raw: str | None):
    """The guardian a value goes to: `unassigned`, or a guardian of this family."""
    if raw in (None, "", "unassigned"):
        return None
    return selectors.guardian_in_family(guardian.family, parse_int(raw, "guardian") or 0)


@require_http_methods(["GET", "POST"])
@family_member
def contact_add(request, guardian, kind):
    form_class = CONTACT_FORMS.get(kind) or _not_found()
    owner = contact_owner(guardian, request.GET.get("guardian", str(guardian.pk)))
    if not rules.may_edit_details_of(guardian, owner):
        raise PermissionDenied(_("Only this guardian can add their own contact details."))
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_save(contact=form.instance, actor=guardian, owner=owner)
        except PortalError as error:
            apply_error(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(reverse(ACCOUNT) + "#contacts")
    context = {"form": form, "kind": kind, "owner": owner, "contact": None}
    return render(request, "families/contact_form.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def contact_edit(request, guardian, kind, pk):
    form_class = CONTACT_FORMS.get(kind) or _not_found()
    contact = selectors.contact_in_family(form_class._meta.model, guardian.family, pk)
    if not rules.may_edit_details_of(guardian, contact.guardian):
        raise PermissionDenied(_("Only this guardian can change their own contact details."))
    form = form_class(request.POST or None, instance=contact)
    is_login = isinstance(contact, ContactEmail) and contact.is_login
    if is_login:
        form.fields["email"].disabled = True
        form.fields["email"].help_text = _("This is the login e-mail address.")
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_save(contact=form.instance, actor=guardian, owner=contact.guardian)
        except PortalError as error:
            apply_error(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(reverse(ACCOUNT) + "#contacts")
    context = {
        "form": form,
        "kind": kind,
        "owner": contact.guardian,
        "contact": contact,
        "is_login": is_login,
    }
    return render(request, "families/contact_form.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def contact_delete(request, guardian, kind, pk):
    form_class = CONTACT_FORMS.get(kind) or _not_found()
    contact = selectors.contact_in_family(form_class._meta.model, guardian.family, pk)
    if request.method == "POST":
        try:
            services.contact_delete(contact=contact, actor=guardian)
        except PortalError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Removed %(value)s.") % {"value": contact})
        return redirect(reverse(ACCOUNT) + "#contacts")
    if not rules.may_edit_details_of(guardian, contact.guardian):
        raise PermissionDenied(_("Only this guardian can remove their own contact details."))
    return render(request, "families/contact_delete.html", {"contact": contact, "kind": kind})


@require_POST
@family_member
def contact_assign(request, guardian, kind, pk):
    form_class = CONTACT_FORMS.get(kind) or _not_found()
    contact = selectors.contact_in_family(form_class._meta.model, guardian.family, pk)
    owner = contact_owner(guardian, request.POST.get("guardian"))
    try:
        services.contact_assign(contact=contact, actor=guardian, owner=owner)
    except PortalError as error:
        messages.error(request, str(error))
    else:
        name = owner.full_name if owner else _("Unassigned")
        messages.success(
            request, _("%(value)s moved to %(name)s.") % {"value": contact, "name": name}
        )
    return redirect(reverse(ACCOUNT) + "#contacts")


def _not_found():
    raise Http404("No such kind of contact detail.")


# --- Invitations (the invited guardian, not logged in yet) ------------------------------


@login_not_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request, token):
    try:
        invitation = services.invitation_check(token)
    except InvitationInvalid as error:
        return render(
            request,
            "families/invitation_invalid.html",
            {"message": str(error), "reason": error.reason},
            status=410 if error.reason in ("used", "revoked", "expired") else 404,
        )
    form = AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(
                token=token, password=form.cleaned_data["new_password1"]
            )
        except ValidationError as error:
            form.add_error("new_password1", error)
        except InvitationInvalid as error:
            return render(
                request,
                "families/invitation_invalid.html",
                {"message": str(error), "reason": error.reason},
                status=410,
            )
        else:
            login(request, user, backend="families.backends.PortalBackend")
            messages.success(
                request,
                _("Welcome, %(name)s. You can now log in with %(email)s.")
                % {"name": invitation.guardian.first_name, "email": user.email},
            )
            return redirect("dashboard")
    return render(
        request, "families/invitation_accept.html", {"form": form, "invitation": invitation}
    )
