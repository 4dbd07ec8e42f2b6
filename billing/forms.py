from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

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
