"""Staff issue, adjust (with a reason, as a history entry) and revoke benefits.
Histories are read-only here: every change goes through a service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from enrollments.models import Location
from families.admin import FamilyAdmin, StudentAdmin
from families.models import Family, Student
from portal import clock
from portal.adminactions import action_form, form_for_user
from portal.adminsample import AdminSample, first_pk
from portal.exceptions import PortalError
from portal.templatetags.portal import money

from . import rules, services
from .models import (
    CreditGrant,
    CreditUse,
    Discount,
    DiscountUse,
    MakeupRequest,
    MakeupToken,
    Pass,
    PassEvent,
    TokenEvent,
    Voucher,
    VoucherRedemption,
)


class ReadOnlyInline(TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TokenEventInline(ReadOnlyInline):
    model = TokenEvent
    fields = ("at", "kind", "enrollment", "actor", "note")
    readonly_fields = fields


@admin.register(MakeupToken)
class MakeupTokenAdmin(ModelAdmin):
    list_display = ["student", "reason", "location", "expires_on", "state"]
    list_filter = [
        "reason",
        ("location", RelatedDropdownFilter),
        ("expires_on", RangeDateFilter),
    ]
    list_filter_submit = True
    search_fields = ["student__first_name", "student__last_name", "student__family__name"]
    autocomplete_fields = ["student", "source_session"]
    fields = ["student", "reason", "location", "expires_on", "source_session", "note"]
    inlines = [TokenEventInline]
    actions = ["revoke"]
    sample = AdminSample(
        add=lambda: {
            "student": first_pk(Student),
            "reason": MakeupToken.Reason.GOODWILL,
            "location": first_pk(Location),
            "expires_on": "2031-01-31",
            "note": "Sample",
        }
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("student", "location")
            .prefetch_related("events__enrollment__session")
        )

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj else []

    @admin.display(description=_("state"))
    def state(self, token):
        return rules.token_state(token)

    def save_model(self, request, obj, form, change):
        if change:
            return
        token = services.token_issue(
            student=obj.student,
            reason=obj.reason,
            expires_on=obj.expires_on,
            location=obj.location,
            source_session=obj.source_session,
            actor_user=request.user,
            note=obj.note,
        )
        obj.pk = token.pk

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            try:
                services.token_revoke(token=token, actor_user=request.user, note="Revoked in admin")
            except PortalError as error:
                self.message_user(request, f"{token}: {error}", messages.WARNING)


class PassEventInline(ReadOnlyInline):
    model = PassEvent
    fields = ("at", "kind", "punches", "enrollment", "actor", "note")
    readonly_fields = fields


class PassForm(forms.ModelForm):
    punches = forms.IntegerField(
        label=_("visits (punch cards)"),
        required=False,
        min_value=1,
        help_text=_("When adding."),
        widget=UnfoldAdminIntegerFieldWidget,
    )
    valid_days = forms.IntegerField(
        label=_("valid for days"),
        required=False,
        min_value=1,
        widget=UnfoldAdminIntegerFieldWidget,
    )
    adjust_by = forms.IntegerField(
        label=_("adjust visits by"),
        required=False,
        help_text=_("e.g. 2 or -1; needs a reason"),
        widget=UnfoldAdminIntegerFieldWidget,
    )
    adjust_reason = forms.CharField(
        label=_("reason"), required=False, widget=UnfoldAdminTextInputWidget
    )

    class Meta:
        model = Pass
        fields = ["family", "student", "name", "kind", "programme", "amount_paid"]

    def clean(self):
        """An adjustment is made here, through the service: a refusal stands
        next to the field and nothing is saved."""
        cleaned = super().clean()
        if not self.instance.pk:
            if cleaned.get("kind") == Pass.Kind.PUNCH and not cleaned.get("punches"):
                self.add_error("punches", _("A punch card needs a number of visits."))
            student, family = cleaned.get("student"), cleaned.get("family")
            if student and family and student.family_id != family.pk:
                self.add_error("student", _("That child is in another family."))
            return cleaned
        if self.instance.pk and cleaned.get("adjust_by") and not self.errors:
            try:
                services.pass_adjust(
                    pass_obj=self.instance,
                    punches=cleaned["adjust_by"],
                    note=cleaned.get("adjust_reason", ""),
                    actor_user=self.request_user,
                )
            except PortalError as error:
                field = "adjust_reason" if error.field == "note" else "adjust_by"
                self.add_error(field, str(error))
        return cleaned


@admin.register(Pass)
class PassAdmin(ModelAdmin):
    form = PassForm
    list_display = ["name", "family", "student", "kind", "purchased_on", "expires_on", "left"]
    search_fields = ["name", "family__name"]
    list_filter = [
        "kind",
        ("programme", RelatedDropdownFilter),
        ("expires_on", RangeDateFilter),
    ]
    list_filter_submit = True
    list_select_related = ["family", "student"]
    autocomplete_fields = ["family", "student"]
    inlines = [PassEventInline]
    sample = AdminSample(
        add=lambda: {
            "family": first_pk(Family),
            "name": "Sample 5-visit card",
            "kind": Pass.Kind.PUNCH,
            "punches": 5,
            "valid_days": 90,
            "amount_paid": "50.00",
        }
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("events")

    def get_fields(self, request, obj=None):
        if obj:
            return ["name", "kind", "family", "student", "adjust_by", "adjust_reason"]
        return [
            "family",
            "student",
            "name",
            "kind",
            "programme",
            "punches",
            "valid_days",
            "amount_paid",
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["name", "kind", "family", "student"] if obj else []

    @admin.display(description=_("visits left"))
    def left(self, pass_obj):
        left = rules.pass_punches_left(pass_obj)
        return "∞" if left is None else left

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return form_for_user(form, request.user)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return  # adjusted in the form's clean() (PassForm)
        created = services.pass_create(
            family=data["family"],
            student=data.get("student"),
            kind=data["kind"],
            name=data["name"],
            punches=data.get("punches"),
            valid_days=data.get("valid_days"),
            amount_paid=data.get("amount_paid") or 0,
            programme=data.get("programme"),
            actor_user=request.user,
        )
        obj.pk = created.pk


class CreditUseInline(ReadOnlyInline):
    model = CreditUse
    fields = ("at", "kind", "amount", "where", "reference", "actor")
    readonly_fields = fields


class CreditForm(forms.ModelForm):
    withdraw_amount = forms.DecimalField(
        label=_("withdraw"), required=False, min_value=0, widget=UnfoldAdminDecimalFieldWidget
    )
    withdraw_reason = forms.CharField(
        label=_("reason"), required=False, widget=UnfoldAdminTextInputWidget
    )

    class Meta:
        model = CreditGrant
        fields = ["family", "amount", "source", "description", "expires_on"]

    def clean(self):
        """A withdrawal is made here, through the service: a refusal stands
        next to the field and nothing is saved."""
        cleaned = super().clean()
        if self.instance.pk and cleaned.get("withdraw_amount") and not self.errors:
            try:
                services.credit_withdraw(
                    grant=self.instance,
                    amount=cleaned["withdraw_amount"],
                    note=cleaned.get("withdraw_reason", ""),
                    actor_user=self.request_user,
                )
            except PortalError as error:
                field = "withdraw_reason" if error.field == "note" else "withdraw_amount"
                self.add_error(field, str(error))
        return cleaned


@admin.register(CreditGrant)
class CreditGrantAdmin(ModelAdmin):
    form = CreditForm
    list_display = ["family", "amount_shown", "source", "description", "granted_at", "expires_on"]
    list_filter = ["source", "granted_at"]
    list_select_related = ["family"]
    search_fields = ["family__name", "description"]
    autocomplete_fields = ["family"]
    inlines = [CreditUseInline]
    sample = AdminSample(
        add=lambda: {
            "family": first_pk(Family),
            "amount": "5.00",
            "source": CreditGrant.Source.GOODWILL,
            "description": "Sample goodwill",
        }
    )

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, grant):
        return money(grant.amount)

    def get_fields(self, request, obj=None):
        base = ["family", "amount", "source", "description", "expires_on"]
        return [*base, "withdraw_amount", "withdraw_reason"] if obj else base

    def get_readonly_fields(self, request, obj=None):
        return ["family", "amount", "source", "description", "expires_on"] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return form_for_user(form, request.user)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return  # withdrawn in the form's clean() (CreditForm)
        grant = services.credit_grant(
            family=data["family"],
            amount=data["amount"],
            source=data["source"],
            description=data["description"],
            expires_on=data.get("expires_on"),
            actor_user=request.user,
        )
        obj.pk = grant.pk

    def has_delete_permission(self, request, obj=None):
        return False


class DiscountUseInline(ReadOnlyInline):
    model = DiscountUse
    fields = ("at", "amount", "where", "reference")
    readonly_fields = fields


@admin.register(Discount)
class DiscountAdmin(ModelAdmin):
    list_display = ["description", "family", "student", "kind", "percent", "amount", "valid_until"]
    search_fields = ["description", "family__name"]
    list_filter = ["kind"]
    list_select_related = ["family", "student"]
    autocomplete_fields = ["family", "student"]
    inlines = [DiscountUseInline]
    sample = AdminSample(
        add=lambda: {
            "family": first_pk(Family),
            "kind": Discount.Kind.PROMOTIONAL,
            "description": "Sample 10 % off",
            "percent": "10",
        }
    )


class RedemptionInline(ReadOnlyInline):
    model = VoucherRedemption
    fields = ("at", "family", "actor", "result")
    readonly_fields = fields


@admin.register(Voucher)
class VoucherAdmin(ModelAdmin):
    list_display = ["code", "kind", "description", "max_redemptions", "valid_until", "active"]
    search_fields = ["code", "description"]
    list_filter = ["kind", "active"]
    inlines = [RedemptionInline]
    sample = AdminSample(
        add=lambda: {
            "code": "SAMPLE-GIFT",
            "kind": Voucher.Kind.GIFT,
            "description": "Sample gift",
            "credit_amount": "10.00",
        }
    )


@admin.register(MakeupRequest)
class MakeupRequestAdmin(ModelAdmin):
    list_display = ["student", "session", "location", "status", "requested_at", "note"]
    list_filter = [
        "status",
        ("session__klass__location", RelatedDropdownFilter),
        ("session__klass__programme", RelatedDropdownFilter),
        "requested_at",
    ]
    list_select_related = ["student", "session__klass__programme", "session__klass__location"]
    search_fields = ["student__first_name", "student__last_name"]
    fields = ("student", "session", "note", "requested_by", "requested_at", "enrollment",
              "decided_by", "decided_at", "status", "decision_note")  # fmt: skip
    readonly_fields = fields
    actions = ["approve", "decline"]
    sample = AdminSample(
        add=None,
        make=lambda: _sample_makeup_request(),
        actions={
            "approve": lambda obj: {"answer": "See you on Saturday.", "apply": "Approve"},
            # The first request was approved just before: decline another.
            "decline": lambda obj: {
                "_selected_action": [_sample_makeup_request(nth=1).pk],
                "answer": "That session is full.",
                "apply": "Decline",
            },
        },
    )

    @admin.display(description=_("location"), ordering="session__klass__location__name")
    def location(self, item):
        return item.session.klass.location

    def has_add_permission(self, request):
        return False  # parents ask; staff decide

    def has_change_permission(self, request, obj=None):
        return False  # decided with the actions, which answer the family

    def _decide(self, request, queryset, approve):
        def apply(item, data):
            decided = services.makeup_request_decide(
                request=item, approve=approve, actor=request.user, answer=data["answer"]
            )
            return _("%(request)s: %(status)s; the family is e-mailed.") % {
                "request": decided,
                "status": decided.get_status_display(),
            }

        return action_form(
            self,
            request,
            queryset.select_related("student", "session__klass__programme"),
            form_class=DecisionForm,
            title=_("Approve make-up requests") if approve else _("Decline make-up requests"),
            apply=apply,
            button=_("Approve") if approve else _("Decline"),
        )

    def has_decide_permission(self, request):
        return request.user.has_perm("benefits.change_makeuprequest")

    @admin.action(description=_("Approve (books the make-up place)"), permissions=["decide"])
    def approve(self, request, queryset):
        return self._decide(request, queryset, True)

    @admin.action(description=_("Decline"), permissions=["decide"])
    def decline(self, request, queryset):
        return self._decide(request, queryset, False)


class DecisionForm(forms.Form):
    answer = forms.CharField(
        label=_("Answer to the family (e-mailed with the decision)"),
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        required=False,
        max_length=300,
    )


# A family's benefits in one place: on the family page and the student page.
class FamilyPassInline(ReadOnlyInline):
    model = Pass
    fields = ("name", "kind", "student", "purchased_on", "expires_on")
    readonly_fields = fields
    show_change_link = True


class FamilyCreditInline(ReadOnlyInline):
    model = CreditGrant
    fields = ("amount", "source", "description", "expires_on")
    readonly_fields = fields
    show_change_link = True


class FamilyDiscountInline(ReadOnlyInline):
    model = Discount
    fields = ("description", "kind", "student", "valid_until")
    readonly_fields = fields
    show_change_link = True


class StudentTokenInline(ReadOnlyInline):
    model = MakeupToken
    fields = ("reason", "location", "expires_on")
    readonly_fields = fields
    show_change_link = True


FamilyAdmin.inlines = [
    *FamilyAdmin.inlines,
    FamilyPassInline,
    FamilyCreditInline,
    FamilyDiscountInline,
]
StudentAdmin.inlines = [*getattr(StudentAdmin, "inlines", []), StudentTokenInline]


def _sample_makeup_request(nth: int = 0) -> MakeupRequest:
    """A family's request for a make-up place, as the portal left it (while
    the provider had requests switched on)."""

    from enrollments.models import Session
    from enrollments.selectors import class_free_places
    from families.models import Guardian

    guardian = Guardian.objects.filter(user__isnull=False).order_by("pk")[0]
    student = guardian.family.students.order_by("pk")[0]
    # Upcoming sessions with a place free (whatever the hour: the next one may be full).
    upcoming = Session.objects.filter(starts_at__gt=clock.now()).select_related("klass")
    with_room = [
        s
        for s in upcoming.order_by("starts_at")[:60]
        if class_free_places(s.klass, on=clock.local(s.starts_at).date()) > 0
    ]
    session = with_room[nth]
    return MakeupRequest.objects.create(
        student=student, session=session, requested_by=guardian.user, note="Sample"
    )
