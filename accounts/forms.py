from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from unfold.forms import AuthenticationForm as AdminAuthenticationForm

from portal import limits
from portal.tasks import queue_email
from portal.tenancy import provider_language

from .emails import normalise
from .models import User

THROTTLED = _("Too many failed attempts. Try again in %(wait)s, or reset your password.")


class ThrottledLogin:
    """Every attempt is counted before the password is checked, per e-mail
    address (normalised: the address any spelling of it logs in to) and per
    client address (portal.limits): attempts sent at once each get their own
    number, so a burst checks no more passwords than the limit allows. A
    successful login clears the address's failures and gives its own try
    back. Past the limit the form refuses even the right password until the
    window passes. Fails open when the cache is down."""

    def clean(self):
        email = normalise(self.cleaned_data.get("username"))
        address = limits.client_address(self.request)
        if email:
            try:
                limits.take(limits.LOGIN_EMAIL, email)
                limits.take(limits.LOGIN_ADDRESS, address)
            except limits.LimitReached as refused:
                raise forms.ValidationError(
                    THROTTLED,
                    code="throttled",
                    params={"wait": limits.wait_text(refused.retry_after)},
                ) from None
        cleaned = super().clean()
        if email:
            limits.clear(limits.LOGIN_EMAIL, email)
            limits.give_back(limits.LOGIN_ADDRESS, address)
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

    def get_users(self, email):
        """The active login with this address, compared normalised and
        exactly (accounts.emails), as every login lookup is."""
        return (
            user
            for user in User.objects.filter(email=normalise(email), is_active=True)
            if user.has_usable_password()
        )

    def limit(self, *, address: str) -> None:
        """Count this reset e-mail against the limits per address typed and
        per client address; LimitReached (for the e-mail field) past them.
        Counted whether or not the address has a login: the answer is the
        same either way."""
        limits.take(limits.RESET_ADDRESS, address, field="email")
        limits.take(limits.RESET_EMAIL, normalise(self.cleaned_data["email"]), field="email")

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
