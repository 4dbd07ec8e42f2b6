"""Reads for money pages: figures come from database aggregates over the
ledger, lists are paginated, and every figure can show its entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.db.models import (
    Count,
    DecimalField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from enrollments.models import Location
from families.models import Family
from portal import clock
from portal.clock import today

from .models import ZERO, Document, Finding, LedgerEntry, Order, OrderLine, Payment


class OrderBalance(TypedDict):
    owed: Decimal  # orders_with_balance: what is still owed
    charged: Decimal  # and the total charged, less its discounts


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from providers.models import Provider

    OrderWithBalance: TypeAlias = WithAnnotations[Order, OrderBalance]

MONEY = DecimalField(max_digits=12, decimal_places=2)

# What an order charges: its lines, less the discounts that reduced them.
CHARGED = [LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.DISCOUNT]


def orders_with_balance(family: Family) -> QuerySet[OrderWithBalance]:
    """Orders annotated with their total charged and what is still owed."""
    owed = (
        LedgerEntry.objects.filter(order=OuterRef("pk"))
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    charged = (
        LedgerEntry.objects.filter(order=OuterRef("pk"), kind__in=CHARGED)
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


def order_status(order: OrderWithBalance) -> str:
    if order.cancelled_at:
        return "cancelled"
    if order.owed <= 0:
        return "refunded" if order.charged > 0 and order.owed < 0 else "paid"
    if order.owed < order.charged:
        return "partly_paid"
    return "unpaid"


@dataclass
class OrderGroups:
    unpaid: list[OrderWithBalance]
    paid: list[OrderWithBalance]  # the most recent only
    paid_count: int


def owing_order_ids(family: Family) -> QuerySet[LedgerEntry, Mapping[str, object]]:
    """Orders of the family with something still owed: one aggregate over
    the family's ledger, as a subquery."""
    return (
        LedgerEntry.objects.filter(family=family, order__isnull=False)
        .values("order")
        .annotate(total=Sum("amount"))
        .filter(total__gt=0)
        .values("order")
    )


def order_groups(family: Family, *, paid_limit: int = 10) -> OrderGroups:
    """Unpaid orders (all of them: a family acts on each), and the most recent
    `paid_limit` others with their number. However many orders a family has,
    this reads the unpaid ones and a page of the rest: two queries."""
    owing = Q(pk__in=owing_order_ids(family), cancelled_at__isnull=True)
    orders = orders_with_balance(family)
    unpaid = list(orders.filter(owing).order_by("due_date", "-created_at"))
    paid: list[OrderWithBalance] = []
    paid_count = 0
    if paid_limit:
        # The count over all of them comes with the page (before its LIMIT).
        page = list(
            orders.exclude(owing)
            .annotate(others=Window(Count("pk")))
            .order_by("-created_at", "-pk")[:paid_limit]
        )
        paid_count = page[0].others if page else 0
        paid = list(page)
    day = today()
    for order in unpaid + paid:
        order.status = order_status(order)
        order.overdue = order.status in ("unpaid", "partly_paid") and bool(
            order.due_date and order.due_date < day
        )
    return OrderGroups(unpaid=unpaid, paid=paid, paid_count=paid_count)


def order_in_family(family: Family, pk: int | str) -> OrderWithBalance:
    order = get_object_or_404(orders_with_balance(family).select_related("promo__voucher"), pk=pk)
    order.status = order_status(order)
    return order


@dataclass
class Financials:
    outstanding: Decimal
    last_payment: Payment | None


def financials(family: Family) -> Financials:
    outstanding: Decimal = LedgerEntry.objects.filter(family=family).aggregate(
        t=Coalesce(Sum("amount"), Value(ZERO))
    )["t"]
    last = (
        Payment.objects.filter(family=family, status=Payment.Status.SUCCEEDED)
        .order_by("-succeeded_at")
        .first()
    )
    return Financials(outstanding=outstanding, last_payment=last)


HISTORY_KINDS: dict[str, list[str] | None] = {
    "all": None,
    "charges": ["charge", "discount", "adjustment"],
    "payments": ["payment", "credit"],
    "refunds": ["refund"],
}


def history(family: Family, tab: str) -> QuerySet[LedgerEntry]:
    entries = LedgerEntry.objects.filter(family=family).select_related("order", "location")
    kinds = HISTORY_KINDS.get(tab)
    if kinds:
        entries = entries.filter(kind__in=kinds)
    return entries.order_by("-at", "-pk")


def statement_lines(
    family: Family, *, location: Location | None = None, as_of: date | None = None
) -> list[OrderWithBalance]:
    """Unpaid orders as of a day: what the statement lists."""
    orders = (
        orders_with_balance(family)
        .filter(cancelled_at__isnull=True)
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=OrderLine.objects.filter(kind=OrderLine.Kind.DISCOUNT),
                to_attr="discount_lines",
            )
        )
    )
    if location is not None:
        orders = orders.filter(location=location)
    return [o for o in orders.order_by("due_date", "pk") if o.owed > 0]


def ledger_lines(
    family: Family, *, date_from: date, date_to: date, location: Location | None = None
) -> tuple[Decimal, list[LedgerEntry], Decimal]:
    """Entries in the range with the balance carried in and running after each."""
    entries = LedgerEntry.objects.filter(family=family)
    if location is not None:
        entries = entries.filter(Q(location=location) | Q(order__location=location))
    before: Decimal = entries.filter(at__date__lt=date_from).aggregate(
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


def ledger_range(
    provider: Provider, date_from: date | None, date_to: date | None
) -> tuple[date, date]:
    """Without full ledger history, the last 30 days whatever was asked."""
    end = today()
    if provider.full_ledger_history and date_from:
        return date_from, min(date_to or end, end)
    return end - timedelta(days=30), end


STALE_AFTER = timedelta(minutes=10)


def document_in_family(family: Family, pk: int | str) -> Document:
    return get_object_or_404(Document.objects.select_related("location"), pk=pk, family=family)


@dataclass
class Owing:
    family_id: int
    family_name: str
    owed: Decimal


def families_owing(*, limit: int = 10) -> tuple[list[Owing], int, Decimal]:
    """The families owing the most (their ledger sums above zero), how many
    families owe anything and the total owed: two queries."""
    balances = (
        LedgerEntry.objects.order_by()
        .values("family_id", "family__name")
        .annotate(owed=Sum("amount"))
        .filter(owed__gt=0)
    )
    summary = balances.aggregate(families=Count("family_id"), total=Sum("owed"))
    top = [
        Owing(family_id=row["family_id"], family_name=row["family__name"], owed=row["owed"])
        for row in balances.order_by("-owed", "family__name")[:limit]
    ]
    return top, summary["families"] or 0, summary["total"] or ZERO


def recent_payments(family: Family, *, limit: int = 5) -> list[Payment]:
    return list(
        Payment.objects.filter(family=family)
        .select_related("order")
        .order_by("-created_at")[:limit]
    )


def money_exists() -> bool:
    """Whether the provider (the connection's schema) holds any money: an
    order, a payment or a ledger entry. Its currency is fixed from then on."""
    return Order.objects.exists() or Payment.objects.exists() or LedgerEntry.objects.exists()


# --- What the books' checks found ---------------------------------------------------------------

FINDINGS_DAYS = 7


def recent_findings(*, limit: int = 8, days: int = FINDINGS_DAYS) -> tuple[list[Finding], int]:
    """Problems found in the last `days` that look unresolved: the newest
    sighting of each (the daily ledger check records again what still does
    not hold, so a problem fixed is not found again and leaves the list),
    newest first; and how many there are. Two queries."""
    newest = (
        Finding.objects.filter(
            severity=Finding.Severity.PROBLEM, at__gte=clock.now() - timedelta(days=days)
        )
        .order_by("source", "code", "message", "-at", "-pk")
        .distinct("source", "code", "message")
    )
    listed = list(
        Finding.objects.filter(pk__in=Subquery(newest.values("pk")))
        .select_related("family")
        .order_by("-at", "-pk")[:limit]
    )
    return listed, newest.count()
