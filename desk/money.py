"""The staff money report: who owes what by days past due, payments by day
and method, refunds; each part exports to CSV exactly as shown."""

from __future__ import annotations

import csv
from datetime import date, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from billing import reports
from enrollments.models import Location
from portal import clock
from portal.permissions import staff_permission_required

from .views import _page

REPORT = "billing.view_payment"
MAX_DAYS = 366


class ReportForm(forms.Form):
    date_from = forms.DateField(
        label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"})
    )
    location = forms.ModelChoiceField(
        label=gettext_lazy("Location"),
        queryset=Location.objects.order_by("name"),
        required=False,
        empty_label=gettext_lazy("All locations"),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end:
            if start > end:
                self.add_error("date_to", _("The end date must be on or after the start date."))
            elif (end - start).days >= MAX_DAYS:
                self.add_error("date_to", _("Choose at most a year at a time."))
        return cleaned


def _form(request: HttpRequest) -> ReportForm:
    today = clock.today()
    data = request.GET.copy()
    data.setdefault("date_from", (today - timedelta(days=29)).isoformat())
    data.setdefault("date_to", today.isoformat())
    return ReportForm(data)


def _csv(name: str, header: list[str], rows: list[list[object]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


BUCKET_LABELS = {
    "not_due": gettext_lazy("Not yet due"),
    "days_0_30": gettext_lazy("0–30 days"),
    "days_31_60": gettext_lazy("31–60 days"),
    "over_60": gettext_lazy("Over 60 days"),
}


@staff_permission_required(REPORT)
@require_GET
def report(request: HttpRequest) -> HttpResponse:
    """Aging as of the end date, payments and refunds in the period."""
    form = _form(request)
    if not form.is_valid():
        return _page(request, "desk/money.html", _("Money report"), form=form)
    start: date = form.cleaned_data["date_from"]
    end: date = form.cleaned_data["date_to"]
    location = form.cleaned_data["location"]
    aging = reports.aging(as_of=min(end, clock.today()), location=location)
    payments = reports.payments_by_day(date_from=start, date_to=end, location=location)
    refunds = reports.refunds_in(date_from=start, date_to=end, location=location)
    export = request.GET.get("export")
    suffix = f"{start.isoformat()}-{end.isoformat()}"
    if export == "aging":
        return _csv(
            f"aging-{aging.as_of.isoformat()}",
            [_("Family"), *map(str, BUCKET_LABELS.values()), _("Total")],
            [[row.family_name, *row.amounts(), row.total] for row in aging.rows],
        )
    if export == "payments":
        return _csv(
            f"payments-{suffix}",
            [_("Day"), *(label for _value, label in payments.methods), _("Total"), _("Count")],
            [
                [
                    day.day.isoformat(),
                    *("" if amount is None else amount for amount in day.amounts),
                    day.total,
                    day.count,
                ]
                for day in payments.days
            ],
        )
    if export == "refunds":
        return _csv(
            f"refunds-{suffix}",
            [_("Date"), _("Family"), _("Order"), _("Amount"), _("Reason"), _("By")],
            [
                [
                    clock.local(r.created_at).date().isoformat(),
                    r.payment.family.name,
                    r.payment.order.number if r.payment.order else "",
                    r.amount,
                    r.reason,
                    r.actor.get_full_name() if r.actor else "",
                ]
                for r in refunds
            ],
        )
    return _page(
        request,
        "desk/money.html",
        _("Money report"),
        form=form,
        aging=aging,
        buckets=list(BUCKET_LABELS.values()),
        payments=payments,
        refunds=refunds,
        refunds_total=sum((r.amount for r in refunds), reports.ZERO),
        query=request.GET.urlencode(),
    )
