"""Staff: orders and lines, offline payments, refunds from a payment (what
the refund means, how the money goes back), cancelling an order and credit
notes, adjustments with a reason, and a family's ledger. Entries are written
by services only."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
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
from families.selectors import family_search
from portal.adminactions import ReadOnlyAdmin, action_form, form_for_user
from portal.adminsample import AdminSample, first_pk
from portal.exceptions import PortalError
from portal.params import int_param
from portal.templatetags.portal import money
from portal.tenancy import current_provider

from . import selectors, services
from .forms import (
    DeskPaymentActionForm,
    DeskPaymentForm,
    OrderForm,
    OrderLineFormSet,
    StaffPromoCodeForm,
)
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
    """Lines are fixed once charged: a correction is an adjustment."""

    model = OrderLine
    extra = 0
    fields = ["kind", "description", "quantity", "unit_price", "amount_shown"]
    readonly_fields = fields
    can_delete = False

    @admin.display(description=_("amount"))
    def amount_shown(self, line):
        return money(line.amount)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EntryInline(TabularInline):
    model = LedgerEntry
    extra = 0
    fields = ("at", "kind", "amount", "description", "actor_name")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _sample_order() -> dict[str, str]:
    return {
        "family": str(first_pk(Family)),
        "title": "Sample order",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-0-kind": OrderLine.Kind.OTHER,
        "lines-0-description": "Sample line",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "12.00",
    }


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
    """Orders are made by the service (lines, discounts, the charge and the
    invoice together: the add page is its form); payments taken at the desk
    and promo codes are forms of their own on the order's page."""

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
    actions_detail = ["record_payment", "apply_promo_code"]
    sample = AdminSample(add=_sample_order)

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
        # Once charged, who and where it is for stay; corrections are adjustments.
        # Cancelling is the action (a credit note reverses the charge).
        fixed = ["status_shown", "family", "student", "location", "promo"]
        return [*fixed, "cancelled_at", "cancel_reason", "cancelled_by"] if obj else []

    def save_model(self, request, obj, form, change):
        """A change saves its title and due date through the service (new
        orders are made by the add page's own form)."""
        if not change:
            return super().save_model(request, obj, form, change)
        try:
            services.order_details_change(
                order=obj,
                title=form.cleaned_data.get("title", obj.title),
                due_date=form.cleaned_data.get("due_date"),
                actor_user=request.user,
            )
        except PortalError as error:
            self.message_user(request, str(error), messages.ERROR)

    def save_related(self, request, form, formsets, change):
        if not change:
            return super().save_related(request, form, formsets, change)
        for formset in formsets:  # lines are fixed once charged: nothing is written
            formset.save(commit=False)

    # --- New order: the service's form -----------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        family_id = int_param(request, "family")
        family = Family.objects.filter(pk=family_id).first() if family_id else None
        if family is None:
            return self._family_first(request)
        post = request.POST if request.method == "POST" else None
        form = OrderForm(post, family=family)
        lines = OrderLineFormSet(post, prefix="lines", form_kwargs={"family": family})
        if post is not None and form.is_valid() and lines.is_valid():
            data = form.cleaned_data
            items = lines.lines()
            try:
                order = services.order_create(
                    family=family,
                    title=data["title"] or items[0]["description"],
                    lines=items,
                    student=data["student"],
                    location=data["location"],
                    due_date=data["due_date"],
                    promo_code=data["promo_code"],
                    discounts=data["apply_discounts"],
                    actor=request.user,
                )
            except PortalError as error:
                if error.field in form.fields:
                    form.add_error(error.field, str(error))
                else:
                    lines._non_form_errors = lines.error_class([str(error)])
            else:
                self.log_addition(request, order, [{"added": {}}])
                self.message_user(
                    request,
                    _("Order #%(number)s made: %(total)s charged, invoice issued.")
                    % {"number": order.number, "total": money(services.order_outstanding(order))},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:billing_order_change", args=[order.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("New order for the %(name)s family") % {"name": family.name},
            "opts": self.model._meta,
            "family": family,
            "form": form,
            "lines": lines,
            "media": self.media + form.media + lines.media,
        }
        return TemplateResponse(request, "admin/billing/order/new.html", context)

    def _family_first(self, request):
        """The family is found first (as at the desk's search): the child,
        enrolments and discounts offered depend on it."""
        query = request.GET.get("q", "").strip()[:100]
        hits = family_search(query, region=current_provider().country) if query else None
        context = {
            **self.admin_site.each_context(request),
            "title": _("New order: which family?"),
            "opts": self.model._meta,
            "query": query,
            "hits": hits,
        }
        return TemplateResponse(request, "admin/billing/order/family.html", context)

    # --- On the order's page: a desk payment, a promo code ----------------------------------

    @action(
        description=_("Record a payment"),
        url_path="record-payment",
        permissions=["change"],  # billing.change_order
    )
    def record_payment(self, request, object_id):
        order = get_object_or_404(Order.objects.select_related("family"), pk=object_id)
        owed = services.order_outstanding(order)
        form = DeskPaymentForm(request.POST or None, owed=owed)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                payment = services.payment_record_offline(
                    order=order,
                    amount=data["amount"],
                    method=data["method"],
                    key=data["key"],
                    note=data["note"],
                    actor_user=request.user,
                )
            except PortalError as error:
                form.add_error(error.field if error.field in form.fields else None, str(error))
            else:
                self.message_user(
                    request,
                    _("%(amount)s recorded (%(method)s); the family gets a receipt by e-mail.")
                    % {"amount": money(payment.amount), "method": payment.get_method_display()},
                    messages.SUCCESS,
                )
                return _back(request, reverse("admin:billing_order_change", args=[order.pk]))
        return self._form_page(
            request,
            order,
            form,
            title=_("Record a payment for order #%(number)s") % {"number": order.number},
            intro=_("%(family)s owes %(owed)s on “%(title)s”.")
            % {"family": order.family.name, "owed": money(owed), "title": order.title},
            button=_("Record payment"),
        )

    @action(
        description=_("Apply a promo code"),
        url_path="promo-code",
        permissions=["change"],  # billing.change_order
    )
    def apply_promo_code(self, request, object_id):
        order = get_object_or_404(Order.objects.select_related("family"), pk=object_id)
        form = StaffPromoCodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                taken = services.order_promo_apply(
                    order=order, code=form.cleaned_data["code"], actor=request.user
                )
            except PortalError as error:
                form.add_error("code", str(error))
            else:
                self.message_user(
                    request,
                    _("Promo code applied: %(amount)s off.") % {"amount": money(taken)},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:billing_order_change", args=[order.pk]))
        return self._form_page(
            request,
            order,
            form,
            title=_("Apply a promo code to order #%(number)s") % {"number": order.number},
            intro=_("Still owed: %(owed)s.") % {"owed": money(services.order_outstanding(order))},
            button=_("Apply code"),
        )

    def _form_page(self, request, order, form, *, title, intro, button):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "opts": self.model._meta,
            "order": order,
            "form": form,
            "button": button,
            "next": request.GET.get("next") or request.POST.get("next", ""),
        }
        return TemplateResponse(request, "admin/billing/order/form_page.html", context)

    @admin.action(description=_("Record what is owed as paid at the desk"), permissions=["change"])
    def record_offline_payment(self, request, queryset):
        def apply(order, data):
            payment = services.payment_record_offline(
                order=order,
                amount=None,  # what is owed, worked out under the order lock
                method=data["method"],
                key=data["key"],
                note=data["note"],
                actor_user=request.user,
            )
            return _("#%(number)s: %(amount)s recorded") % {
                "number": order.number,
                "amount": money(payment.amount),
            }

        return action_form(
            self,
            request,
            queryset,
            form_class=DeskPaymentActionForm,
            title=_("Record what is owed as paid at the desk"),
            apply=apply,
            button=_("Record payments"),
            initial={"key": services.new_attempt_key()},
        )


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


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
        "note",
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
    list_display = ["at", "family", "kind", "amount_shown", "description", "order", "actor_name"]
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
        order=order, amount=Decimal("5.00"), method="cash", key="sample", actor_user=None
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
