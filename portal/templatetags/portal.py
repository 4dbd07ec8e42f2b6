from __future__ import annotations

from decimal import Decimal

from django import template
from django.db import connection

from portal.money import format_money

register = template.Library()


@register.filter
def money(amount, currency: str | None = None):
    """{{ amount|money }} in the current provider's currency and locale."""
    if amount is None or amount == "":
        return ""
    provider = getattr(connection, "tenant", None)
    if not currency:
        currency = getattr(provider, "currency", "EUR")
    locale = getattr(provider, "locale", "en")
    return format_money(Decimal(amount), currency, locale)


@register.simple_tag
def field_widget(field):
    """The field's widget, tied to its help text and errors for screen readers."""
    attrs = {}
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_helptext")
    if field.errors:
        described.append(f"{field.auto_id}_error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)


@register.filter
def chunks(items, size):
    """Split a list into lists of `size` (PDF tables lay out much faster in
    page-sized pieces than as one table over many pages)."""
    items, size = list(items), int(size)
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]
