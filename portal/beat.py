"""Celery beat: entries without `tenant_schemas` run once per real provider
whose set-up is complete (not the public schema, not the template new
providers are cloned from, not one being created or whose set-up failed:
providers.scheduling)."""

from __future__ import annotations

from tenant_schemas_celery.scheduler import TenantAwarePersistentScheduler


class ProvidersScheduler(TenantAwarePersistentScheduler):
    @classmethod
    def get_queryset(cls):
        from providers.models import Provider

        return Provider.objects.ready()
