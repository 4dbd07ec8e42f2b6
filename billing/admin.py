"""Staff: orders and lines, offline payments, refunds from a payment (what
the refund means, how the money goes back), cancelling an order and credit
notes, adjustments with a reason, and a family's ledger. Entries are written
by services only."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import action
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminTextInputWidget,
)

from families.models import Family
from portal.adminactions import ReadOnlyAdmin, action_form, form_for_user
from portal.adminsample import AdminSample, first_pk
from portal.exceptions import PortalError
from portal.templatetags.portal import money

from . import selectors, services
from .models import (
    CreditNote,
    Document,
    Finding,
    Invoice,
    LedgerEntry,
    Order,
    OrderLine,
    Payment,
    Refund,
    RefundRequest,
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


class CancelOrderForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is the order cancelled?"),
        max_length=200,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("Printed on the credit note."),
    )
    paid_money = forms.ChoiceField(
        label=_("Money already paid on it"),
        choices=services.PaidMoney.choices,
        initial=services.PaidMoney.CREDIT,
        widget=UnfoldAdminRadioSelectWidget,
        help_text=_(
            "What is still owed is reversed by a credit note either way. Money paid with "
            "family credit always goes back to the family's credit."
        ),
    )


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount to take off the charge"),
        min_value=Decimal("0.01"),
        decimal_places=2,
        widget=UnfoldAdminDecimalFieldWidget,
        help_text=_("At most what the order still owes."),
    )
    reason = forms.CharField(
        label=_("Reason, printed on the credit note"),
        max_length=200,
        widget=UnfoldAdminTextInputWidget,
    )


class OrderCreditActions:
    """The order list's credit actions: cancel (with a confirmation step
    showing what happens to the money) and a credit note for part of what
    is owed. Both need the permission to issue credit notes."""

    def has_credit_permission(self, request):
        return request.user.has_perm("billing.add_creditnote")

    @admin.action(description=_("Cancel the selected orders (credit note)"), permissions=["credit"])
    def cancel_orders(self, request, queryset):
        def preview(order, data):
            said = services.order_cancel_preview(order=order, paid_money=data["paid_money"])
            return format_html_join("", "<p>{}</p>", ((line,) for line in said))

        def apply(order, data):
            services.order_cancel(
                order=order,
                reason=data["reason"],
                paid_money=data["paid_money"],
                actor_user=request.user,
            )
            return _("%(order)s cancelled.") % {"order": order}

        return action_form(
            self,
            request,
            queryset.filter(cancelled_at__isnull=True).select_related("family"),
            form_class=CancelOrderForm,
            title=_("Cancel orders"),
            apply=apply,
            preview=preview,
            button=_("Cancel the orders"),
        )

    @admin.action(description=_("Issue a credit note"), permissions=["credit"])
    def issue_credit_note(self, request, queryset):
        def apply(order, data):
            note = services.credit_note_issue(
                order=order, amount=data["amount"], reason=data["reason"], actor_user=request.user
            )
            return _("%(order)s: credit note %(number)s issued.") % {
                "order": order,
                "number": note.display_number,
            }

        return action_form(
            self,
            request,
            queryset.select_related("family"),
            form_class=CreditNoteForm,
            title=_("Issue a credit note"),
            apply=apply,
            button=_("Issue the credit note"),
        )


@admin.register(Order)
class OrderAdmin(OrderCreditActions, ModelAdmin):
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
    actions = ["record_offline_payment", "cancel_orders", "issue_credit_note"]
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
        # Cancelling is the action (a credit note reverses the charge).
        readonly = ["status_shown", "family", "student", "cancelled_at", "cancel_reason"]
        return [*readonly, "cancelled_by"] if obj else []

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


class RefundForm(forms.Form):
    """Staff refund from a payment: what the refund means, how much, how the
    money goes back and why. The key makes a double submit refund once."""

    meaning = forms.ChoiceField(
        label=_("What does the refund mean?"),
        choices=RefundRequest.Meaning.choices,
        initial=RefundRequest.Meaning.CREDIT_NOTE,
        widget=UnfoldAdminRadioSelectWidget,
        help_text=_(
            "Reduce the charge for returns and cancellations: the money goes back and a credit "
            "note reduces the order's charge, so nothing becomes owed. Money back, still owed: "
            "the order owes this amount again."
        ),
    )
    amount = forms.DecimalField(
        label=_("Amount"),
        min_value=Decimal("0.01"),
        decimal_places=2,
        widget=UnfoldAdminDecimalFieldWidget,
    )
    method = forms.ChoiceField(
        label=_("How the money goes back"), widget=UnfoldAdminRadioSelectWidget
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, widget=UnfoldAdminTextInputWidget)
    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, payment: Payment, refundable: Decimal, **kwargs):
        super().__init__(*args, **kwargs)
        method = self.fields["method"]
        assert isinstance(method, forms.ChoiceField)
        method.choices = services.refund_methods(payment)
        method.initial = services.refund_methods(payment)[0][0]
        self.fields["amount"].help_text = _("Up to %(left)s can be refunded.") % {
            "left": money(refundable)
        }


class RefundRequestInline(TabularInline):
    model = RefundRequest
    extra = 0
    fields = ("created_at", "amount", "meaning", "method", "status", "reason", "failure_message")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class RefundInline(TabularInline):
    model = Refund
    extra = 0
    fields = ("created_at", "amount", "method", "reason", "stripe_refund_id", "actor")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ModelAdmin):
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
        "stripe_idempotency_key",
        "failure_message",
        "decline_code",
        "created_at",
        "succeeded_at",
    ]
    inlines = [RefundRequestInline, RefundInline]
    actions_detail = ["refund"]
    sample = AdminSample(add=None)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a payment is what Stripe or the desk said; refunds are the action

    def has_delete_permission(self, request, obj=None):
        return False

    def has_refund_permission(self, request, object_id=None):
        return request.user.has_perm("billing.add_refund")

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, payment):
        return money(payment.amount)

    @action(description=_("Refund"), url_path="refund", permissions=["refund"])
    def refund(self, request, object_id):
        """The refund form. Not in one transaction with the page (as the
        admin's own forms are): a card refund is reserved, sent to Stripe with
        no lock held, then booked."""
        payment = get_object_or_404(Payment.objects.select_related("order", "family"), pk=object_id)
        back = reverse("admin:billing_payment_change", args=[payment.pk])
        refundable = services.payment_refundable(payment)
        form = RefundForm(
            request.POST or None,
            payment=payment,
            refundable=refundable,
            initial={"amount": max(refundable, Decimal("0.00")), "key": uuid.uuid4().hex},
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                done = services.refund_create(
                    payment=payment,
                    amount=data["amount"],
                    reason=data["reason"],
                    meaning=data["meaning"],
                    method=data["method"],
                    key=data["key"],
                    actor_user=request.user,
                )
            except PortalError as error:
                form.add_error(error.field if error.field in form.fields else None, str(error))
            else:
                if done.status == RefundRequest.Status.FAILED:
                    form.add_error(None, done.failure_message)
                    form.data = form.data.copy()
                    form.data["key"] = uuid.uuid4().hex  # corrected, it is a new refund
                else:
                    self.message_user(request, _refund_outcome(done), _refund_level(done))
                    return redirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund from this payment"),
            "opts": self.model._meta,
            "payment": payment,
            "refundable": refundable,
            "form": form,
            "back": back,
        }
        return TemplateResponse(request, "admin/billing/refund_form.html", context)


def _refund_outcome(done: RefundRequest) -> str:
    if done.status == RefundRequest.Status.PENDING:
        return done.failure_message or _("The refund of %(amount)s waits for Stripe.") % {
            "amount": money(done.amount)
        }
    if done.meaning == RefundRequest.Meaning.CREDIT_NOTE:
        return _("%(amount)s refunded (%(how)s); a credit note reduces the order's charge.") % {
            "amount": money(done.amount),
            "how": done.get_method_display().lower(),
        }
    return _("%(amount)s refunded (%(how)s); the order owes it again.") % {
        "amount": money(done.amount),
        "how": done.get_method_display().lower(),
    }


def _refund_level(done: RefundRequest) -> int:
    return messages.SUCCESS if done.status == RefundRequest.Status.SUCCEEDED else messages.WARNING


class AdjustmentForm(forms.ModelForm):
    class Meta:
        model = LedgerEntry
        fields = ["family", "order", "amount", "description"]
        labels = {"description": _("reason")}

    def clean(self):
        """The adjustment is made here, through the service: a refusal
        stands next to its field and nothing is saved."""
        cleaned = super().clean()
        order, family = cleaned.get("order"), cleaned.get("family")
        if order and family and order.family_id != family.pk:
            self.add_error("order", _("That order belongs to another family."))
        if not self.errors and family is not None:
            try:
                self.made = services.adjustment_create(
                    family=family,
                    amount=cleaned["amount"],
                    reason=cleaned.get("description", ""),
                    actor_user=self.request_user,
                    order=order,
                )
            except PortalError as error:
                self.add_error(error.field if error.field in self.fields else None, str(error))
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
        add=lambda: {"family": first_pk(Family), "amount": "2.50", "description": "Sample"}
    )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return form_for_user(form, request.user)

    def save_model(self, request, obj, form, change):
        obj.pk = form.made.pk  # made in the form's clean() (AdjustmentForm)


class RecordAdmin(ReadOnlyAdmin, ModelAdmin):
    """Records written by the services (refunds, invoices, Stripe events)."""

    sample = AdminSample(add=None)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


def _sample_refund() -> Refund:
    """Money taken at the desk and part of it given back."""
    order = services.order_create(
        family=Family.objects.order_by("pk")[0],
        title="Sample",
        lines=[{"kind": "other", "description": "Sample", "unit_price": Decimal("5.00")}],
    )
    payment = services.payment_record_offline(
        order=order, amount=Decimal("5.00"), method="offline", key="sample", actor_user=None
    )
    request = services.refund_create(
        payment=payment, amount=Decimal("1.00"), reason="Sample", actor_user=None
    )
    return Refund.objects.get(request=request)


def _sample_credit_note() -> CreditNote:
    order = services.order_create(
        family=Family.objects.order_by("pk")[0],
        title="Sample",
        lines=[{"kind": "other", "description": "Sample", "unit_price": Decimal("5.00")}],
    )
    return services.credit_note_issue(
        order=order, amount=Decimal("1.00"), reason="Sample", actor_user=None
    )


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin, ModelAdmin):
    """Credit notes are issued by the services (a refund that reduces the
    charge, a cancellation, the orders' "Issue a credit note"); read here."""

    list_display = ["display_number", "order", "amount_shown", "reason", "issued_at", "actor"]
    list_filter = ["issued_at"]
    list_select_related = ["order", "actor"]
    search_fields = ["order__family__name", "reason"]
    fields = ["order", "invoice", "amount", "reason", "issued_at", "actor"]
    readonly_fields = fields
    actions_detail = ["pdf"]
    sample = AdminSample(add=None, make=_sample_credit_note)

    @admin.display(description=_("number"), ordering="number")
    def display_number(self, note):
        return note.display_number

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, note):
        return money(note.amount)

    def has_pdf_permission(self, request, object_id=None):
        return request.user.has_perm("billing.view_creditnote")

    @action(description=_("PDF"), url_path="pdf", permissions=["pdf"])
    def pdf(self, request, object_id):
        """The credit note's PDF, laid out here (one page)."""
        from . import pdf

        note = get_object_or_404(CreditNote, pk=object_id)
        data = pdf.render("billing/pdf/credit_note.html", {"note": note}, provider=request.tenant)
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{note.display_number}.pdf"'
        return response


@admin.register(RefundRequest)
class RefundRequestAdmin(ReadOnlyAdmin, ModelAdmin):
    """Refunds staff asked for, with Stripe's answer; one still waiting for
    Stripe can be sent again (it is found at Stripe first, never made twice)."""

    list_display = ["created_at", "payment", "amount", "meaning", "method", "status"]
    list_filter = ["status", "method", "meaning", "created_at"]
    list_select_related = ["payment"]
    actions_detail = ["send_again"]
    sample = AdminSample(add=None, make=lambda: _sample_refund().request)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_send_again_permission(self, request, object_id=None):
        return request.user.has_perm("billing.add_refund")

    @action(description=_("Ask Stripe again"), url_path="send-again", permissions=["send_again"])
    def send_again(self, request, object_id):
        found = get_object_or_404(RefundRequest, pk=object_id)
        back = reverse("admin:billing_refundrequest_change", args=[found.pk])
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Ask Stripe again"),
                "opts": self.model._meta,
                "question": _(
                    "Stripe is asked for this refund again: if it made the refund already, "
                    "that refund is booked; if not, it is made now."
                ),
                "button": _("Ask Stripe again"),
                "back": back,
            }
            return TemplateResponse(request, "admin/billing/confirm.html", context)
        done = services.refund_request_send(request=found)
        self.message_user(request, _refund_outcome(done), _refund_level(done))
        return redirect(back)


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
