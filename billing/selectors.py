"""Reads for money pages: figures come from database aggregates over the
ledger, lists are paginated, and every figure can show its entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, OuterRef, Q, Subquery, Sum, Value, Window
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from portal.clock import today

from .models import ZERO, Document, LedgerEntry, Order, Payment

MONEY = DecimalField(max_digits=12, decimal_places=2)


def orders_with_balance(family):
    """Orders annotated with their total charged and what is still owed."""
    owed = (
        LedgerEntry.objects.filter(order=OuterRef("pk"))
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    charged = (
        LedgerEntry.objects.filter(order=OuterRef("pk"), kind="charge")
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Order.objects.filter(family=family)
        .select_related("student", "location")
        .annotate(
            owed=Coalesce(Subquery(owed, output_field=MONEY), Value(ZERO)),
            charged=Coalesce(Subquery(charged, output_field=MONEY), Value(ZERO)),
        )
    )


def order_status(order) -> str:
    if order.cancelled_at:
        return "cancelled"
    if order.owed <= 0:
        return "refunded" if order.charged > 0 and order.owed < 0 else "paid"
    if order.owed < order.charged:
        return "partly_paid"
    return "unpaid"


@dataclass
class OrderGroups:
    unpaid: list
    paid: list  # the most recent only
    paid_count: int


def owing_order_ids(family):
    """Orders of the family with something still owed: one aggregate over
    the family's ledger, as a subquery."""
    return (
        LedgerEntry.objects.filter(family=family, order__isnull=False)
        .values("order")
        .annotate(total=Sum("amount"))
        .filter(total__gt=0)
        .values("order")
    )


def order_groups(family, *, paid_limit: int = 10) -> OrderGroups:
    """Unpaid orders (all of them: a family acts on each), and the most recent
    `paid_limit` others with their number. However many orders a family has,
    this reads the unpaid ones and a page of the rest: two queries."""
    owing = Q(pk__in=owing_order_ids(family), cancelled_at__isnull=True)
    orders = orders_with_balance(family)
    unpaid = list(orders.filter(owing).order_by("due_date", "-created_at"))
    paid, paid_count = [], 0
    if paid_limit:
        # The count over all of them comes with the page (before its LIMIT).
        paid = list(
            orders.exclude(owing)
            .annotate(others=Window(Count("pk")))
            .order_by("-created_at", "-pk")[:paid_limit]
        )
        paid_count = paid[0].others if paid else 0
    day = today()
    for order in unpaid + paid:
        order.status = order_status(order)
        order.overdue = order.status in ("unpaid", "partly_paid") and bool(
            order.due_date and order.due_date < day
        )
    return OrderGroups(unpaid=unpaid, paid=paid, paid_count=paid_count)


def order_in_family(family, pk) -> Order:
    order = get_object_or_404(orders_with_balance(family), pk=pk)
    order.status = order_status(order)
    return order


@dataclass
class Financials:
    outstanding: Decimal
    last_payment: Payment | None


def financials(family) -> Financials:
    outstanding = LedgerEntry.objects.filter(family=family).aggregate(
        t=Coalesce(Sum("amount"), Value(ZERO))
    )["t"]
    last = (
        Payment.objects.filter(family=family, status=Payment.Status.SUCCEEDED)
        .order_by("-succeeded_at")
        .first()
    )
    return Financials(outstanding=outstanding, last_payment=last)


HISTORY_KINDS = {
    "all": None,
    "charges": ["charge", "adjustment"],
    "payments": ["payment", "credit"],
    "refunds": ["refund"],
}


def history(family, tab: str):
    entries = LedgerEntry.objects.filter(family=family).select_related("order", "location")
    kinds = HISTORY_KINDS.get(tab)
    if kinds:
        entries = entries.filter(kind__in=kinds)
    return entries.order_by("-at", "-pk")


def statement_lines(family, *, location=None, as_of: date | None = None):
    """Unpaid orders as of a day: what the statement lists."""
    orders = orders_with_balance(family).filter(cancelled_at__isnull=True)
    if location is not None:
        orders = orders.filter(location=location)
    return [o for o in orders.order_by("due_date", "pk") if o.owed > 0]


def ledger_lines(family, *, date_from: date, date_to: date, location=None):
    """Entries in the range with the balance carried in and running after each."""
    entries = LedgerEntry.objects.filter(family=family)
    if location is not None:
        entries = entries.filter(Q(location=location) | Q(order__location=location))
    before = entries.filter(at__date__lt=date_from).aggregate(
        t=Coalesce(Sum("amount"), Value(ZERO))
    )["t"]
    rows = list(
        entries.filter(at__date__gte=date_from, at__date__lte=date_to)
        .select_related("order")
        .order_by("at", "pk")
    )
    running = before
    for row in rows:
        running += row.amount
        row.running = running
    return before, rows, running


def ledger_range(provider, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Without full ledger history, the last 30 days whatever was asked."""
    end = today()
    if provider.full_ledger_history and date_from:
        return date_from, min(date_to or end, end)
    return end - timedelta(days=30), end


STALE_AFTER = timedelta(minutes=10)


def document_in_family(family, pk) -> Document:
    return get_object_or_404(Document.objects.select_related("location"), pk=pk, family=family)
