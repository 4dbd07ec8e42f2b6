from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from portal.templatetags.portal import money


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
                % {"number": o.number, "title": o.title, "owed": money(o.owed)},
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
