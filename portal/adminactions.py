"""Admin actions with a small form of their own: the staff choose the
objects in the list, fill in the form (a reason, a date, an answer...), see
what will happen, and apply. The handler calls a service for each object; a
refusal is shown on the same form, next to its field, and nothing is saved."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from unfold.admin import ModelAdmin

from portal.exceptions import PortalError

Apply = Callable[[Model, dict[str, Any]], str]


def for_each(
    model_admin: ModelAdmin,
    request: HttpRequest,
    objects: Iterable[Any],
    act: Callable[[Any], object],
    done: str,
) -> None:
    """An action without a form of its own: the service for each chosen
    object, each outcome reported (a refusal with its reason)."""
    for obj in objects:
        try:
            act(obj)
        except PortalError as error:
            model_admin.message_user(request, f"{obj}: {error}", messages.ERROR)
        else:
            model_admin.message_user(request, f"{obj}: {done}", messages.SUCCESS)


def form_for_user(form_class: type[forms.BaseForm], user: Any) -> type[forms.BaseForm]:
    """The admin's form class with the acting staff login at hand
    (`self.request_user`), for forms whose clean() calls a service: a refusal
    then stands next to its field and nothing is saved."""

    class WithUser(form_class):  # type: ignore[valid-type,misc]
        request_user = user

    return WithUser


Preview = Callable[[Model, dict[str, Any]], Any]


def action_form(
    model_admin: ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    form_class: type[forms.Form],
    title: str,
    apply: Apply,
    button: str,
    preview: Preview | None = None,
    initial: dict[str, Any] | None = None,
) -> TemplateResponse | None:
    """Show the form for the chosen objects; on "apply", run `apply(obj,
    cleaned_data)` for each (one transaction each) and report its words.
    With `preview`, a valid form is shown again with what each object would
    get, and applying needs a second, explicit click."""
    submitted = "apply" in request.POST or "preview" in request.POST
    form = form_class(request.POST if submitted else None, initial=initial)
    previews = None
    if submitted and form.is_valid():
        if "apply" in request.POST or preview is None:
            done: list[str] = []
            refused: list[tuple[Model, PortalError]] = []
            for obj in queryset:
                try:
                    with transaction.atomic():
                        done.append(apply(obj, form.cleaned_data))
                except PortalError as error:
                    refused.append((obj, error))
            if refused and not done:
                for _obj, why in refused:
                    form.add_error(why.field if why.field in form.fields else None, str(why))
            else:
                for text in done:
                    model_admin.message_user(request, text, messages.SUCCESS)
                for obj, why in refused:
                    model_admin.message_user(request, f"{obj}: {why}", messages.ERROR)
                return None
        else:
            previews = [(obj, preview(obj, form.cleaned_data)) for obj in queryset]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "objects": list(queryset),
        "form": form,
        "previews": previews,
        "has_preview": preview is not None,
        "button": button,
        "action": request.POST.get("action"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across") == "1",
    }
    return TemplateResponse(request, "admin/action_form.html", context)


class ReadOnlyAdmin:
    """A mixin for the admins of records written by the services (history,
    audit, Stripe events, offers): read here, never added, changed or
    deleted. Put it before the admin's base (unfold's ModelAdmin)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
