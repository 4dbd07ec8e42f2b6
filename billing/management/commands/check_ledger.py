"""`manage.py check_ledger [--provider SLUG]`: the books' invariants
(billing.invariants) in every provider's schema, or one. What fails is
printed and recorded as a Finding staff see; the exit status is 1 when
anything was found, 0 when the books hold."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing import invariants
from portal.tenancy import provider_language
from providers.models import Provider


class Command(BaseCommand):
    help = (
        "Check the books of every provider (or one): balances are the sums of their entries, "
        "each succeeded payment is booked once for its amount, refunds are booked, no order "
        "is below zero, passes and tokens agree with their histories. Findings are recorded "
        "for staff; exits 1 if anything was found."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", metavar="SLUG", help="Check this provider only.")

    def handle(self, *args, **options):
        providers = Provider.objects.ready().order_by("slug")
        if options["provider"]:
            providers = providers.filter(slug=options["provider"])
            if not providers.exists():
                raise CommandError(f"No provider with slug {options['provider']!r} is set up.")
        found = 0
        for provider in providers:
            with tenant_context(provider), provider_language():
                problems = invariants.check_all()
                invariants.record(problems)
            for problem in problems:
                self.stdout.write(f"{provider.slug}: {problem}")
            if not problems:
                self.stdout.write(f"{provider.slug}: the books hold.")
            found += len(problems)
        if found:
            raise CommandError(
                f"{found} problem(s) found; recorded as findings for staff.", returncode=1
            )
