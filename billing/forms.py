"""Forms for money actions: a new order at the front desk, a payment taken at
the desk, a promo code on an order, credit applied to an order. Each form
checks what it can see; the service decides the rest and its refusal is
shown next to its field."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanWidget,
)

from enrollments.models import Enrollment, Location
from families.models import Family, Student
from portal import formatting
from portal.clock import today

from .models import OrderLine, Payment
from .services import LineSpec, new_attempt_key

LINE_KINDS = [(k, label) for k, label in OrderLine.Kind.choices if k != OrderLine.Kind.DISCOUNT]


class OrderForm(forms.Form):
    """A new order for one family: staff pick the child, location, due date
    and an optional promo code; the lines come in `OrderLineFormSet`."""

    family = forms.ModelChoiceField(queryset=Family.objects.all(), widget=forms.HiddenInput)
    student = forms.ModelChoiceField(
        label=_("Child"),
        queryset=Student.objects.none(),
        required=False,
        empty_label=_("The whole family"),
        widget=UnfoldAdminSelectWidget,
    )
    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=Location.objects.filter(is_active=True),
        required=False,
        empty_label=_("No particular location"),
        widget=UnfoldAdminSelectWidget,
        help_text=_("The statement of this location lists the order."),
    )
    title = forms.CharField(
        label=_("What the order is for"),
        max_length=200,
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("For example “Autumn term: Swim Level 2”. Empty: the first line's text."),
    )
    due_date = forms.DateField(
        label=_("Due date"), required=False, widget=UnfoldAdminSingleDateWidget
    )
    promo_code = forms.CharField(
        label=_("Promo code"),
        max_length=40,
        required=False,
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "off"}),
        help_text=_("One per order."),
    )
    apply_discounts = forms.BooleanField(
        label=_("Apply the family's discounts (sibling, multi-class, promotions it holds)"),
        required=False,
        initial=True,
        widget=UnfoldBooleanWidget,
    )

    def __init__(self, *args: Any, family: Family, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["family"].initial = family.pk
        cast(forms.ModelChoiceField, self.fields["family"]).queryset = Family.objects.filter(
            pk=family.pk
        )
        cast(forms.ModelChoiceField, self.fields["student"]).queryset = Student.objects.filter(
            family=family
        )


class EnrollmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.student.first_name}: {obj.klass}"


class OrderLineForm(forms.Form):
    description = forms.CharField(
        label=_("Description"), max_length=200, widget=UnfoldAdminTextInputWidget
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=LINE_KINDS,
        initial=OrderLine.Kind.ENROLLMENT,
        widget=UnfoldAdminSelectWidget,
    )
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        max_value=999,
        initial=1,
        widget=UnfoldAdminIntegerFieldWidget,
    )
    unit_price = forms.DecimalField(
        label=_("Price each"),
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=2,
        widget=UnfoldAdminDecimalFieldWidget,
    )
    enrollment = EnrollmentChoiceField(
        label=_("For the enrolment"),
        queryset=Enrollment.objects.none(),
        required=False,
        empty_label=_("None"),
        widget=UnfoldAdminSelectWidget,
        help_text=_("Links a class fee to its enrolment (sibling and multi-class discounts)."),
    )

    def __init__(self, *args: Any, family: Family, **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["enrollment"])
        field.queryset = Enrollment.objects.filter(
            student__family=family, status=Enrollment.Status.ACTIVE, kind=Enrollment.Kind.REGULAR
        ).select_related("student", "klass__programme")


class BaseLineFormSet(forms.BaseFormSet):
    def lines(self) -> list[LineSpec]:
        return [
            {
                "kind": form.cleaned_data["kind"],
                "description": form.cleaned_data["description"],
                "quantity": form.cleaned_data["quantity"],
                "unit_price": form.cleaned_data["unit_price"],
                "enrollment": form.cleaned_data.get("enrollment"),
            }
            for form in self.forms
            if form.has_changed() and form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        if any(self.errors):
            return
        if not self.lines():
            raise forms.ValidationError(_("Add at least one line: what the family pays for."))


OrderLineFormSet = forms.formset_factory(
    OrderLineForm, formset=BaseLineFormSet, extra=3, max_num=20, validate_max=True
)


class DeskPaymentForm(forms.Form):
    """Money taken at the desk or received by bank transfer. `key` is made
    when the form is shown: the same form sent twice records once."""

    amount = forms.DecimalField(
        label=_("Amount received"),
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        widget=UnfoldAdminDecimalFieldWidget,
        help_text=_("What is owed, or less for part of it."),
    )
    method = forms.ChoiceField(
        label=_("How it was paid"),
        choices=[
            (Payment.Method.CASH, Payment.Method.CASH.label),
            (Payment.Method.DESK_CARD, Payment.Method.DESK_CARD.label),
            (Payment.Method.BANK, Payment.Method.BANK.label),
        ],
        widget=UnfoldAdminSelectWidget,
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=200,
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("A receipt number or the transfer's reference, say."),
    )
    key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, owed: Decimal | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("key", new_attempt_key())
            if owed is not None and owed > 0:
                self.initial.setdefault("amount", owed)


class DeskPaymentActionForm(forms.Form):
    """The list's action: what each chosen order owes, paid at the desk."""

    method = DeskPaymentForm.base_fields["method"]
    note = DeskPaymentForm.base_fields["note"]
    key = DeskPaymentForm.base_fields["key"]


class PromoCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Promo code"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )


class StaffPromoCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Promo code"),
        max_length=40,
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "off"}),
        help_text=_("One per order; it reduces what is still owed."),
    )


class ApplyCreditForm(forms.Form):
    """How much of the family's credit goes to which unpaid order; the key
    makes a double submit apply once."""

    order = forms.TypedChoiceField(label=_("Order"), coerce=int)
    amount = forms.DecimalField(
        label=_("Amount of credit to apply"),
        required=False,
        min_value=Decimal("0.01"),
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        help_text=_("Leave empty to apply as much as you can."),
    )
    key = forms.CharField(max_length=40, widget=forms.HiddenInput)

    def __init__(self, *args, orders, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["order"].choices = [
            (
                o.pk,
                _("#%(number)s %(title)s, %(owed)s owed")
                % {"number": o.number, "title": o.title, "owed": formatting.money(o.owed)},
            )
            for o in orders
        ]


class BankAccountForm(forms.Form):
    """A bank account for SEPA Direct Debit, and the mandate it needs."""

    holder = forms.CharField(
        label=_("Account holder"),
        max_length=100,
        error_messages={"required": _("Enter the name on the bank account.")},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    iban = forms.CharField(
        label=_("IBAN"),
        max_length=42,
        error_messages={"required": _("Enter your IBAN.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    mandate = forms.BooleanField(
        label=_("I accept the SEPA Direct Debit mandate above."),
        error_messages={"required": _("Accept the mandate to pay from your bank account.")},
    )

    def clean_iban(self) -> str:
        try:
            iban = IBAN(self.cleaned_data["iban"])
        except SchwiftyException as error:
            raise forms.ValidationError(
                _("This is not a valid IBAN: check it against your bank statement.")
            ) from error
        if not iban.in_sepa_zone:
            raise forms.ValidationError(
                _("This account is outside the SEPA area: pay by card instead.")
            )
        return iban.compact

    def first_error(self) -> tuple[str, str]:
        """(field, message) of the first error, for the page's message."""
        for name in ("holder", "iban", "mandate"):
            if name in self.errors:
                return name, str(self.errors[name][0])
        return "iban", str(next(iter(self.errors.values()))[0])


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


LEDGER_DAYS = 30  # without the provider's full ledger history


class DocumentForm(forms.Form):
    """A statement (what is owed now) or a ledger (entries over a period), for
    one location or all. The location defaults to the parent's current one;
    a period is chosen only where the provider keeps full ledger history,
    otherwise a ledger covers the last 30 days."""

    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=Location.objects.filter(is_active=True),
        required=False,
        empty_label=_("All locations"),
    )
    date_from = forms.DateField(label=_("Ledger from"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("Ledger until"), required=False, widget=DateInput())

    def __init__(self, *args: Any, full_history: bool, kind: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.full_history = full_history
        self.kind = kind
        if not full_history:
            del self.fields["date_from"], self.fields["date_to"]
        else:
            self.fields["date_to"].initial = today()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day = today()
        if self.kind == "statement":  # what is owed today: no period
            cleaned["date_from"] = cleaned["date_to"] = None
            return cleaned
        if not self.full_history:
            cleaned["date_from"], cleaned["date_to"] = day - timedelta(days=LEDGER_DAYS), day
            return cleaned
        start: date | None = cleaned.get("date_from")
        end: date | None = cleaned.get("date_to") or day
        if end and end > day:
            self.add_error("date_to", _("The ledger can end today at the latest."))
        if start and end and start > end:
            self.add_error(
                "date_from",
                _("The start date must be on or before the end date (%(end)s).")
                % {"end": formatting.day(end)},
            )
        cleaned["date_from"] = start or (end - timedelta(days=LEDGER_DAYS) if end else None)
        cleaned["date_to"] = end
        return cleaned
