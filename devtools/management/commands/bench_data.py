"""Data at scale for the benchmarks: the bench provider with a small and a
large family, and `--providers N` further providers (see portal/scale.py)."""

from __future__ import annotations

import statistics
import time

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from devtools import scale


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--providers", type=int, default=0)
        parser.add_argument("--jobs", type=int, default=2)

    def handle(self, *args, **options):
        start = time.perf_counter()
        provider = scale.bench_ensure()
        self.stdout.write(f"bench provider ready in {time.perf_counter() - start:.1f} s")
        with tenant_context(provider):
            for email in ("small@bench.test", "large@bench.test"):
                self.stdout.write(f"  {email}: {family_counts(email)}")
        if options["providers"]:
            start = time.perf_counter()
            timings = scale.providers_ensure(
                options["providers"], jobs=options["jobs"], report=self.stdout.write
            )
            if timings:
                self.stdout.write(
                    f"{len(timings)} providers made in {time.perf_counter() - start:.0f} s: "
                    f"median {statistics.median(timings):.2f} s, "
                    f"first {timings[0]:.2f} s, last {timings[-1]:.2f} s"
                )
        scale.settle()


def family_counts(email: str) -> str:
    from benefits.models import (
        CreditGrant,
        CreditUse,
        Discount,
        MakeupToken,
        Pass,
        PassEvent,
        TokenEvent,
    )
    from billing.models import LedgerEntry
    from enrollments.models import Enrollment
    from families.models import Guardian

    family = Guardian.objects.get(user__email=email).family
    benefits = (
        MakeupToken.objects.filter(student__family=family).count()
        + TokenEvent.objects.filter(token__student__family=family).count()
        + CreditGrant.objects.filter(family=family).count()
        + CreditUse.objects.filter(grant__family=family).count()
        + Pass.objects.filter(family=family).count()
        + PassEvent.objects.filter(pass_obj__family=family).count()
        + Discount.objects.filter(family=family).count()
    )
    return (
        f"{family.students.count()} children, "
        f"{Enrollment.objects.filter(student__family=family).count()} bookings, "
        f"{LedgerEntry.objects.filter(family=family).count()} ledger lines, "
        f"{benefits} benefit entries"
    )
