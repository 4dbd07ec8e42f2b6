"""Print logged-in sessions of the bench provider's families as JSON, for the
load generator: {"small": [...25 small families...], "large": [...the large
family 25 times...]}; or one login's session with --login."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from devtools import scale
from providers.models import Provider


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--parents", type=int, default=25)
        parser.add_argument("--login", help="only this login's session: provider-slug:e-mail")

    def handle(self, *args, **options):
        if options["login"]:
            slug, email = options["login"].split(":", 1)
            with tenant_context(Provider.objects.get(slug=slug)):
                self.stdout.write(json.dumps(scale.sessions([email])[0]))
            return
        count = options["parents"]
        with tenant_context(Provider.objects.get(slug=scale.BENCH)):
            found = {
                "small": scale.sessions(scale.small_emails(count)),
                "large": scale.sessions(["large@bench.test"] * count),
            }
        self.stdout.write(json.dumps(found))
