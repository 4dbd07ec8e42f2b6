from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from accounts.services import owner_invite
from providers.models import Provider
from providers.services import provider_create, staff_user_ensure


class Command(BaseCommand):
    help = "Create a provider: its schema, its host name(s) and optionally a staff login."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument(
            "--domain",
            action="append",
            help="Host name (repeatable). Default: <slug>.<PORTAL_BASE_DOMAIN>",
        )
        parser.add_argument("--currency", default="EUR")
        parser.add_argument("--time-zone", default="Europe/Ljubljana")
        parser.add_argument("--language", default="en")
        parser.add_argument("--country", default="SI")
        parser.add_argument("--primary-colour", default="#1f5fbf")
        parser.add_argument("--accent-colour", default="#f2a900")
        parser.add_argument("--staff-email", help="An owner login with this password.")
        parser.add_argument("--staff-password")
        parser.add_argument(
            "--owner-email",
            help="Invite the first owner: an e-mail with a link to choose a password.",
        )
        parser.add_argument(
            "--link-base",
            help="Start of the invitation link. Default: https://<first host name>",
        )

    def handle(self, *args, **options):
        slug = options["slug"]
        if Provider.objects.filter(slug=slug).exists():
            raise CommandError(f"A provider with slug {slug!r} exists already.")
        domains = options["domain"] or [f"{slug}.{settings.PORTAL_BASE_DOMAIN}"]
        try:
            provider = provider_create(
                slug=slug,
                name=options["name"],
                domains=domains,
                currency=options["currency"],
                time_zone=options["time_zone"],
                language=options["language"],
                country=options["country"],
                primary_colour=options["primary_colour"],
                accent_colour=options["accent_colour"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        if options["staff_email"]:
            if not options["staff_password"]:
                raise CommandError("--staff-password is required with --staff-email")
            staff_user_ensure(
                provider=provider,
                email=options["staff_email"],
                password=options["staff_password"],
                full_name="Staff",
            )
        if options["owner_email"]:
            with tenant_context(provider):
                owner_invite(
                    email=options["owner_email"],
                    base_url=options["link_base"] or f"https://{domains[0]}",
                )
            self.stdout.write(f"Invited {options['owner_email']} as the owner")
        self.stdout.write(f"Created {provider.name} at {', '.join(domains)}")
