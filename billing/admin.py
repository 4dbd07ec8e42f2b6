"""Staff: orders and lines, offline payments, refunds, adjustments with a
reason, and a family's ledger. Entries are written by services only."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminTextInputWidget

from families.models import Family
from portal.adminactions import ReadOnlyAdmin
from portal.adminsample import AdminSample, first_pk
from portal.exceptions import PortalError
from portal.templatetags.portal import money

from . import gateway, selectors, services
from .models import (
    Document,
    Finding,
    Invoice,
    LedgerEntry,
    Order,
    OrderLine,
    Payment,
    Refund,
    StripeEvent,
)


class LineInline(TabularInline):
    model = OrderLine
    extra = 1
    fields = ["kind", "description", "quantity", "unit_price"]

    def has_add_permission(self, request, obj=None):
        return obj is None  # lines are fixed once charged; correct with an adjustment

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return obj is None


class EntryInline(TabularInline):
    model = LedgerEntry
    extra = 0
    fields = ("at", "kind", "amount", "description", "actor")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    list_display = [
        "number",
        "title",
        "family",
        "student",
        "location",
        "due_date",
        "status_shown",
        "created_at",
    ]
    list_filter = [
        ("location", RelatedDropdownFilter),
        ("due_date", RangeDateFilter),
        "created_at",
    ]
    list_filter_submit = True
    list_select_related = ["family", "student", "location"]
    search_fields = ["title", "family__name", "student__first_name"]
    autocomplete_fields = ["family", "student"]
    inlines = [LineInline, EntryInline]
    actions = ["record_offline_payment"]
    sample = AdminSample(
        add=lambda: {
            "family": first_pk(Family),
            "title": "Sample order",
            "lines-0-kind": OrderLine.Kind.choices[0][0],
            "lines-0-description": "Sample line",
            "lines-0-quantity": "1",
            "lines-0-unit_price": "12.00",
        }
    )

    def get_queryset(self, request):
        # Each order's figures for its status, in the list's one query.
        return selectors.with_balances(super().get_queryset(request))

    @admin.display(description=_("status"))
    def status_shown(self, order):
        """The status parents read (billing.selectors.order_status)."""
        if getattr(order, "owed", None) is None:  # not saved yet
            return "—"
        return selectors.order_status(order).text

    def get_readonly_fields(self, request, obj=None):
        # Once charged, the family and lines stay; corrections are adjustments.
        return ["status_shown", "family", "student"] if obj else []

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        order = form.instance
        if not order.entries.filter(kind="charge").exists():
            total = sum((line.amount for line in order.lines.all()), 0)
            LedgerEntry.objects.create(
                family=order.family,
                order=order,
                location=order.location,
                kind="charge",
                amount=total,
                description=order.title,
                actor=request.user,
            )

    @admin.action(
        description=_("Record the amount owed as paid at the desk"), permissions=["change"]
    )
    def record_offline_payment(self, request, queryset):
        for order in queryset:
            owed = services.order_outstanding(order)
            if owed <= 0:
                self.message_user(
                    request, f"#{order.number}: {_('nothing owed')}", messages.WARNING
                )
                continue
            # Same order, same number of payments so far: a double click records once.
            key = f"offline-{order.pk}-{order.payments.count()}"
            services.payment_record_offline(
                order=order, amount=owed, method="offline", key=key, actor_user=request.user
            )
            self.message_user(
                request, f"#{order.number}: {money(owed)} {_('recorded')}", messages.SUCCESS
            )


class RefundForm(forms.ModelForm):
    refund_amount = forms.DecimalField(
        label=_("refund"), required=False, min_value=0, widget=UnfoldAdminDecimalFieldWidget
    )
    refund_reason = forms.CharField(
        label=_("reason"), required=False, widget=UnfoldAdminTextInputWidget
    )

    class Meta:
        model = Payment
        fields: list[str] = []


@admin.register(Payment)
class PaymentAdmin(ModelAdmin):
    form = RefundForm
    list_display = ["created_at", "family", "order", "amount_shown", "method", "status"]
    list_filter = ["status", "method", "created_at"]
    list_select_related = ["family", "order"]
    search_fields = ["family__name", "stripe_payment_intent_id"]
    readonly_fields = [
        "family",
        "order",
        "payer",
        "amount",
        "method",
        "status",
        "stripe_payment_intent_id",
        "failure_message",
        "created_at",
        "succeeded_at",
    ]
    fields = [*readonly_fields, "refund_amount", "refund_reason"]
    sample = AdminSample(add=None)

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, payment):
        return money(payment.amount)

    def save_model(self, request, obj, form, change):
        amount = form.cleaned_data.get("refund_amount")
        if amount:
            try:
                services.refund_create(
                    payment=obj,
                    amount=amount,
                    reason=form.cleaned_data.get("refund_reason", ""),
                    actor_user=request.user,
                )
            except (PortalError, gateway.GatewayUnavailable) as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("Refunded."), messages.SUCCESS)


class AdjustmentForm(forms.ModelForm):
    class Meta:
        model = LedgerEntry
        fields = ["family", "order", "amount", "description"]
        labels = {"description": _("reason")}

    def clean(self):
        cleaned = super().clean()
        order, family = cleaned.get("order"), cleaned.get("family")
        if order and family and order.family_id != family.pk:
            self.add_error("order", _("That order belongs to another family."))
        return cleaned


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ModelAdmin):
    """A family's ledger (search by family). Adding here makes an adjustment."""

    form = AdjustmentForm
    list_display = ["at", "family", "kind", "amount_shown", "description", "order"]
    list_filter = ["kind", ("location", RelatedDropdownFilter), "at"]
    search_fields = ["family__name", "description"]
    autocomplete_fields = ["family", "order"]
    list_select_related = ["family", "order"]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, entry):
        return money(entry.amount)

    sample = AdminSample(
        add=lambda: {"family": first_pk(Family), "amount": "-2.50", "description": "Sample"}
    )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        entry = services.adjustment_create(
            family=obj.family,
            amount=obj.amount,
            reason=obj.description,
            actor_user=request.user,
            order=obj.order,
        )
        obj.pk = entry.pk


class RecordAdmin(ReadOnlyAdmin, ModelAdmin):
    """Records written by the services (refunds, invoices, Stripe events)."""

    sample = AdminSample(add=None)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


def _sample_refund() -> Refund:
    """Money taken at the desk and part of it given back."""
    order = Order.objects.order_by("pk")[0]
    payment = services.payment_record_offline(
        order=order, amount=Decimal("5.00"), method="offline", key="sample", actor_user=None
    )
    return services.refund_create(
        payment=payment, amount=Decimal("1.00"), reason="Sample", actor_user=None
    )


def _sample_stripe_event() -> StripeEvent:
    """What a delivered Stripe webhook leaves behind (billing/webhooks.py)."""
    return StripeEvent.objects.create(event_id="evt_sample", type="payment_intent.succeeded")


admin.site.register(
    Refund,
    RecordAdmin,
    list_display=["payment", "amount", "reason", "created_at"],
    list_filter=["created_at"],
    list_select_related=["payment"],
    sample=AdminSample(add=None, make=_sample_refund),
)
admin.site.register(
    Invoice,
    RecordAdmin,
    list_display=["display_number", "order", "issued_at"],
    list_select_related=["order"],
    sample=AdminSample(
        add=None, make=lambda: services.invoice_issue(order=Order.objects.order_by("pk")[0])
    ),
)
admin.site.register(
    Document,
    RecordAdmin,
    # What went wrong making a PDF is for staff: parents only see that it failed.
    list_display=["created_at", "family", "kind", "location", "status", "error"],
    list_filter=["kind", "status", "created_at"],
    list_select_related=["family", "location"],
    search_fields=["family__name"],
    sample=AdminSample(
        add=None,
        make=lambda: services.document_request(
            family=Order.objects.order_by("pk")[0].family,
            kind=Document.Kind.STATEMENT,
            actor_user=None,
        ),
    ),
)
admin.site.register(
    StripeEvent,
    RecordAdmin,
    list_display=["event_id", "type", "received_at", "processed_at"],
    sample=AdminSample(add=None, make=_sample_stripe_event),
)

admin.site.register(
    Finding,
    RecordAdmin,
    list_display=["at", "source", "severity", "message", "family", "order", "payment"],
    list_filter=["source", "severity", "at"],
    list_select_related=["family", "order", "payment"],
    search_fields=["message", "family__name"],
    sample=AdminSample(
        add=None,
        make=lambda: services.finding_record(
            source=Finding.Source.CHECK, code="sample", message="Sample finding"
        ),
    ),
)
