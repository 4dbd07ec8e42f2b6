"""Reads for money pages: figures come from database aggregates over the
ledger, lists are paginated, and every figure can show its entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias, TypedDict, overload

from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    F,
    Max,
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
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enrollments.models import Location
from families.models import Family, Guardian
from portal import clock, formatting
from portal.clock import local, today

from .models import (
    ZERO,
    CreditNote,
    Document,
    Finding,
    Invoice,
    LedgerEntry,
    Order,
    OrderLine,
    Payment,
    PaymentMethod,
)


class OrderBalance(TypedDict):
    owed: Decimal  # with_balances: what is still owed (may be below zero if overpaid)
    charged: Decimal  # what the order costs now: charges, adjustments, credit notes
    paid: Decimal  # paid towards it: payments and credit applied, less refunds
    refunded: Decimal  # given back
    paid_at: datetime | None  # the last payment or credit applied


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    OrderWithBalance: TypeAlias = WithAnnotations[Order, OrderBalance]

MONEY = DecimalField(max_digits=12, decimal_places=2)

# Entries that move money towards an order (payments, credit applied) or away
# from it (refunds, an excess moved to family credit): services.MONEY_KINDS.
# Every other kind (charges, adjustments, credit notes) changes what it costs.
PAID_KINDS = ["payment", "credit", "refund", "to_credit"]
PAYING_KINDS = ["payment", "credit"]


def _entries_of_order(**filters: object) -> QuerySet[LedgerEntry, Mapping[str, object]]:
    return LedgerEntry.objects.filter(order=OuterRef("pk"), **filters).order_by().values("order")


def _sum(entries: QuerySet[LedgerEntry, Mapping[str, object]]) -> Coalesce:
    total = entries.annotate(total=Sum("amount")).values("total")
    return Coalesce(Subquery(total, output_field=MONEY), Value(ZERO))


def with_balances(orders: QuerySet[Order]) -> QuerySet[OrderWithBalance]:
    """Any orders annotated with what they cost, what was paid and what is
    owed: one subquery per figure, so a page of orders is one query."""
    last_paid = _entries_of_order(kind__in=PAYING_KINDS).annotate(last=Max("at")).values("last")
    return orders.annotate(
        charged=_sum(_entries_of_order().exclude(kind__in=PAID_KINDS)),
        paid=-_sum(_entries_of_order(kind__in=PAID_KINDS)),
        refunded=_sum(_entries_of_order(kind="refund")),
        paid_at=Subquery(last_paid, output_field=DateTimeField()),
    ).annotate(owed=F("charged") - F("paid"))


def orders_with_balance(family: Family) -> QuerySet[OrderWithBalance]:
    """The family's orders with their figures (with_balances)."""
    return with_balances(Order.objects.filter(family=family)).select_related("student", "location")


@dataclass(frozen=True)
class OrderStatus:
    """An order's one status, computed once (order_status) and shown the same
    on the dashboard, the orders list, the order page, the invoice's band and
    the admin. Payment attempts are its history, never its state."""

    state: str  # unpaid, partly_paid, paid, refunded, cancelled
    total: Decimal  # what the order costs
    paid: Decimal  # paid towards it (payments, credit applied, less refunds)
    due: Decimal  # still to pay (never below zero)
    due_date: date | None
    overdue: bool
    paid_on: date | None  # the last payment
    refunded: Decimal

    @property
    def is_open(self) -> bool:
        return self.state in ("unpaid", "partly_paid")

    @property
    def label(self) -> str:
        return str(STATE_LABELS[self.state])

    @property
    def text(self) -> str:
        """Partly paid: 50,00 € of 150,00 €, 100,00 € due 28 Nov (overdue)."""
        money, day = formatting.money, formatting.day
        if self.state == "partly_paid":
            text = _("Partly paid: %(paid)s of %(total)s, %(due)s due") % {
                "paid": money(self.paid),
                "total": money(self.total),
                "due": money(self.due),
            }
        elif self.state == "unpaid":
            text = _("Unpaid: %(due)s due") % {"due": money(self.due)}
        elif self.state == "paid":
            if self.total <= 0:
                return _("Nothing to pay")
            if self.paid_on:
                return _("Paid: %(total)s on %(date)s") % {
                    "total": money(self.total),
                    "date": day(self.paid_on, "near"),
                }
            return _("Paid: %(total)s") % {"total": money(self.total)}
        elif self.state == "refunded":
            return _("Refunded: %(amount)s") % {"amount": money(self.refunded)}
        else:
            return self.label
        if self.due_date:
            text = _("%(text)s %(date)s") % {"text": text, "date": day(self.due_date, "near")}
        if self.overdue:
            text = _("%(text)s (overdue)") % {"text": text}
        return text

    @property
    def band(self) -> str:
        """The invoice's status band: "Paid 3 Dec 2026", "100,00 € due 28 Nov 2026"."""
        day = formatting.day
        if self.state == "paid":
            return _("Paid %(date)s") % {"date": day(self.paid_on)} if self.paid_on else _("Paid")
        if not self.is_open:
            return self.text
        if self.due_date:
            band = _("%(due)s due %(date)s") % {
                "due": formatting.money(self.due),
                "date": day(self.due_date),
            }
        else:
            band = _("%(due)s due") % {"due": formatting.money(self.due)}
        return _("%(text)s (overdue)") % {"text": band} if self.overdue else band


STATE_LABELS = {
    "unpaid": gettext_lazy("Unpaid"),
    "partly_paid": gettext_lazy("Partly paid"),
    "paid": gettext_lazy("Paid"),
    "refunded": gettext_lazy("Refunded"),
    "cancelled": gettext_lazy("Cancelled"),
}


def order_status(order: OrderWithBalance) -> OrderStatus:
    """The status of an order annotated by with_balances."""
    total, paid, owed = order.charged, order.paid, order.owed
    if order.cancelled_at:
        state = "cancelled"
    elif owed <= 0:
        state = "refunded" if total <= 0 and order.refunded > 0 else "paid"
    elif paid > 0:
        state = "partly_paid"
    else:
        state = "unpaid"
    due = max(owed, ZERO) if state != "cancelled" else ZERO
    open_ = state in ("unpaid", "partly_paid")
    return OrderStatus(
        state=state,
        total=total,
        paid=paid,
        due=due,
        due_date=order.due_date,
        overdue=open_ and bool(order.due_date and order.due_date < today()),
        paid_on=local(order.paid_at).date() if order.paid_at else None,
        refunded=order.refunded,
    )


def with_status(orders: Iterable[OrderWithBalance]) -> list[OrderWithBalance]:
    """The orders, each with its `status` (order_status) set."""
    listed = list(orders)
    for order in listed:
        order.status = order_status(order)
    return listed


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
    with_status(unpaid + paid)
    return OrderGroups(unpaid=unpaid, paid=paid, paid_count=paid_count)


def order_in_family(family: Family, pk: int | str) -> OrderWithBalance:
    order = get_object_or_404(orders_with_balance(family).select_related("promo__voucher"), pk=pk)
    order.status = order_status(order)
    return order


def order_with_status(order: Order) -> OrderWithBalance:
    """One order (already found) with its figures and status."""
    found = with_balances(Order.objects.filter(pk=order.pk)).get()
    found.status = order_status(found)
    return found


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


STALE_AFTER = timedelta(minutes=10)


def document_in_family(family: Family, pk: int | str) -> Document:
    return get_object_or_404(
        Document.objects.select_related("location", "invoice", "credit_note"),
        pk=pk,
        family=family,
    )


def document_file_name(document: Document) -> str:
    """INV-000123.pdf; ledger-tivoli-pool-2026-09-01-2026-11-30.pdf: names that
    say what each file is, never two different files under one name."""
    if document.kind == Document.Kind.INVOICE and document.invoice is not None:
        return f"{document.invoice.display_number}.pdf"
    if document.kind == Document.Kind.CREDIT_NOTE and document.credit_note is not None:
        return f"{document.credit_note.display_number}.pdf"
    where = slugify(document.location.name) if document.location else "all-locations"
    if document.kind == Document.Kind.LEDGER and document.date_from and document.date_to:
        period = f"{document.date_from.isoformat()}-{document.date_to.isoformat()}"
    else:
        period = local(document.created_at).date().isoformat()
    return f"{document.kind}-{where}-{period}.pdf"


@dataclass
class IssuedDocument:
    """A row of the family's invoices (and credit notes): what the payments
    page lists."""

    kind: str  # "invoice" or "credit_note"
    number: str  # INV-000123
    issued_on: date
    order: OrderWithBalance
    amount: Decimal
    currency: str
    document_id: int  # the Invoice's or the CreditNote's

    @property
    def status(self) -> OrderStatus:
        return self.order.status


def _issued_keys(family: Family) -> QuerySet[Invoice, tuple[str, int, datetime]]:
    """(kind, pk, issued at) of every document issued to the family, newest first."""
    invoices = (
        Invoice.objects.filter(order__family=family)
        .annotate(doc_kind=Value("invoice", output_field=CharField()))
        .values_list("doc_kind", "pk", "issued_at")
    )
    credit_notes = (
        CreditNote.objects.filter(order__family=family)
        .annotate(doc_kind=Value("credit_note", output_field=CharField()))
        .values_list("doc_kind", "pk", "issued_at")
    )
    return invoices.union(credit_notes, all=True).order_by("-issued_at", "-pk")


class _IssuedList(Sequence[IssuedDocument]):
    """The family's issued documents, newest first, read a page at a time (a
    Paginator slices it): the page's keys, its documents, their orders'
    figures; the same few queries whatever the number of documents."""

    def __init__(self, family: Family) -> None:
        self.keys = _issued_keys(family)

    def count(self) -> int:  # type: ignore[override]
        return self.keys.count()

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, index: int) -> IssuedDocument: ...

    @overload
    def __getitem__(self, index: slice) -> list[IssuedDocument]: ...

    def __getitem__(self, index: int | slice) -> IssuedDocument | list[IssuedDocument]:
        if isinstance(index, int):
            return self[index : index + 1][0]
        keys = list(self.keys[index])
        invoices = Invoice.objects.in_bulk([pk for kind, pk, _at in keys if kind == "invoice"])
        notes = CreditNote.objects.in_bulk([pk for kind, pk, _at in keys if kind != "invoice"])
        order_ids = {i.order_id for i in invoices.values()} | {n.order_id for n in notes.values()}
        orders = {
            o.pk: o for o in with_status(with_balances(Order.objects.filter(pk__in=order_ids)))
        }
        rows = []
        for kind, pk, at in keys:
            document: Invoice | CreditNote = invoices[pk] if kind == "invoice" else notes[pk]
            total = Decimal(document.snapshot.get("total", "0"))
            rows.append(
                IssuedDocument(
                    kind=kind,
                    number=document.display_number,
                    issued_on=local(at).date(),
                    order=orders[document.order_id],
                    # A credit note takes its amount off the order.
                    amount=total if kind == "invoice" else -total,
                    currency=document.snapshot.get("currency", ""),
                    document_id=pk,
                )
            )
        return rows


def family_invoices(family: Family) -> Sequence[IssuedDocument]:
    """The family's invoices and credit notes, newest first (paginate it)."""
    return _IssuedList(family)


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


@dataclass
class FamilyMethods:
    own: list[PaymentMethod]  # the guardian's: they pay with, change and delete these
    others: list[PaymentMethod]  # the family's other guardians': shown, read-only
    may_add: bool


def family_payment_methods(guardian: Guardian) -> FamilyMethods:
    """The saved payment methods the guardian's page shows, in one query."""
    found = list(
        PaymentMethod.objects.filter(guardian__family_id=guardian.family_id)
        .select_related("guardian")
        .order_by("guardian__first_name", "guardian_id", "-is_primary", "slot")
    )
    own = [m for m in found if m.guardian_id == guardian.pk]
    others = [m for m in found if m.guardian_id != guardian.pk]
    return FamilyMethods(own=own, others=others, may_add=len(own) < PaymentMethod.MAX_PER_GUARDIAN)


def payment_method_in_family(family: Family, pk: int | str) -> PaymentMethod:
    """A saved method of any guardian of the family (paying with another
    guardian's is refused by the service); another family's is not found."""
    return get_object_or_404(PaymentMethod, pk=pk, guardian__family=family)
