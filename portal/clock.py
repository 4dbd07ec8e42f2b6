"""Dates and times in the provider's time zone, whatever zone is active."""

from __future__ import annotations

from datetime import date, datetime

from django.db import connection
from django.utils import timezone


def provider_zone():
    return getattr(connection.tenant, "zone", None) or timezone.get_current_timezone()


def today() -> date:
    return timezone.localdate(timezone=provider_zone())


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment, provider_zone())
