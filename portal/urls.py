"""URLs on a provider's host (tenant schema)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from families import staff as family_staff
from providers import views as provider_views

from . import views

admin.site.site_header = _("Family portal: staff")
admin.site.site_title = _("Family portal staff")

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("sections/<slug:key>/", views.section, name="section"),
    path("accounts/", include("accounts.urls")),
    path("", include("families.urls")),
    path("", include("enrollments.urls")),
    path("", include("benefits.urls")),
    path("", include("billing.urls")),
    path("admin/", admin.site.urls),
    path("branding/logo", views.provider_logo, name="provider_logo"),
    path("healthz", views.health, name="health"),
    path("dev/outbox/", views.outbox, name="outbox"),
    path("staff/", include("desk.urls")),
    path("staff/embed/", views.embed, name="embed"),
    path("staff/embed/allow/<int:pk>/", views.embed_allow, name="embed_allow"),
    path("staff/settings/", provider_views.settings_page, name="provider_settings"),
    path(
        "staff/settings/preview/", provider_views.settings_preview, name="provider_settings_preview"
    ),
    path("staff/view-as/<int:pk>/", family_staff.view_as_start, name="view_as_start"),
    path("staff/view-as/stop/", family_staff.view_as_stop, name="view_as_stop"),
    path(
        "staff/reports/<int:pk>/screenshot",
        family_staff.report_screenshot,
        name="report_screenshot",
    ),
    path("report-a-problem/", family_staff.report_problem, name="report_problem"),
]

if settings.BENCH_VIEWS:
    urlpatterns.append(path("bench/", include("devtools.urls")))

handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.page_not_found"
handler500 = "portal.views.server_error"
