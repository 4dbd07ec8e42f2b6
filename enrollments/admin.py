from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.widgets import (
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldAdminURLInputWidget,
    UnfoldBooleanWidget,
)

from families.actors import actor_name
from families.models import Student
from portal.adminactions import ReadOnlyAdmin, action_form, for_each, form_for_user
from portal.adminsample import AdminSample, first_pk
from portal.clock import today
from portal.exceptions import PortalError

from . import selectors, services
from .exceptions import ClassFull
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
    WaitlistOffer,
)

admin.site.register(
    Location,
    ModelAdmin,
    search_fields=["name"],
    list_display=["name", "address", "is_active"],
    list_filter=["is_active"],
    sample=AdminSample(add=lambda: {"name": "Sample pool"}),
)
admin.site.register(
    Instructor,
    ModelAdmin,
    search_fields=["name"],
    sample=AdminSample(add=lambda: {"name": "Sample coach"}),
)
admin.site.register(
    Programme,
    ModelAdmin,
    search_fields=["name"],
    list_display=["name", "vat_rate"],
    sample=AdminSample(add=lambda: {"name": "Sample lessons"}),
)


# List columns for records of a class (sessions, enrolments): named for staff.
@admin.display(description=_("class"), ordering="klass__programme__name")
def class_column(obj):
    return obj.klass


@admin.display(description=_("location"), ordering="klass__location__name")
def location_column(obj):
    return obj.klass.location


class SkillInline(TabularInline):
    model = Skill
    extra = 1


@admin.register(Level)
class LevelAdmin(ModelAdmin):
    list_display = ["name", "order"]
    inlines = [SkillInline]
    sample = AdminSample(add=lambda: {"name": "Sample level", "order": 9, "skills-0-name": "Float"})


class EnrollmentInline(TabularInline):
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
class ClassAdmin(ModelAdmin):
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
    list_filter = [
        ("location", RelatedDropdownFilter),
        ("programme", RelatedDropdownFilter),
        ("level", RelatedDropdownFilter),
        "weekday",
        "is_active",
    ]
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

    def has_add_sessions_permission(self, request):
        return request.user.has_perm("enrollments.add_session")

    @admin.action(
        description=_("Generate the term's weekly sessions"), permissions=["add_sessions"]
    )
    def generate_sessions(self, request, queryset):
        created = sum(services.sessions_generate(klass=klass) for klass in queryset)
        self.message_user(request, _("%(n)d sessions created.") % {"n": created}, messages.SUCCESS)


class AttendanceForm(forms.ModelForm):
    class Meta:
        model = Attendance
        fields = ["enrollment", "status"]

    def clean(self):
        cleaned = super().clean()
        enrollment = cleaned.get("enrollment")
        session = getattr(self, "parent_session", None)
        if self.instance.pk and "enrollment" in self.changed_data:
            self.add_error(
                "enrollment", _("Change the status here; mark another child on a new row.")
            )
        elif enrollment and session and not selectors.booked_at(enrollment, session):
            self.add_error("enrollment", _("This child is not booked at this session."))
        return cleaned


class AttendanceInline(TabularInline):
    """Who came: only children booked at the session can be marked, and the
    marks are written by enrollments.services.attendance_record."""

    model = Attendance
    form = AttendanceForm
    extra = 0
    can_delete = False  # a mark is corrected by its status
    fields = ["enrollment", "status"]
    autocomplete_fields = ["enrollment"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        form = formset.form

        class BoundToSession(form):
            parent_session = obj

        formset.form = BoundToSession
        return formset


class AbsenceMarkInline(TabularInline):
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
class SessionAdmin(ModelAdmin):
    list_display = ["starts_at", class_column, location_column, "status", "absences_reported"]
    list_filter = [
        "status",
        ("klass__location", RelatedDropdownFilter),
        ("klass__programme", RelatedDropdownFilter),
        "starts_at",
    ]
    date_hierarchy = "starts_at"
    search_fields = ["klass__programme__name", "klass__location__name"]
    list_select_related = ["klass__programme", "klass__location"]
    autocomplete_fields = ["klass"]
    inlines = [AttendanceInline, AbsenceMarkInline]
    readonly_fields = ["status", "cancel_reason", "sequence", "updated_at"]
    actions = ["cancel_sessions"]

    def get_inlines(self, request, obj):
        return self.inlines if obj else []  # attendance and absences once it exists

    sample = AdminSample(
        add=lambda: {
            "klass": first_pk(Class),
            "starts_at_0": "2031-02-05",
            "starts_at_1": "10:00",
            "ends_at_0": "2031-02-05",
            "ends_at_1": "10:45",
        },
        actions={
            "cancel_sessions": lambda obj: {"reason": "Pool closed", "apply": "Cancel and notify"}
        },
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

    def save_formset(self, request, form, formset, change):
        if formset.model is not Attendance:
            return super().save_formset(request, form, formset, change)
        for row in formset.forms:
            if not row.has_changed() or not row.cleaned_data or row.cleaned_data.get("DELETE"):
                continue
            services.attendance_record(
                session=form.instance,
                enrollment=row.cleaned_data["enrollment"],
                status=row.cleaned_data["status"],
                actor=request.user,
            )
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(
        description=_("Cancel the selected sessions and notify families"), permissions=["change"]
    )
    def cancel_sessions(self, request, queryset):
        def preview(session, data):
            shown = services.session_cancel_preview(
                session=session, reason=data["reason"], livestream_url=data["livestream_url"]
            )
            return render_to_string("admin/enrollments/cancel_preview.html", {"p": shown})

        def apply(session, data):
            notified = services.session_cancel(
                session=session,
                reason=data["reason"],
                livestream_url=data["livestream_url"],
                actor=request.user,
            )
            return _("%(session)s cancelled; %(n)d guardian(s) notified.") % {
                "session": session,
                "n": len(notified),
            }

        return action_form(
            self,
            request,
            queryset.select_related("klass__programme", "klass__location"),
            form_class=CancelSessionForm,
            title=_("Cancel sessions"),
            apply=apply,
            preview=preview,
            button=_("Cancel and notify"),
        )


@admin.register(Attendance)
class AttendanceAdmin(ReadOnlyAdmin, ModelAdmin):
    """Who came, across sessions: marked on each session's page (its
    attendance rows call enrollments.services.attendance_record), read here."""

    list_display = ["session_start", "student", "session_class", "session_location", "status"]
    list_filter = [
        "status",
        ("session__klass__location", RelatedDropdownFilter),
        ("session__klass__programme", RelatedDropdownFilter),
        "session__starts_at",
    ]
    search_fields = ["enrollment__student__first_name", "enrollment__student__last_name"]
    list_select_related = [
        "enrollment__student",
        "session__klass__programme",
        "session__klass__location",
    ]
    fields = ["session", "enrollment", "status", "recorded_at"]
    readonly_fields = fields
    sample = AdminSample(add=None, make=lambda: _sample_attendance())

    @admin.display(description=_("session"), ordering="session__starts_at")
    def session_start(self, attendance):
        return attendance.session.starts_at

    @admin.display(description=_("student"), ordering="enrollment__student__last_name")
    def student(self, attendance):
        return attendance.enrollment.student

    @admin.display(description=_("class"), ordering="session__klass__programme__name")
    def session_class(self, attendance):
        return attendance.session.klass

    @admin.display(description=_("location"), ordering="session__klass__location__name")
    def session_location(self, attendance):
        return attendance.session.klass.location


def _sample_attendance() -> Attendance:
    """A mark at a session the child is booked at, as its session page makes it."""
    from accounts.models import User

    enrollment = (
        Enrollment.objects.filter(status=Enrollment.Status.ACTIVE, kind=Enrollment.Kind.REGULAR)
        .order_by("pk")
        .first()
    )
    assert enrollment is not None
    session = (
        Session.objects.filter(klass=enrollment.klass, starts_at__date__gte=enrollment.start_date)
        .order_by("starts_at")
        .first()
    )
    assert session is not None
    owner = User.objects.filter(is_staff=True, groups__name="Owner").order_by("pk").first()
    assert owner is not None
    return services.attendance_record(
        session=session, enrollment=enrollment, status=Attendance.Status.PRESENT, actor=owner
    )


class CancelSessionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason, as families will read it"),
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        max_length=500,
    )
    livestream_url = forms.URLField(
        label=_("Livestream link instead (optional)"),
        required=False,
        assume_scheme="https",
        widget=UnfoldAdminURLInputWidget,
    )


class EnrollmentChangeInline(TabularInline):
    model = EnrollmentChange
    extra = 0
    fields = ("at", "action", "effective_date", "actor", "note")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class EnrolForm(forms.ModelForm):
    """Staff enrol a child through the same service parents' enrolments use:
    a full class is refused with the choice of its waitlist, and a manager
    may go over capacity with a reason kept in the history."""

    waitlist = forms.BooleanField(
        label=_("If the class is full, put the child on its waitlist"),
        required=False,
        widget=UnfoldBooleanWidget,
    )
    over_capacity_reason = forms.CharField(
        label=_("Enrol over capacity, because (managers)"),
        required=False,
        max_length=150,
        widget=UnfoldAdminTextInputWidget,
    )

    class Meta:
        model = Enrollment
        fields = ["student", "klass", "start_date"]
        labels = {"klass": _("Class")}

    request_user = None  # set by the admin (form_for_user)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["start_date"].initial = today

    def _post_clean(self):
        # The service validates and creates; the model is not validated here.
        pass

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.enrolled = services.enrollment_create(
                student=cleaned["student"],
                klass=cleaned["klass"],
                start_date=cleaned["start_date"],
                actor=self.request_user,
                waitlist_if_full=cleaned.get("waitlist", False),
                over_capacity_reason=cleaned.get("over_capacity_reason", ""),
            )
        except PortalError as error:
            field = error.field if error.field in self.fields else None
            if isinstance(error, ClassFull):
                field = "waitlist"
            self.add_error(field, str(error))
        return cleaned


class WaitlistOfferInline(TabularInline):
    model = WaitlistOffer
    extra = 0
    fields = ("state", "offered_at", "expires_at", "answered_at", "offered_by_name")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = _("places offered from the waitlist")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(ModelAdmin):
    """Enrolments change only through the services: enrol (Add), offer a
    waitlisted child a place, drop, take off the waitlist. Fields are shown,
    not edited."""

    list_display = [
        "student",
        class_column,
        location_column,
        "kind",
        "status",
        "start_date",
        "end_date",
        "offer",
    ]
    list_filter = [
        "status",
        "kind",
        ("klass__location", RelatedDropdownFilter),
        ("klass__programme", RelatedDropdownFilter),
        ("start_date", RangeDateFilter),
    ]
    list_filter_submit = True  # the date range applies with its button
    search_fields = ["student__first_name", "student__last_name", "student__family__name"]
    list_select_related = ["student", "klass__programme", "klass__location"]
    autocomplete_fields = ["student", "klass"]
    inlines = [WaitlistOfferInline, EnrollmentChangeInline]
    actions = ["offer_place", "transfer", "drop", "leave_waitlist"]
    sample = AdminSample(
        add=lambda: {
            "student": Student.objects.exclude(enrollments__klass=first_pk(Class))
            .values_list("pk", flat=True)
            .first(),
            "klass": first_pk(Class),
            "start_date": "2031-01-06",
            "waitlist": "on",
        },
        actions={
            "transfer": lambda obj: {"to_class": _sample_transfer_to(obj), "apply": "Transfer"},
        },
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = EnrolForm
            form = super().get_form(request, obj, change=change, **kwargs)
            return form_for_user(form, request.user)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj else []  # history and offers come after enrolling

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["student", "klass", "start_date", "waitlist", "over_capacity_reason"]
        return [
            "student",
            "klass",
            "kind",
            "status",
            "start_date",
            "end_date",
            "session",
            "transferred_to",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    def get_queryset(self, request):
        open_offer = WaitlistOffer.objects.filter(
            enrollment=OuterRef("pk"), state=WaitlistOffer.State.OPEN
        ).values("expires_at")[:1]
        return super().get_queryset(request).annotate(offer_until=Subquery(open_offer))

    @admin.display(description=_("place held until"))
    def offer(self, enrollment):
        return enrollment.offer_until or "-"

    def save_form(self, request, form, change):
        if not change:  # made by the service in the form's clean()
            status = form.enrolled.get_status_display()
            self.message_user(request, _("Done: %(status)s.") % {"status": status})
            form.save_m2m = lambda: None  # nothing more to save
            return form.enrolled
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        return False  # enrolments are kept; their history says what happened

    def _each(self, request, queryset, action, done):
        for_each(self, request, queryset.select_related("student", "klass"), action, done)

    @admin.action(
        description=_("Offer the waitlisted child a free place (held, e-mailed)"),
        permissions=["change"],
    )
    def offer_place(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda e: services.waitlist_offer(enrollment=e, actor=request.user),
            _("place offered; the family is e-mailed"),
        )

    @admin.action(description=_("Transfer to another class (from today)"), permissions=["change"])
    def transfer(self, request, queryset):
        def apply(enrollment, data):
            moved = services.enrollment_transfer(
                enrollment=enrollment, to_class=data["to_class"], actor=request.user
            )
            return _("%(name)s moved to %(klass)s.") % {
                "name": moved.student.first_name,
                "klass": moved.klass,
            }

        return action_form(
            self,
            request,
            queryset.select_related("student", "klass__programme"),
            form_class=TransferForm,
            title=_("Transfer to another class"),
            apply=apply,
            button=_("Transfer"),
        )

    @admin.action(description=_("Drop from the class (from today)"), permissions=["change"])
    def drop(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda e: services.enrollment_drop(enrollment=e, actor=request.user),
            _("dropped"),
        )

    @admin.action(description=_("Take off the waitlist"), permissions=["change"])
    def leave_waitlist(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda e: services.waitlist_cancel(enrollment=e, actor=request.user),
            _("off the waitlist"),
        )


class TransferForm(forms.Form):
    to_class = forms.ModelChoiceField(
        label=_("To class"),
        queryset=Class.objects.filter(is_active=True).select_related("programme", "location"),
        widget=UnfoldAdminSelectWidget,
        help_text=_("Same programme and level, with a free place; the history says who moved it."),
    )


@admin.register(WaitlistOffer)
class WaitlistOfferAdmin(ReadOnlyAdmin, ModelAdmin):
    """Each place offered from a waitlist and what became of it."""

    list_display = ["enrollment", "state", "offered_at", "expires_at", "answered_at"]
    list_filter = [
        "state",
        ("enrollment__klass__location", RelatedDropdownFilter),
        ("enrollment__klass__programme", RelatedDropdownFilter),
        "offered_at",
    ]
    search_fields = ["enrollment__student__first_name", "enrollment__student__last_name"]
    list_select_related = ["enrollment__student", "enrollment__klass__programme"]
    fields = ("enrollment", "state", "offered_at", "expires_at", "answered_at", "offered_by_name")
    readonly_fields = fields
    sample = AdminSample(add=None, make=lambda: _sample_offer())


def _sample_transfer_to(enrollment: Enrollment) -> int:
    """A class the enrolment may move to: same programme and level, a place free."""
    klass = enrollment.klass
    other = Class.objects.create(
        programme=klass.programme,
        location=klass.location,
        level=klass.level,
        weekday=(klass.weekday + 1) % 7,
        start_time=klass.start_time,
        capacity=klass.capacity,
        term_start=klass.term_start,
        term_end=max(klass.term_end, today() + timedelta(days=30)),
    )
    return other.pk


def _sample_offer() -> WaitlistOffer:
    """A waitlisted child offered a place, as the desk would do it."""
    from accounts.models import User

    klass = Class.objects.order_by("pk").first()
    assert klass is not None
    Class.objects.filter(pk=klass.pk).update(capacity=999)  # a free place to offer
    student = Student.objects.order_by("-pk").first()
    assert student is not None
    waiting = Enrollment.objects.create(
        student=student,
        klass=klass,
        start_date=today(),
        status=Enrollment.Status.WAITLISTED,
    )
    owner = User.objects.filter(is_staff=True, groups__name="Owner").order_by("pk").first()
    assert owner is not None
    return services.waitlist_offer(enrollment=waiting, actor=owner)


@admin.register(Evaluation)
class EvaluationAdmin(ModelAdmin):
    list_display = ["student", "skill", "status", "evaluated_on", "instructor", "recorded_by_name"]
    readonly_fields = ["recorded_by_name"]
    list_filter = ["status", "skill__level", ("evaluated_on", RangeDateFilter)]
    list_filter_submit = True
    list_select_related = ["student", "skill", "instructor"]
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


class AbsenceForm(forms.ModelForm):
    """Staff record an absence the family phoned in, through the same
    service as the portal: the sessions it covers are marked and make-up
    tokens follow the provider's rules."""

    class Meta:
        model = Absence
        fields = ["student", "starts_at", "ends_at", "reason"]

    request_user = None  # set by the admin (form_for_user)

    def _post_clean(self):
        pass  # the service validates and creates

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.recorded = services.absence_report_by_date(
                student=cleaned["student"],
                actor=self.request_user,
                starts_at=cleaned["starts_at"],
                ends_at=cleaned["ends_at"],
                reason=cleaned.get("reason", ""),
            )
        except PortalError as error:
            self.add_error(error.field if error.field in self.fields else None, str(error))
        return cleaned

    def save_model(self, request, obj, form, change):
        obj.recorded_by_name = actor_name(request.user)
        super().save_model(request, obj, form, change)


@admin.register(Absence)
class AbsenceAdmin(ModelAdmin):
    list_display = ["student", "starts_at", "ends_at", "kind", "reason", "cancelled_at"]
    list_filter = ["kind", "starts_at"]
    search_fields = ["student__first_name", "student__last_name"]
    list_select_related = ["student"]
    autocomplete_fields = ["student"]
    actions = ["cancel_absences"]
    sample = AdminSample(
        add=lambda: {
            "student": first_pk(Student, enrollments__status="active"),
            "starts_at_0": (today() + timedelta(days=1)).isoformat(),
            "starts_at_1": "00:00",
            "ends_at_0": (today() + timedelta(days=15)).isoformat(),
            "ends_at_1": "00:00",
            "reason": "Sample holiday",
        }
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AbsenceForm
            form = super().get_form(request, obj, change=change, **kwargs)
            return form_for_user(form, request.user)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["student", "starts_at", "ends_at", "reason"]
        return ["student", "kind", "starts_at", "ends_at", "reason", "created_at", "created_by",
                "cancelled_at"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    def save_form(self, request, form, change):
        if not change:  # made by the service in the form's clean()
            form.save_m2m = lambda: None
            return form.recorded
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)

    @admin.action(description=_("Cancel the selected absences"), permissions=["change"])
    def cancel_absences(self, request, queryset):
        for_each(
            self,
            request,
            queryset.select_related("student"),
            lambda absence: services.absence_cancel(absence=absence, actor=request.user),
            _("cancelled"),
        )
