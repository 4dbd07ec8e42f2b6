"""British English keeps Django's own formats: without this module "en-gb"
would fall back to the portal's "en" (portal/formats/en) before Django's en_GB."""

from django.conf.locale.en_GB.formats import *  # noqa: F403
