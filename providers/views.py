"""Provider staff edit their branding and settings, with a live preview of the
portal in their colours. Changes apply at once and are recorded."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from portal.permissions import staff_permission_required
from portal.theme import HEX, WHITE, Theme, contrast

from .forms import ProviderSettingsForm
from .models import Provider
from .services import (
    SETTINGS_FIELDS,
    policy_current,
    provider_logo_set,
    provider_settings_update,
)


@staff_permission_required("providers.change_provider")
@require_http_methods(["GET", "POST"])
def settings_page(request):
    provider = Provider.objects.get(pk=request.tenant.pk)
    form = ProviderSettingsForm(request.POST or None, request.FILES or None, instance=provider)
    if request.method == "POST" and form.is_valid():
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in SETTINGS_FIELDS}
        recorded = len(
            provider_settings_update(
                provider=provider, changes=changes, changed_by=request.user.email
            )
        )
        logo_changes, logo = form.logo_change()
        if logo_changes and provider_logo_set(
            provider=provider, logo=logo, changed_by=request.user.email
        ):
            recorded += 1
        messages.success(request, _("Saved: %(n)d change(s), in effect now.") % {"n": recorded})
        return redirect("provider_settings")
    context = {
        "form": form,
        "preview": _preview(provider.primary_colour, provider.accent_colour),
        "history": list(provider.settings_changes.all()[:15]),
        "policy": policy_current(provider=provider),
    }
    return render(request, "providers/settings.html", context)


def _preview(primary: str, accent: str) -> dict:
    theme = Theme.from_colours(
        primary if HEX.match(primary or "") else "", accent if HEX.match(accent or "") else ""
    )
    return {
        "theme": theme,
        "css": theme.css(),
        "text_ratio": round(contrast(theme.primary, theme.on_primary), 1),
        "link_ratio": round(contrast(theme.primary_ink, WHITE), 1),
        "adjusted": theme.primary_ink.lower() != theme.primary.lower(),
    }


@staff_permission_required("providers.change_provider")
@require_POST
def settings_preview(request):
    preview = _preview(
        request.POST.get("primary_colour", ""), request.POST.get("accent_colour", "")
    )
    return render(request, "providers/settings.html#preview", {"preview": preview})
