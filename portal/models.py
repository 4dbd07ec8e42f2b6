"""Shared model building blocks (abstract: no tables of their own)."""

from __future__ import annotations

import pgtrigger
from django.db import models


def append_only() -> pgtrigger.Protect:
    """The database's own guard on a history table: PostgreSQL refuses every
    UPDATE and DELETE of its rows, whatever the code path (raw SQL, a bulk
    update, a cascade). Put it in the model's `Meta.triggers`; the migration
    installs it, and providers.schema replays it for new providers."""
    return pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)


class AppendOnly(models.Model):
    """History rows: inserted, never updated or deleted. Balances are sums of
    them; a correction is a new row with a reason."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk:
            raise RuntimeError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} rows are append-only.")
