"""The staff money report: who owes what by days past due, payments by day
and method, refunds. Reads only; each part is one query however many
families, orders or payments there are, and exports to CSV as shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, Q, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate

from enrollments.models import Location
from portal import clock

from .models import ZERO, LedgerEntry, Payment, Refund

MONEY = DecimalField(max_digits=12, decimal_places=2)


def _bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The first moment of `date_from` and of the day after `date_to`, in the
    provider's time zone."""
    zone = clock.provider_zone()
    return (
        datetime.combine(date_from, time.min, tzinfo=zone),
        datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone),
    )


# Days past due: the buckets' keys, in the order shown.
BUCKETS = ("not_due", "days_0_30", "days_31_60", "over_60")


@dataclass
class AgingRow:
    family_id: int
    family_name: str
    not_due: Decimal
    days_0_30: Decimal
    days_31_60: Decimal
    over_60: Decimal
    total: Decimal

    def amounts(self) -> list[Decimal]:
        return [getattr(self, bucket) for bucket in BUCKETS]


@dataclass
class Aging:
    as_of: date
    rows: list[AgingRow]
    totals: AgingRow


def _bucket_sum(condition: Q) -> Coalesce:
    return Coalesce(
        Sum(Case(When(condition, then="amount"), default=Value(ZERO), output_field=MONEY)),
        Value(ZERO),
        output_field=MONEY,
    )


def aging(*, as_of: date | None = None, location: Location | None = None) -> Aging:
    """What each family owes, split by how long it has been due on `as_of`.

    An order's balance is the sum of its entries (never below zero), so the
    sum of entries in a bucket is what the orders in it still owe. Not yet
    due: a due date after `as_of`, no due date, or an entry on no order.
    0-30: due on `as_of` up to 30 days before; then 31-60; then over 60."""
    day = as_of or clock.today()
    entries = LedgerEntry.objects.filter(
        Q(order__isnull=True) | Q(order__cancelled_at__isnull=True)
    )
    if location is not None:
        entries = entries.filter(Q(order__location=location) | Q(location=location))
    due = Q(order__due_date__isnull=False, order__due_date__lte=day)
    rows_qs = (
        entries.order_by()
        .values("family_id", "family__name")
        .annotate(
            not_due=_bucket_sum(~due),
            days_0_30=_bucket_sum(due & Q(order__due_date__gte=day - timedelta(days=30))),
            days_31_60=_bucket_sum(
                due
                & Q(order__due_date__lt=day - timedelta(days=30))
                & Q(order__due_date__gte=day - timedelta(days=60))
            ),
            over_60=_bucket_sum(due & Q(order__due_date__lt=day - timedelta(days=60))),
            total=Sum("amount"),
        )
        .filter(total__gt=0)
        .order_by("-total", "family__name")
    )
    rows = [
        AgingRow(
            family_id=row["family_id"],
            family_name=row["family__name"],
            not_due=row["not_due"],
            days_0_30=row["days_0_30"],
            days_31_60=row["days_31_60"],
            over_60=row["over_60"],
            total=row["total"],
        )
        for row in rows_qs
    ]
    totals = AgingRow(
        family_id=0,
        family_name="",
        **{bucket: sum((getattr(r, bucket) for r in rows), ZERO) for bucket in BUCKETS},
        total=sum((r.total for r in rows), ZERO),
    )
    return Aging(as_of=day, rows=rows, totals=totals)


@dataclass
class DayPayments:
    day: date
    by_method: dict[str, Decimal] = field(default_factory=dict)
    count: int = 0
    total: Decimal = ZERO
    amounts: list[Decimal | None] = field(default_factory=list)  # in `methods` order


@dataclass
class PaymentsByDay:
    methods: list[tuple[str, str]]  # (value, label) of the methods that occur
    days: list[DayPayments]
    totals: dict[str, Decimal]
    total: Decimal
    count: int

    def method_totals(self) -> list[Decimal]:
        return [self.totals[value] for value, _label in self.methods]


def payments_by_day(
    *, date_from: date, date_to: date, location: Location | None = None
) -> PaymentsByDay:
    """Money received per day (in the provider's time zone) and method."""
    start, end = _bounds(date_from, date_to)
    payments = Payment.objects.filter(
        status=Payment.Status.SUCCEEDED,
        succeeded_at__gte=start,
        succeeded_at__lt=end,
    )
    if location is not None:
        payments = payments.filter(order__location=location)
    rows = (
        payments.annotate(day=TruncDate("succeeded_at", tzinfo=clock.provider_zone()))
        .order_by()
        .values("day", "method")
        .annotate(amount=Sum("amount"), count=Count("pk"))
        .order_by("day", "method")
    )
    labels = dict(Payment.Method.choices)
    days: dict[date, DayPayments] = {}
    totals: dict[str, Decimal] = {}
    for row in rows:
        entry = days.setdefault(row["day"], DayPayments(day=row["day"]))
        entry.by_method[row["method"]] = row["amount"]
        entry.count += row["count"]
        entry.total += row["amount"]
        totals[row["method"]] = totals.get(row["method"], ZERO) + row["amount"]
    methods = [(value, str(labels.get(value, value))) for value in labels if value in totals]
    for entry in days.values():
        entry.amounts = [entry.by_method.get(value) for value, _label in methods]
    return PaymentsByDay(
        methods=methods,
        days=list(days.values()),
        totals=totals,
        total=sum(totals.values(), ZERO),
        count=sum(d.count for d in days.values()),
    )


def refunds_in(*, date_from: date, date_to: date, location: Location | None = None) -> list[Refund]:
    start, end = _bounds(date_from, date_to)
    refunds = Refund.objects.filter(created_at__gte=start, created_at__lt=end).select_related(
        "payment__family", "payment__order", "actor"
    )
    if location is not None:
        refunds = refunds.filter(payment__order__location=location)
    return list(refunds.order_by("created_at", "pk"))
