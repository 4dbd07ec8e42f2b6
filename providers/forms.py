from __future__ import annotations

from django import forms

from .models import Provider
from .services import SETTINGS_FIELDS


class ColourInput(forms.TextInput):
    input_type = "color"


class ProviderSettingsForm(forms.ModelForm):
    class Meta:
        model = Provider
        fields = SETTINGS_FIELDS
        widgets = {
            "primary_colour": ColourInput(),
            "accent_colour": ColourInput(),
            "cancellation_policy": forms.Textarea(attrs={"rows": 3}),
            "makeup_policy": forms.Textarea(attrs={"rows": 3}),
            "payment_instructions": forms.Textarea(attrs={"rows": 3}),
        }
