from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BenefitsConfig(AppConfig):
    name = "benefits"
    verbose_name = _("Benefits")

    def ready(self):
        from enrollments import services as enrollments
        from providers.services import policy_sentence_writers

        from . import (
            rules,
            sections,  # noqa: F401  (registers the dashboard section)
            services,
        )

        # The make-up policy parents see states these rules (benefits.rules).
        policy_sentence_writers.append(rules.policy_sentences)

        # Tokens come from the provider's rules when an absence is reported in
        # time or the school cancels a session, and go when the absence is
        # cancelled or the child leaves that class.
        enrollments.absence_reported_hooks.append(services.tokens_for_absence)
        enrollments.absence_cancelled_hooks.append(services.tokens_for_cancelled_absence)
        enrollments.class_left_hooks.append(services.tokens_for_left_class)
        enrollments.session_cancelled_hooks.append(services.tokens_for_cancelled_session)
        enrollments.session_cancel_preview_hooks.append(services.cancellation_preview)
