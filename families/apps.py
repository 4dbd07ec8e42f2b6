from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FamiliesConfig(AppConfig):
    name = "families"
    verbose_name = _("Families")

    def ready(self):
        from . import sections  # noqa: F401  (registers the dashboard sections)
