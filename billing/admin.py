"""Staff: orders and lines, offline payments, refunds, adjustments with a
reason, and a family's ledger. Entries are written by services only."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import action
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminTextInputWidget

from families.models import Family
from families.selectors import family_search
from portal.adminactions import ReadOnlyAdmin, action_form
from portal.adminsample import AdminSample, first_pk
from portal.exceptions import PortalError
from portal.templatetags.portal import money
from portal.tenancy import current_provider

from . import gateway, services
from .forms import (
    DeskPaymentActionForm,
    DeskPaymentForm,
    OrderForm,
    OrderLineFormSet,
    StaffPromoCodeForm,
)
from .models import Finding, Invoice, LedgerEntry, Order, OrderLine, Payment, Refund, StripeEvent


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


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    """Orders are made by the service (lines, discounts, the charge and the
    invoice together: the add page is its form); payments taken at the desk
    and promo codes are forms of their own on the order's page."""

    list_display = ["number", "title", "family", "student", "location", "due_date", "created_at"]
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
    actions_detail = ["record_payment", "apply_promo_code"]
    sample = AdminSample(add=_sample_order)

    def get_readonly_fields(self, request, obj=None):
        # Once charged, who and where it is for stay; corrections are adjustments.
        return ["family", "student", "location", "promo"] if obj else []

    # --- New order: the service's form -----------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        raw = request.POST.get("family") or request.GET.get("family") or ""
        family = Family.objects.filter(pk=raw).first() if raw.isdigit() else None
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
        "note",
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
    list_display = ["at", "family", "kind", "amount_shown", "description", "order", "actor_name"]
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
    order = services.order_create(
        family=Family.objects.order_by("pk")[0],
        title="Sample",
        lines=[{"kind": "other", "description": "Sample", "unit_price": Decimal("5.00")}],
    )
    payment = services.payment_record_offline(
        order=order, amount=Decimal("5.00"), method="cash", key="sample", actor_user=None
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
