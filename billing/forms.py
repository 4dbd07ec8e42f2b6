from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from enrollments.models import Location
from portal import formatting
from portal.clock import today


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
