from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

from portal.clock import today as portal_today
from portal.tenancy import current_provider
from portal.uploads import MEGABYTE, ImageUploadField
from portal.validators import validate_plain_name

from .models import ContactEmail, ContactPhone, MailingAddress, Student

MAX_PHOTO_BYTES = 5 * MEGABYTE
PHOTO_MAX_SIDE = 1024


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class StudentForm(forms.ModelForm):
    photo = ImageUploadField(
        max_bytes=MAX_PHOTO_BYTES,
        max_side=PHOTO_MAX_SIDE,
        what=_("The photo"),
        stem="photo",
        required=False,
        label=_("Photo"),
        help_text=_("Optional. Without a photo we show initials. JPEG or PNG, up to 5 MB."),
    )

    class Meta:
        model = Student
        fields = ["first_name", "last_name", "date_of_birth", "gender", "medical_notes", "photo"]
        widgets = {
            "date_of_birth": DateInput(),
            "medical_notes": forms.Textarea(attrs={"rows": 3, "data-counter": ""}),
        }
        help_texts = {
            "medical_notes": _("Allergies, conditions or anything the instructor should know."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date_of_birth"].required = True
        self.fields["gender"].required = False
        self.fields["first_name"].widget.attrs["autocomplete"] = "off"

    def clean_date_of_birth(self):
        born = self.cleaned_data["date_of_birth"]
        today = portal_today()
        if born > today:
            raise forms.ValidationError(_("The date of birth cannot be in the future."))
        if born.year < today.year - 100:
            raise forms.ValidationError(_("Check the year: that is more than 100 years ago."))
        return born


class PermissionsMixin(forms.Form):
    can_pay = forms.BooleanField(label=_("May pay"), required=False)
    can_edit_students = forms.BooleanField(label=_("May edit students"), required=False)
    can_manage_enrollments = forms.BooleanField(label=_("May manage enrolments"), required=False)


class GuardianAddForm(PermissionsMixin):
    first_name = forms.CharField(
        label=_("First name"), max_length=80, validators=[validate_plain_name]
    )
    last_name = forms.CharField(
        label=_("Last name"), max_length=80, validators=[validate_plain_name]
    )
    email = forms.EmailField(
        label=_("E-mail address"),
        required=False,
        help_text=_("Needed to send a login invitation."),
    )
    send_invitation = forms.BooleanField(
        label=_("Send a login invitation now"), required=False, initial=True
    )
    field_order = ["first_name", "last_name", "email", "send_invitation"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("send_invitation") and not cleaned.get("email"):
            self.add_error("email", _("Enter an e-mail address to send the invitation to."))
        return cleaned


class GuardianEditForm(PermissionsMixin):
    first_name = forms.CharField(
        label=_("First name"), max_length=80, validators=[validate_plain_name]
    )
    last_name = forms.CharField(
        label=_("Last name"), max_length=80, validators=[validate_plain_name]
    )
    field_order = ["first_name", "last_name"]

    def __init__(self, *args, names_editable: bool, permissions_editable: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not names_editable:
            del self.fields["first_name"], self.fields["last_name"]
        if not permissions_editable:
            for name in ("can_pay", "can_edit_students", "can_manage_enrollments"):
                del self.fields[name]


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"))


class AcceptInvitationForm(forms.Form):
    new_password1 = forms.CharField(
        label=_("Choose a password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    new_password2 = forms.CharField(
        label=_("Type it again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_new_password2(self):
        first = self.cleaned_data.get("new_password1")
        second = self.cleaned_data.get("new_password2")
        if first and second and first != second:
            raise forms.ValidationError(_("The two passwords differ. Type the same one twice."))
        return second


class ContactEmailForm(forms.ModelForm):
    class Meta:
        model = ContactEmail
        fields = ["email", "blasts_opt_out"]


class ContactPhoneForm(forms.ModelForm):
    class Meta:
        model = ContactPhone
        fields = ["number", "kind", "sms_opt_out"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        region = getattr(current_provider(), "country", None) or None
        self.fields["number"] = PhoneNumberField(
            label=_("Phone number"),
            region=region,
            help_text=_(
                "Local numbers are read as %(country)s; add + and a country code otherwise."
            )
            % {"country": region},
            widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
            error_messages={
                "invalid": _("Enter a valid phone number, e.g. 041 123 456 or +44 20 7946 0321.")
            },
        )


class AddressForm(forms.ModelForm):
    class Meta:
        model = MailingAddress
        fields = ["line1", "line2", "postcode", "city", "region", "country"]
        widgets = {
            "line1": forms.TextInput(attrs={"autocomplete": "address-line1"}),
            "line2": forms.TextInput(attrs={"autocomplete": "address-line2"}),
            "postcode": forms.TextInput(attrs={"autocomplete": "postal-code"}),
            "city": forms.TextInput(attrs={"autocomplete": "address-level2"}),
            "country": forms.TextInput(attrs={"autocomplete": "country", "maxlength": 2}),
        }
        help_texts = {"country": _("Two-letter code, e.g. SI or GB.")}

    def clean_country(self):
        return (self.cleaned_data.get("country") or "").upper()


CONTACT_FORMS = {"email": ContactEmailForm, "phone": ContactPhoneForm, "address": AddressForm}
