from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FamiliesConfig(AppConfig):
    name = "families"
    verbose_name = _("Families")

    def ready(self) -> None:
        from providers import schema

        from . import changes

        schema.extra_sql_sources.append(changes.install_sql)
