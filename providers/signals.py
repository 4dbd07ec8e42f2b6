"""Forget cached host name lookups when a provider or a domain changes
(portal.middleware.TenantMiddleware);
`ProviderQuerySet.update()` forgets them too."""

from __future__ import annotations

from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portal.middleware import host_key

from .models import Domain, Provider


def hosts_forget(provider_ids: list[int], *extra_hosts: str) -> None:
    """Forget the host names of these providers (one query), now and again
    after the transaction commits (a request in between may have cached the
    old row)."""
    hosts = list(Domain.objects.filter(tenant_id__in=provider_ids).values_list("domain", flat=True))
    keys = [host_key(host) for host in [*hosts, *extra_hosts]]
    if keys:
        caches["hosts"].delete_many(keys)
        transaction.on_commit(lambda: caches["hosts"].delete_many(keys))


@receiver(post_save, sender=Provider)
@receiver(post_delete, sender=Provider)
def provider_changed(sender, instance, **kwargs):
    hosts_forget([instance.pk])


@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
def domain_changed(sender, instance, **kwargs):
    hosts_forget([instance.tenant_id], instance.domain)
