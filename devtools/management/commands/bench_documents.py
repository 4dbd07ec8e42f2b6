"""Benchmark: seconds to render a statement and a ledger report of 100, 1,000
and 5,000 lines (the goal: 1,000 lines in under 3 s on 2 cores), each from
its data in the database to the finished file. Prints a table; data goes to
a provider of its own ("bench")."""

from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_tenants.utils import tenant_context

from devtools import scale
from providers.models import Provider
from providers.services import provider_create


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--sizes", default="100,1000,5000")
        parser.add_argument("--profile", action="store_true", help="cProfile the renders")
        parser.add_argument(
            "--repeat", type=int, default=3, help="median of this many runs, up to 2,000 lines"
        )

    def handle(self, *args, **options):
        from billing import pdf
        from billing.models import Document, LedgerEntry, Order, OrderLine
        from families.models import Family

        provider = Provider.objects.filter(slug="bench").first() or provider_create(
            slug="bench", name="Benchmark Swim Club", domains=["bench.localhost"]
        )
        sizes = [int(s) for s in options["sizes"].split(",")]
        rows = []
        profiler = None
        if options["profile"]:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        with tenant_context(provider):
            # A worker imports WeasyPrint and loads its fonts once, at its
            # first document: timed apart from the documents.
            start = time.perf_counter()
            pdf.render("billing/pdf/numbers.html", {"pages": range(1)}, provider=provider)
            self.stdout.write(
                f"first document in a new process: {time.perf_counter() - start:.2f} s"
            )
            for size in sizes:
                family = Family.objects.create(name=f"Bench {size} {timezone.now():%H%M%S}")
                orders = Order.objects.bulk_create(
                    [Order(family=family, title=f"Lesson fee {n}") for n in range(size)]
                )
                OrderLine.objects.bulk_create(
                    [
                        OrderLine(
                            order=o,
                            kind="enrollment",
                            description=o.title,
                            unit_price=Decimal("12.50"),
                        )
                        for o in orders
                    ]
                )
                now = timezone.now()
                LedgerEntry.objects.bulk_create(
                    [
                        LedgerEntry(
                            family=family,
                            order=o,
                            kind="charge",
                            amount=Decimal("12.50"),
                            description=o.title,
                            at=now - timedelta(minutes=n),
                        )
                        for n, o in enumerate(orders)
                    ]
                )
                today = timezone.localdate()
                documents = [
                    Document(family=family, kind="statement"),
                    Document(
                        family=family,
                        kind="ledger",
                        date_from=today - timedelta(days=30),
                        date_to=today,
                    ),
                ]
                # Nothing of the writes above (autovacuum) shares the cores.
                scale.settle(provider.schema_name)
                runs = options["repeat"] if size <= 2000 else 1
                statement, ledger = (
                    statistics.median(seconds(document, provider) for _ in range(runs))
                    for document in documents
                )
                rows.append((size, statement, ledger))
        if profiler:
            import pstats

            profiler.disable()
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)
        self.stdout.write("lines   statement_s   ledger_s")
        for size, statement, ledger in rows:
            self.stdout.write(f"{size:>5}   {statement:>11.2f}   {ledger:>8.2f}")


def seconds(document, provider) -> float:
    """From the document's rows in the database to its finished PDF."""
    from billing import pdf
    from billing.tasks import document_source

    start = time.perf_counter()
    template, context, rows = document_source(document)
    pdf.render(template, context, provider=provider, rows=rows)
    return time.perf_counter() - start
