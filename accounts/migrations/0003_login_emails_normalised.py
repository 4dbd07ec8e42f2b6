"""Login e-mail addresses stored in one spelling (accounts.emails.normalise:
NFKC and case folding) so that lookups compare them exactly. An address
whose normalised spelling another login has already is left as it was (and
named in the log) for staff to resolve: two logins are never merged here."""

import logging
import unicodedata

from django.db import migrations

log = logging.getLogger(__name__)


def _normalise(email):
    # A copy of accounts.emails.normalise as it was when this migration was written.
    text = unicodedata.normalize("NFKC", (email or "").strip())
    return unicodedata.normalize("NFKC", text.casefold())


def normalise_emails(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    taken = set(User.objects.values_list("email", flat=True))
    for user in User.objects.order_by("pk").only("pk", "email"):
        normal = _normalise(user.email)
        if normal == user.email:
            continue
        if normal in taken:
            log.warning("login %s: %r normalises to an address in use; left as it is", user.pk, user.email)
            continue
        taken.discard(user.email)
        taken.add(normal)
        User.objects.filter(pk=user.pk).update(email=normal)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_staff_language")]

    operations = [migrations.RunPython(normalise_emails, migrations.RunPython.noop)]
