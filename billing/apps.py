from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from providers.services import money_held_checks

        from . import sections  # noqa: F401  (registers the dashboard sections)
        from .selectors import money_exists

        money_held_checks.append(money_exists)
