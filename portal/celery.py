"""Celery app. Tasks sent inside a provider's context run in its schema
(tenant-schemas-celery); beat entries without `tenant_schemas` run once per
provider."""

from __future__ import annotations

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = CeleryApp("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
