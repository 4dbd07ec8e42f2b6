"""Dates and times in the provider's time zone, whatever zone is active."""

from __future__ import annotations

from datetime import date, datetime, tzinfo

from django.utils import timezone

from portal.tenancy import current_provider


def provider_zone() -> tzinfo:
    return getattr(current_provider(), "zone", None) or timezone.get_current_timezone()


def today() -> date:
    return timezone.localdate(timezone=provider_zone())


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment, provider_zone())
