from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnrollmentsConfig(AppConfig):
    name = "enrollments"
    verbose_name = _("Classes and enrolments")

    def ready(self):
        from families import services as families

        from . import (
            sections,  # noqa: F401  (registers the dashboard sections)
            services,
        )

        # A guardian who lost access must not keep a working calendar link.
        families.access_revoked_hooks.append(
            lambda guardian: services.calendar_feeds_revoke(family=guardian.family)
        )
