from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from portal import formatting

LOCAL_INPUT = "%Y-%m-%dT%H:%M"


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=LOCAL_INPUT, **kwargs)


class AbsenceByDateForm(forms.Form):
    starts_at = forms.DateTimeField(
        label=_("Away from"), input_formats=[LOCAL_INPUT], widget=LocalDateTimeInput()
    )
    ends_at = forms.DateTimeField(
        label=_("Back on"),
        input_formats=[LOCAL_INPUT],
        widget=LocalDateTimeInput(),
        help_text=_("Every session in between is marked, in all classes. A few hours is fine."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"data-counter": ""}),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("starts_at"), cleaned.get("ends_at")
        if start and end and end <= start:
            self.add_error("ends_at", _("“Back on” must be after “Away from”."))
        return cleaned


class SessionChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, session):
        return formatting.moment(session.starts_at, "weekday_year")


class AbsenceSessionsForm(forms.Form):
    sessions = SessionChoiceField(
        label=_("Sessions to miss"),
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one session.")},
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"data-counter": ""}),
    )

    def __init__(self, *args, sessions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sessions"].queryset = sessions
