from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from unfold.forms import AuthenticationForm as AdminAuthenticationForm

from portal.tasks import queue_email
from portal.tenancy import provider_language

from . import throttle

THROTTLED = _("Too many failed attempts. Wait %(minutes)d minutes, or reset your password.")


class ThrottledLogin:
    """Failed attempts are counted per e-mail address and client address
    (accounts.throttle); past the limit the form refuses even the right
    password until the window passes. Fails open when the cache is down."""

    def clean(self):
        email = (self.cleaned_data.get("username") or "").lower()
        address = throttle.client_address(self.request)
        if email and throttle.is_locked(email, address):
            raise forms.ValidationError(
                THROTTLED,
                code="throttled",
                params={"minutes": max(1, settings.LOGIN_THROTTLE_WINDOW // 60)},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if email:
                throttle.record_failure(email, address)
            raise
        throttle.clear(email)
        return cleaned


class LoginForm(ThrottledLogin, AuthenticationForm):
    username = forms.EmailField(
        label=_("E-mail address"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "That e-mail address and password do not match an account here. "
            "Check both, or reset your password."
        ),
    }


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    """The staff admin's and the platform admin's login, throttled like the
    portal's (same limits, same counters)."""


class QueuedPasswordResetForm(PasswordResetForm):
    """Sends the reset e-mail from a Celery task after commit."""

    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        with provider_language():  # a staff login may read the admin in another
            subject = "".join(render_to_string(subject_template_name, context).splitlines())
            body = render_to_string(email_template_name, context)
        provider = context.get("provider")
        reply_to = [provider.support_email] if provider and provider.support_email else None
        queue_email(subject=subject, body=body, to=[to_email], reply_to=reply_to)
