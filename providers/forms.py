from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from .branding import logo_clean, origins_clean
from .models import Provider
from .services import SETTINGS_FIELDS, provider_holds_money


class ColourInput(forms.TextInput):
    input_type = "color"


class LogoField(forms.FileField):
    """An uploaded logo, refused unless PNG, JPEG or WebP of at most 1 MB, and
    re-encoded (providers.branding.logo_clean). Not bound to the model: the
    service saves it (providers.services.provider_logo_set)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Logo"))
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            _(
                "PNG, JPEG or WebP, at most 1 MB; a square image works best. "
                "It is shown at most 512 pixels wide."
            ),
        )
        kwargs.setdefault(
            "widget", forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"})
        )
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        value = super().clean(data, initial)
        if isinstance(value, UploadedFile):
            return logo_clean(value)
        return None


class OriginsField(forms.CharField):
    """Websites allowed to frame the portal, one a line, normalised."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Websites allowed to show the portal"))
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            _(
                "One website a line, as https://www.example.com (no path). "
                "http:// is accepted only for localhost."
            ),
        )
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        return origins_clean(super().clean(value) or "")


class LogoFormMixin(forms.Form):
    """Upload a new logo or remove the current one."""

    logo_file = LogoField()
    logo_remove = forms.BooleanField(label=_("Remove the logo"), required=False)

    def logo_change(self) -> tuple[bool, Any]:
        """(whether the logo changes, the new file or None to remove it)."""
        upload = self.cleaned_data.get("logo_file")
        if upload is not None:
            return True, upload
        return bool(self.cleaned_data.get("logo_remove")), None


class ProviderSettingsForm(LogoFormMixin, forms.ModelForm):
    embed_origins = OriginsField()
    field_order = ["name", "primary_colour", "accent_colour", "logo_file", "logo_remove"]

    class Meta:
        model = Provider
        fields = SETTINGS_FIELDS
        widgets = {
            "primary_colour": ColourInput(),
            "accent_colour": ColourInput(),
            "cancellation_policy": forms.Textarea(attrs={"rows": 3}),
            "makeup_policy": forms.Textarea(attrs={"rows": 3}),
            "payment_instructions": forms.Textarea(attrs={"rows": 3}),
            "legal_address": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _echecks_switch(self)


def _echecks_switch(form: forms.ModelForm) -> None:
    """Show the bank account switch as unavailable, with the reason, where
    the provider's currency cannot be collected by SEPA Direct Debit."""
    reason = form.instance.echecks_unavailable_reason if form.instance.pk else ""
    field = form.fields.get("echecks_enabled")
    if field is not None and reason and not form.instance.echecks_enabled:
        field.disabled = True
        field.help_text = reason


class EmbedOriginsForm(forms.Form):
    embed_origins = OriginsField()


class ProviderAdminForm(LogoFormMixin, forms.ModelForm):
    """The platform admin's provider form: the logo and the allowed websites
    are checked as on the staff pages."""

    embed_origins = OriginsField()

    class Meta:
        model = Provider
        fields = ["embed_origins"]  # the admin's fieldsets name the rest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _echecks_switch(self)

    def clean_currency(self):
        """Refused next to the field once money exists (the admin shows it
        read-only then; this holds for a form sent from an older page)."""
        currency = self.cleaned_data["currency"]
        if (
            self.instance.pk
            and currency != self.instance.currency
            and provider_holds_money(self.instance)
        ):
            raise forms.ValidationError(
                _("The currency is fixed: orders, payments or ledger entries exist in it.")
            )
        return currency
