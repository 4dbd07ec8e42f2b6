"""Seconds from nothing to a provider whose staff can log in: the provider,
its schema and domain, a staff login, and its login page answering. Prints
the seconds on the last line (used by `make bench`)."""

from __future__ import annotations

import secrets
import time

from django.core.management.base import BaseCommand
from django.test import Client
from django.urls import reverse

from providers.services import provider_create, staff_user_ensure


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        slug = f"ready-{secrets.token_hex(4)}"
        host = f"{slug}.localhost"
        start = time.perf_counter()
        provider = provider_create(slug=slug, name="Ready Check Club", domains=[host])
        staff_user_ensure(
            provider=provider,
            email=f"desk@{host}",
            password=secrets.token_urlsafe(12),
            full_name="Front desk",
        )
        response = Client().get(reverse("login"), HTTP_HOST=host)
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"the login page answered {response.status_code}")
        self.stdout.write(f"{seconds:.3f}")
