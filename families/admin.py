from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RelatedDropdownFilter

from accounts.models import User
from portal.adminactions import ReadOnlyAdmin, for_each
from portal.adminsample import AdminSample, first_pk
from portal.exceptions import PortalError

from . import rules, selectors, services
from .models import (
    ContactEmail,
    ContactPhone,
    Family,
    Guardian,
    Invitation,
    MailingAddress,
    ProblemReport,
    StaffView,
    Student,
)
from .staff import VIEW_AS


class GuardianInline(TabularInline):
    model = Guardian
    extra = 0
    fields = [
        "first_name",
        "last_name",
        "user",
        "is_primary",
        "can_pay",
        "can_edit_students",
        "can_manage_enrollments",
    ]
    # The login comes from an invitation, the primary guardian and what the
    # others may do are the family's own choices (the portal's account page):
    # shown here, changed there or through the guardian's actions.
    readonly_fields = [
        "user",
        "is_primary",
        "can_pay",
        "can_edit_students",
        "can_manage_enrollments",
    ]
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        # A family made at the desk names its primary guardian as it is made;
        # later the guardian's action "Make the primary guardian" changes it.
        shown = list(super().get_readonly_fields(request, obj))
        return shown if obj else [f for f in shown if f != "is_primary"]


class StudentInline(TabularInline):
    model = Student
    extra = 0
    fields = ["first_name", "last_name", "date_of_birth", "gender", "medical_notes"]
    show_change_link = True


class ContactInline(TabularInline):
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Only this family's guardians in the owner drop-down.
        if db_field.name == "guardian":
            family_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = (
                Guardian.objects.filter(family_id=family_id)
                if family_id
                else Guardian.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class EmailInline(ContactInline):
    model = ContactEmail
    fields = ["email", "guardian", "blasts_opt_out"]


class PhoneInline(ContactInline):
    model = ContactPhone
    fields = ["number", "kind", "guardian", "sms_opt_out"]


class AddressInline(ContactInline):
    model = MailingAddress
    fields = ["line1", "line2", "postcode", "city", "region", "country", "guardian"]


@admin.register(Family)
class FamilyAdmin(ModelAdmin):
    list_display = ["name", "children", "guardian_names", "created_at"]
    list_filter = ["created_at"]
    search_fields = [
        "name",
        "guardians__first_name",
        "guardians__last_name",
        "guardians__user__email",
        "emails__email",
        "phones__number",
        "students__first_name",
        "students__last_name",
    ]
    inlines = [GuardianInline, StudentInline, EmailInline, PhoneInline, AddressInline]
    sample = AdminSample(
        add=lambda: {
            "name": "Sample",
            "guardians-0-first_name": "Sam",
            "guardians-0-last_name": "Sample",
            "students-0-first_name": "Kit",
            "students-0-last_name": "Sample",
        }
    )

    # The family's whole picture at the front desk, and "View as this family"
    # for staff who may (families.view_as_family).
    def get_list_display(self, request):
        shown = [*super().get_list_display(request), picture_link]
        return [*shown, view_as_link] if request.user.has_perm(VIEW_AS) else shown

    def get_readonly_fields(self, request, obj=None):
        shown = [*super().get_readonly_fields(request, obj), picture_link]
        return [*shown, view_as_link] if request.user.has_perm(VIEW_AS) else shown

    def get_search_results(self, request, queryset, search_term):
        """Also a phone number typed any way ("041 555 123")."""
        found, _duplicates = super().get_search_results(request, queryset, search_term)
        by_phone = selectors.families_by_phone(search_term, region=request.tenant.country)
        if by_phone is not None:
            found = found | queryset.filter(pk__in=by_phone)
        return found, True

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("students", "guardians")

    @admin.display(description=_("children"))
    def children(self, family):
        return ", ".join(s.first_name for s in family.students.all()) or "-"

    @admin.display(description=_("guardians"))
    def guardian_names(self, family):
        return ", ".join(g.full_name for g in family.guardians.all()) or "-"


class InvitationInline(TabularInline):
    model = Invitation
    extra = 0
    fields = ("email", "created_at", "expires_at", "accepted_at", "revoked_at", "sent_by")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Guardian)
class GuardianAdmin(ModelAdmin):
    list_display = ["full_name", "family", "is_primary", "access", "can_pay"]
    list_select_related = ["family", "user"]
    search_fields = [
        "first_name",
        "last_name",
        "user__email",
        "emails__email",
        "phones__number",
        "family__name",
    ]
    list_filter = ["is_primary", "can_pay"]
    autocomplete_fields = ["family"]
    inlines = [InvitationInline]
    actions = ["send_invitation", "make_primary", "revoke_access"]

    def get_readonly_fields(self, request, obj=None):
        # As on the family page: logins come from invitations, the primary
        # flag and permissions are the family's choices.
        locked = ["user", "is_primary", "can_pay", "can_edit_students", "can_manage_enrollments"]
        return locked if obj else ["user"]

    sample = AdminSample(
        add=lambda: {"family": first_pk(Family), "first_name": "Alex", "last_name": "Sample"}
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("invitations")

    @admin.display(description=_("access"))
    def access(self, guardian):
        return rules.ACCESS_LABELS[rules.access_state(guardian)]

    @admin.action(description=_("Send (or re-send) a login invitation"), permissions=["change"])
    def send_invitation(self, request, queryset):
        base_url = f"{request.scheme}://{request.get_host()}"
        for guardian in queryset.select_related("user"):
            email = (
                guardian.user.email
                if guardian.user_id
                else next((e.email for e in guardian.emails.all()), "")
            )
            if guardian.is_primary or not email:
                self.message_user(
                    request,
                    _("%(name)s: no invitation (primary guardian, or no e-mail address).")
                    % {"name": guardian.full_name},
                    messages.WARNING,
                )
                continue
            try:
                services.invitation_send(
                    guardian=guardian,
                    actor=None,
                    email=email,
                    base_url=base_url,
                    staff_user=request.user,
                )
            except PortalError as error:
                self.message_user(request, f"{guardian.full_name}: {error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("Invitation sent to %(email)s.") % {"email": email},
                    messages.SUCCESS,
                )

    @admin.action(description=_("Make the primary guardian of the family"), permissions=["change"])
    def make_primary(self, request, queryset):
        for_each(
            self,
            request,
            queryset,
            lambda guardian: services.guardian_make_primary(guardian=guardian, actor=request.user),
            _("now the primary guardian"),
        )

    @admin.action(description=_("Revoke login access"), permissions=["change"])
    def revoke_access(self, request, queryset):
        for guardian in queryset:
            try:
                services.invitation_revoke(guardian=guardian, actor=None)
            except PortalError as error:
                self.message_user(request, f"{guardian.full_name}: {error}", messages.WARNING)
            else:
                self.message_user(
                    request,
                    _("%(name)s can no longer log in.") % {"name": guardian.full_name},
                    messages.SUCCESS,
                )


@admin.register(Student)
class StudentAdmin(ModelAdmin):
    list_display = ["full_name", "family", "date_of_birth", "gender"]
    list_filter = [
        ("enrollments__klass__location", RelatedDropdownFilter),
        ("enrollments__klass__programme", RelatedDropdownFilter),
        "gender",
    ]
    search_fields = ["first_name", "last_name", "family__name"]
    list_select_related = ["family"]
    autocomplete_fields = ["family"]
    sample = AdminSample(
        add=lambda: {"family": first_pk(Family), "first_name": "Robin", "last_name": "Sample"}
    )


# --- Staff: see what the family sees; problem reports ---------------------------------------


# Links in lists and read-only fields, as unfold styles its own.
LINK_CLASSES = "font-medium text-primary-600 dark:text-primary-500"


def _family_link(family, url_name: str, label: str) -> str:
    if family.pk is None:  # the add form
        return "-"
    return format_html(
        '<a class="{}" href="{}">{}</a>', LINK_CLASSES, reverse(url_name, args=[family.pk]), label
    )


@admin.display(description=_("front desk"))
def picture_link(family):
    return _family_link(family, "desk:family", _("Whole picture"))


@admin.display(description=_("portal"))
def view_as_link(family):
    return _family_link(family, "view_as_start", _("View as this family"))


@admin.register(StaffView)
class StaffViewAdmin(ReadOnlyAdmin, ModelAdmin):
    """A record: PostgreSQL refuses changes too (portal.models.append_only)."""

    list_display = ["at", "staff", "family"]
    list_filter = ["staff", "at"]
    list_select_related = ["staff", "family"]
    search_fields = ["family__name", "staff__email"]
    readonly_fields = ["at", "staff", "family"]
    sample = AdminSample(
        add=None,
        make=lambda: StaffView.objects.create(
            staff_id=first_pk(User, is_staff=True), family_id=first_pk(Family)
        ),
    )


@admin.register(ProblemReport)
class ProblemReportAdmin(ModelAdmin):
    list_display = ["created_at", "family", "page", "status"]
    list_filter = ["status", "created_at"]
    list_select_related = ["family"]
    search_fields = ["family__name", "clicked", "expected", "page"]
    readonly_fields = [
        "created_at",
        "family",
        "reporter",
        "page",
        "focused_child",
        "clicked",
        "expected",
        "user_agent",
        "screenshot_link",
        "answered_at",
        "answered_by_name",
    ]
    fields = [*readonly_fields, "status", "answer", "staff_note"]
    sample = AdminSample(
        add=None,
        make=lambda: ProblemReport.objects.create(
            family_id=first_pk(Family), page="/", clicked="Pay", expected="A receipt"
        ),
    )

    def has_add_permission(self, request):
        return False  # parents report from the portal

    def save_model(self, request, obj, form, change):
        # The service saves, and e-mails a new answer to the family.
        data = form.cleaned_data
        services.problem_report_answer(
            report=obj,
            actor=request.user,
            answer=data.get("answer", ""),
            status=data.get("status", obj.status),
            staff_note=data.get("staff_note"),
        )
        if "answer" in form.changed_data and data.get("answer", "").strip():
            self.message_user(request, _("The answer is e-mailed to the family."))

    @admin.display(description=_("screenshot"))
    def screenshot_link(self, report):
        if not report.screenshot:
            return "-"
        return format_html(
            '<a class="{}" href="{}">{}</a>',
            LINK_CLASSES,
            reverse("report_screenshot", args=[report.pk]),
            _("Open"),
        )
