from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from portal import limits

from .forms import LoginForm, QueuedPasswordResetForm


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    form_class = QueuedPasswordResetForm
    success_url = reverse_lazy("password_reset_done")
    subject_template_name = "registration/password_reset_subject.txt"
    email_template_name = "registration/password_reset_email.txt"

    def form_valid(self, form):
        try:
            form.limit(address=limits.client_address(self.request))
        except limits.LimitReached as refused:
            form.add_error(refused.field, str(refused))
            return self.form_invalid(form)
        self.extra_email_context = {"provider": self.request.tenant}
        return super().form_valid(form)
