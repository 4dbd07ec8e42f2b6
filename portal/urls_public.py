"""URLs on the bare host (public schema): the platform operator's admin."""

from django.urls import path

from billing.webhooks import stripe_webhook
from providers.admin import platform_site

from . import views

urlpatterns = [
    path("", views.public_home, name="public_home"),
    path("admin/", platform_site.urls),
    path("healthz", views.health, name="health"),
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
]

handler500 = "portal.views.server_error"
