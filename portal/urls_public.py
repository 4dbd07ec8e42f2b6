"""URLs on the bare host (public schema): the platform operator's admin."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from django.views.generic import RedirectView

from billing.webhooks import stripe_webhook
from providers.admin import platform_site

from . import views

urlpatterns = [
    path("", views.public_home, name="public_home"),
    path("admin/", platform_site.urls),
    # Where LoginRequiredMiddleware sends logged-out visitors (LOGIN_URL):
    # on the bare host, the platform admin's login.
    path(
        "login/",
        login_not_required(RedirectView.as_view(url="/admin/login/", query_string=True)),
        name="login",
    ),
    path("healthz", views.health, name="health"),
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
]

handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.page_not_found"
handler500 = "portal.views.server_error"
