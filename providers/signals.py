"""Forget cached host name lookups when a provider or a domain changes
(portal.middleware.TenantMiddleware); `ProviderQuerySet.update()` forgets them too."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Domain, Provider, hosts_forget


@receiver(post_save, sender=Provider)
@receiver(post_delete, sender=Provider)
def provider_changed(sender, instance, **kwargs):
    hosts_forget([instance.pk])


@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
def domain_changed(sender, instance, **kwargs):
    hosts_forget([instance.tenant_id], instance.domain)
