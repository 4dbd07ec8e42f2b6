"""Shared model building blocks (abstract: no tables of their own)."""

from __future__ import annotations

from django.db import models


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
