from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnrollmentsConfig(AppConfig):
    name = "enrollments"
    verbose_name = _("Classes and enrolments")

    def ready(self):
        from . import sections  # noqa: F401  (registers the dashboard sections)
