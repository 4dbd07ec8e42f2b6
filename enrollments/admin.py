from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from families.models import Student
from portal.adminsample import AdminSample, first_pk
from portal.clock import today
from portal.exceptions import PortalError

from . import selectors, services
from .models import (
    Absence,
    AbsenceMark,
    Attendance,
    Class,
    Enrollment,
    EnrollmentChange,
    Evaluation,
    Instructor,
    Level,
    Location,
    Programme,
    Session,
    Skill,
)

admin.site.register(
    Location,
    search_fields=["name"],
    list_display=["name", "address", "is_active"],
    sample=AdminSample(add=lambda: {"name": "Sample pool"}),
)
admin.site.register(
    Instructor, search_fields=["name"], sample=AdminSample(add=lambda: {"name": "Sample coach"})
)
admin.site.register(
    Programme, search_fields=["name"], sample=AdminSample(add=lambda: {"name": "Sample lessons"})
)


class SkillInline(admin.TabularInline):
    model = Skill
    extra = 1


@admin.register(Level)
class LevelAdmin(admin.ModelAdmin):
    list_display = ["name", "order"]
    inlines = [SkillInline]
    sample = AdminSample(add=lambda: {"name": "Sample level", "order": 9, "skills-0-name": "Float"})


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    fk_name = "klass"
    extra = 0
    fields = ("student", "kind", "status", "start_date", "end_date")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.WAITLISTED])
            .select_related("student")
        )


@admin.register(Class)
class ClassAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "location",
        "level",
        "instructor",
        "places",
        "waitlist",
        "term_start",
        "term_end",
    ]
    list_filter = ["location", "programme", "weekday", "is_active"]
    search_fields = ["programme__name", "location__name", "instructor__name"]
    list_select_related = ["programme", "location", "level", "instructor"]
    inlines = [EnrollmentInline]
    actions = ["generate_sessions"]
    sample = AdminSample(
        add=lambda: {
            "programme": first_pk(Programme),
            "location": first_pk(Location),
            "weekday": 2,
            "start_time": "16:30",
            "duration_minutes": 45,
            "capacity": 6,
            "term_start": "2031-01-06",
            "term_end": "2031-03-31",
        }
    )

    def get_queryset(self, request):
        return selectors.with_free_places(super().get_queryset(request), on=today()).annotate(
            waiting=Count("enrollments", filter=Q(enrollments__status="waitlisted"))
        )

    @admin.display(description=_("enrolled / capacity"))
    def places(self, klass):
        return f"{klass.taken} / {klass.capacity}"

    @admin.display(description=_("waitlist"))
    def waitlist(self, klass):
        return klass.waiting

    @admin.action(description=_("Generate the term's weekly sessions"))
    def generate_sessions(self, request, queryset):
        created = sum(services.sessions_generate(klass=klass) for klass in queryset)
        self.message_user(request, _("%(n)d sessions created.") % {"n": created}, messages.SUCCESS)


class AttendanceInline(admin.TabularInline):
    model = Attendance
    extra = 0
    fields = ["enrollment", "status"]
    autocomplete_fields = ["enrollment"]


class AbsenceMarkInline(admin.TabularInline):
    model = AbsenceMark
    extra = 0
    fields = ("enrollment", "absence")
    readonly_fields = fields
    can_delete = False
    verbose_name = _("absence reported in advance")
    verbose_name_plural = _("absences reported in advance")

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(absence__cancelled_at__isnull=True)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["starts_at", "klass", "status", "absences_reported"]
    list_filter = ["status", "klass__location", "klass__programme"]
    date_hierarchy = "starts_at"
    search_fields = ["klass__programme__name"]
    list_select_related = ["klass__programme"]
    inlines = [AttendanceInline, AbsenceMarkInline]
    readonly_fields = ["sequence", "updated_at"]
    actions = ["cancel_sessions"]
    sample = AdminSample(
        add=lambda: {
            "klass": first_pk(Class),
            "starts_at_0": "2031-02-05",
            "starts_at_1": "10:00",
            "ends_at_0": "2031-02-05",
            "ends_at_1": "10:45",
        }
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                reported=Count("absence_marks", filter=Q(absence_marks__absence__cancelled_at=None))
            )
        )

    @admin.display(description=_("absences reported"))
    def absences_reported(self, session):
        return session.reported

    def save_model(self, request, obj, form, change):
        if change and form.changed_data:
            obj.sequence += 1  # calendar feeds pick up the change
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Cancel the selected sessions and notify families"))
    def cancel_sessions(self, request, queryset):
        for session in queryset:
            try:
                notified = services.session_cancel(
                    session=session, reason=_("Cancelled by the school.")
                )
            except PortalError as error:
                self.message_user(request, f"{session}: {error}", messages.WARNING)
            else:
                self.message_user(
                    request,
                    _("%(session)s cancelled; %(n)d guardian(s) notified: %(who)s")
                    % {"session": session, "n": len(notified), "who": ", ".join(notified) or "-"},
                    messages.SUCCESS,
                )


class EnrollmentChangeInline(admin.TabularInline):
    model = EnrollmentChange
    extra = 0
    fields = ("at", "action", "effective_date", "actor", "note")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["student", "klass", "kind", "status", "start_date", "end_date"]
    list_filter = ["status", "kind", "klass__location", "klass__programme"]
    search_fields = ["student__first_name", "student__last_name", "student__family__name"]
    list_select_related = ["student", "klass__programme"]
    autocomplete_fields = ["student"]
    raw_id_fields = ["klass", "session", "transferred_to"]
    inlines = [EnrollmentChangeInline]
    sample = AdminSample(
        add=lambda: {
            "student": first_pk(Student),
            "klass": first_pk(Class),
            "kind": Enrollment.Kind.REGULAR,
            "status": Enrollment.Status.ACTIVE,
            "start_date": "2031-01-06",
        }
    )

    def has_delete_permission(self, request, obj=None):
        return False  # enrolments are kept; change the status


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["student", "skill", "status", "evaluated_on", "instructor"]
    list_filter = ["status", "skill__level"]
    search_fields = ["student__first_name", "student__last_name", "skill__name"]
    autocomplete_fields = ["student"]
    sample = AdminSample(
        add=lambda: {
            "student": first_pk(Student),
            "skill": first_pk(Skill),
            "status": Evaluation.Status.WORKING,
            "evaluated_on": "2031-01-10",
        }
    )


@admin.register(Absence)
class AbsenceAdmin(admin.ModelAdmin):
    list_display = ["student", "starts_at", "ends_at", "kind", "reason", "cancelled_at"]
    list_filter = ["kind"]
    search_fields = ["student__first_name", "student__last_name"]
    list_select_related = ["student"]
    readonly_fields = ["created_at", "created_by"]
    sample = AdminSample(
        add=lambda: {
            "student": first_pk(Student),
            "kind": Absence.Kind.BY_DATE,
            "starts_at_0": "2031-02-01",
            "starts_at_1": "00:00",
            "ends_at_0": "2031-02-08",
            "ends_at_1": "00:00",
            "reason": "Sample holiday",
        }
    )
