from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class VoucherForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    student = forms.ChoiceField(
        label=_("For which child (pass vouchers)"),
        required=False,
        help_text=_("Leave empty for the whole family."),
    )

    def __init__(self, *args, students, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["student"].choices = [("", _("Whole family"))] + [
            (str(s.pk), s.full_name) for s in students
        ]


class MakeupRequestForm(forms.Form):
    note = forms.CharField(
        label=_("Message to the office"),
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "data-counter": ""}),
        help_text=_("Which session was missed, for example."),
    )
