from __future__ import annotations

from django import template

from portal import formatting

register = template.Library()


@register.filter
def money(amount, currency: str | None = None):
    """{{ amount|money }}: 25,00 € in the provider's currency and locale
    ({{ amount|money:"GBP" }} in another currency)."""
    return formatting.money(amount, currency)


@register.filter
def percent(rate):
    """{{ line.vat_rate|percent }}: 22%."""
    return formatting.percent(rate)


@register.filter
def day(value, style: str = "medium"):
    """{{ date|day }}: 28 Nov 2026; styles in portal.formatting.DATE_STYLES
    ({{ date|day:"long" }}, {{ date|day:"weekday" }})."""
    return formatting.day(value, style)


@register.filter
def moment(value, style: str = "medium"):
    """{{ datetime|moment }}: 28 Nov 2026, 17:05 in the provider's zone."""
    return formatting.moment(value, style)


@register.filter
def timeofday(value):
    """{{ datetime|timeofday }}: 17:05 in the provider's zone."""
    return formatting.timeofday(value)


@register.filter
def iso(value):
    """{{ date|iso }}: 2026-11-28, for form values and datetime attributes."""
    return formatting.iso(value)


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
