from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from enrollments.models import Location
from portal import formatting
from portal.clock import today


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


LEDGER_DAYS = 30  # without the provider's full ledger history


class DocumentForm(forms.Form):
    """A statement (what is owed now) or a ledger (entries over a period), for
    one location or all. The location defaults to the parent's current one;
    a period is chosen only where the provider keeps full ledger history,
    otherwise a ledger covers the last 30 days."""

    location = forms.ModelChoiceField(
        label=_("Location"),
        queryset=Location.objects.filter(is_active=True),
        required=False,
        empty_label=_("All locations"),
    )
    date_from = forms.DateField(label=_("Ledger from"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("Ledger until"), required=False, widget=DateInput())

    def __init__(self, *args: Any, full_history: bool, kind: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.full_history = full_history
        self.kind = kind
        if not full_history:
            del self.fields["date_from"], self.fields["date_to"]
        else:
            self.fields["date_to"].initial = today()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day = today()
        if self.kind == "statement":  # what is owed today: no period
            cleaned["date_from"] = cleaned["date_to"] = None
            return cleaned
        if not self.full_history:
            cleaned["date_from"], cleaned["date_to"] = day - timedelta(days=LEDGER_DAYS), day
            return cleaned
        start: date | None = cleaned.get("date_from")
        end: date | None = cleaned.get("date_to") or day
        if end and end > day:
            self.add_error("date_to", _("The ledger can end today at the latest."))
        if start and end and start > end:
            self.add_error(
                "date_from",
                _("The start date must be on or before the end date (%(end)s).")
                % {"end": formatting.day(end)},
            )
        cleaned["date_from"] = start or (end - timedelta(days=LEDGER_DAYS) if end else None)
        cleaned["date_to"] = end
        return cleaned
