"""What must always hold in a provider's books, as plain functions.

Each check reads the connection's schema and returns the problems it finds
(empty: the invariant holds). Balances are sums of append-only history, so
each check recomputes a figure from the rows themselves, in Python, and
compares it with what the selectors show (the figure parents and staff see)
or with the records it must agree with. `manage.py check_ledger`, the daily
beat task and the end of the test suite run them all (`check_all`);
`record` turns what they find into Findings for staff.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Prefetch
from django.utils.translation import gettext as _

from benefits import rules
from benefits import selectors as benefit_selectors
from benefits.models import (
    CreditGrant,
    CreditUse,
    Discount,
    MakeupToken,
    Pass,
    PassEvent,
    TokenEvent,
    Voucher,
)
from enrollments.models import Enrollment
from families.models import Family
from portal import formatting
from portal.clock import today

from . import selectors
from .models import ZERO, CreditNote, Finding, LedgerEntry, Order, Payment, Refund


@dataclass(frozen=True)
class Problem:
    code: str  # which invariant (Finding.code)
    message: str  # for staff: what does not hold, with the figures
    family_id: int | None = None
    order_id: int | None = None
    payment_id: int | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _order_ref(order_id: int | None) -> str:
    return f"#{order_id:05d}" if order_id else _("no order")


# --- The ledger ------------------------------------------------------------------------------


@dataclass
class _Sums:
    """The ledger summed row by row, in Python: the reference every figure
    the database computes is compared with."""

    families: dict[int, Decimal]
    orders: dict[int, Decimal]
    order_family: dict[int, int]


def _ledger_sums() -> _Sums:
    families: dict[int, Decimal] = defaultdict(lambda: ZERO)
    orders: dict[int, Decimal] = defaultdict(lambda: ZERO)
    order_family: dict[int, int] = {}
    rows = LedgerEntry.objects.order_by().values_list("family_id", "order_id", "amount")
    for family_id, order_id, amount in rows.iterator(chunk_size=5000):
        families[family_id] += amount
        if order_id is not None:
            orders[order_id] += amount
            order_family[order_id] = family_id
    return _Sums(dict(families), dict(orders), order_family)


def family_balances(sums: _Sums | None = None) -> list[Problem]:
    """What a family owes, as the pages show it (billing.selectors), is the
    sum of its entries, and so is what its orders show owed plus its entries
    on no order (an entry booked to another family's order breaks that);
    each order's balance is the sum of its entries; the staff home's total
    of what families owe is the sum of the balances above zero."""
    sums = sums or _ledger_sums()
    loose: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for family_id, amount in LedgerEntry.objects.filter(order__isnull=True).values_list(
        "family_id", "amount"
    ):
        loose[family_id] += amount
    problems = []
    families = Family.objects.filter(pk__in=list(sums.families)).order_by("pk")
    for family in families.iterator(chunk_size=500):
        expected = sums.families[family.pk]
        shown = selectors.financials(family).outstanding
        figures = {
            "family": family.name,
            "shown": formatting.money(shown),
            "sum": formatting.money(expected),
        }
        if shown != expected:
            problems.append(
                Problem(
                    "balance_mismatch",
                    _("%(family)s: the portal shows %(shown)s owed; the entries add up to %(sum)s.")
                    % figures,
                    family_id=family.pk,
                )
            )
        orders = list(selectors.orders_with_balance(family))
        on_orders = sum((order.owed for order in orders), ZERO) + loose.get(family.pk, ZERO)
        if on_orders != expected:
            problems.append(
                Problem(
                    "balance_mismatch",
                    _(
                        "%(family)s: its orders (and entries on no order) show %(orders)s owed; "
                        "its entries add up to %(sum)s."
                    )
                    % {**figures, "orders": formatting.money(on_orders)},
                    family_id=family.pk,
                )
            )
        for order in orders:
            entries = sums.orders.get(order.pk, ZERO)
            if order.owed != entries:
                problems.append(
                    Problem(
                        "order_balance_mismatch",
                        _(
                            "Order %(order)s: the portal shows %(shown)s still owed; its entries "
                            "add up to %(sum)s."
                        )
                        % {
                            "order": _order_ref(order.pk),
                            "shown": formatting.money(order.owed),
                            "sum": formatting.money(entries),
                        },
                        family_id=family.pk,
                        order_id=order.pk,
                    )
                )
    owing = [amount for amount in sums.families.values() if amount > 0]
    _top, count, total = selectors.families_owing(limit=1)
    if count != len(owing) or total != sum(owing, ZERO):
        problems.append(
            Problem(
                "owing_total_mismatch",
                _(
                    "The staff home shows %(count)s families owing %(total)s; the entries say "
                    "%(expected_count)s families owing %(expected)s."
                )
                % {
                    "count": count,
                    "total": formatting.money(total),
                    "expected_count": len(owing),
                    "expected": formatting.money(sum(owing, ZERO)),
                },
            )
        )
    return problems


def orders_not_below_zero(sums: _Sums | None = None) -> list[Problem]:
    """No order owes less than nothing: money beyond what an order owes is
    family credit or refunded, never a negative order (cancelled orders
    aside: their reversal is their own)."""
    sums = sums or _ledger_sums()
    below = {pk: amount for pk, amount in sums.orders.items() if amount < 0}
    cancelled = set(
        Order.objects.filter(pk__in=list(below), cancelled_at__isnull=False).values_list(
            "pk", flat=True
        )
    )
    return [
        Problem(
            "order_below_zero",
            _("Order %(order)s is below zero: its entries add up to %(sum)s.")
            % {"order": _order_ref(pk), "sum": formatting.money(amount)},
            family_id=sums.order_family[pk],
            order_id=pk,
        )
        for pk, amount in sorted(below.items())
        if pk not in cancelled
    ]


def payments_booked() -> list[Problem]:
    """Each succeeded payment has exactly one payment entry, for its amount,
    its family and its order; a payment that did not succeed has none, and
    every payment entry belongs to a payment."""
    entries: dict[int | None, list[tuple[int, int, int | None, Decimal]]] = defaultdict(list)
    for pk, payment_id, family_id, order_id, amount in LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.PAYMENT
    ).values_list("pk", "payment_id", "family_id", "order_id", "amount"):
        entries[payment_id].append((pk, family_id, order_id, amount))
    problems = []
    for entry_id, entry_family, entry_order, entry_amount in entries.pop(None, []):
        problems.append(
            Problem(
                "payment_entry_without_payment",
                _("A payment entry of %(amount)s (entry %(entry)s) belongs to no payment.")
                % {"amount": formatting.money(-entry_amount), "entry": entry_id},
                family_id=entry_family,
                order_id=entry_order,
            )
        )
    payments = Payment.objects.order_by("pk").values_list(
        "pk", "status", "amount", "family_id", "order_id"
    )
    for pk, status, amount, family_id, order_id in payments.iterator(chunk_size=5000):
        booked = entries.get(pk, [])
        where = {"payment": pk, "amount": formatting.money(amount), "order": _order_ref(order_id)}
        ids = {"family_id": family_id, "order_id": order_id, "payment_id": pk}
        if status != Payment.Status.SUCCEEDED:
            if booked:
                problems.append(
                    Problem(
                        "payment_booked_not_succeeded",
                        _(
                            "Payment %(payment)s of %(amount)s (order %(order)s) is "
                            "%(status)s but is booked in the ledger."
                        )
                        % {**where, "status": status},
                        **ids,
                    )
                )
            continue
        if len(booked) != 1:
            problems.append(
                Problem(
                    "payment_not_booked" if not booked else "payment_booked_twice",
                    _(
                        "Payment %(payment)s of %(amount)s (order %(order)s) succeeded and has "
                        "%(count)s payment entries instead of one."
                    )
                    % {**where, "count": len(booked)},
                    **ids,
                )
            )
            continue
        _entry, entry_family, entry_order, entry_amount = booked[0]
        if entry_amount != -amount or entry_family != family_id or entry_order != order_id:
            problems.append(
                Problem(
                    "payment_amount_mismatch",
                    _(
                        "Payment %(payment)s of %(amount)s (order %(order)s) is booked as "
                        "%(booked)s on order %(booked_order)s."
                    )
                    % {
                        **where,
                        "booked": formatting.money(-entry_amount),
                        "booked_order": _order_ref(entry_order),
                    },
                    **ids,
                )
            )
    return problems


def refunds_booked() -> list[Problem]:
    """Each refund is booked once, for its amount (the family's balance goes
    up by what was given back), in its payment's family; the refunds of a
    payment never exceed it; every refund entry belongs to a refund."""
    problems = []
    orphans = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND, refund__isnull=True)
    for pk, family_id, order_id, amount in orphans.values_list(
        "pk", "family_id", "order_id", "amount"
    ):
        problems.append(
            Problem(
                "refund_entry_without_refund",
                _("A refund entry of %(amount)s (entry %(entry)s) belongs to no refund.")
                % {"amount": formatting.money(amount), "entry": pk},
                family_id=family_id,
                order_id=order_id,
            )
        )
    booked = {
        refund_id: (amount, family_id)
        for refund_id, amount, family_id in LedgerEntry.objects.filter(
            refund__isnull=False
        ).values_list("refund_id", "amount", "family_id")
    }
    refunded: dict[int, Decimal] = defaultdict(lambda: ZERO)
    refunds = Refund.objects.select_related("payment").order_by("pk")
    for refund in refunds.iterator(chunk_size=2000):
        payment = refund.payment
        refunded[payment.pk] += refund.amount
        ids = {"family_id": payment.family_id, "order_id": payment.order_id}
        ids["payment_id"] = payment.pk
        entry = booked.get(refund.pk)
        if entry is None:
            problems.append(
                Problem(
                    "refund_not_booked",
                    _("Refund %(refund)s of %(amount)s on payment %(payment)s has no ledger entry.")
                    % {
                        "refund": refund.pk,
                        "amount": formatting.money(refund.amount),
                        "payment": payment.pk,
                    },
                    **ids,
                )
            )
        elif entry != (refund.amount, payment.family_id):
            problems.append(
                Problem(
                    "refund_amount_mismatch",
                    _(
                        "Refund %(refund)s of %(amount)s on payment %(payment)s is booked as "
                        "%(booked)s."
                    )
                    % {
                        "refund": refund.pk,
                        "amount": formatting.money(refund.amount),
                        "payment": payment.pk,
                        "booked": formatting.money(entry[0]),
                    },
                    **ids,
                )
            )
        if payment.status != Payment.Status.SUCCEEDED:
            problems.append(
                Problem(
                    "refund_of_unpaid_payment",
                    _("Refund %(refund)s gives back money of payment %(payment)s (%(status)s).")
                    % {"refund": refund.pk, "payment": payment.pk, "status": payment.status},
                    **ids,
                )
            )
    over = Payment.objects.filter(pk__in=list(refunded)).values_list(
        "pk", "amount", "family_id", "order_id"
    )
    for pk, amount, family_id, order_id in over:
        if refunded[pk] > amount:
            problems.append(
                Problem(
                    "refund_exceeds_payment",
                    _("Payment %(payment)s of %(amount)s has %(refunded)s refunded.")
                    % {
                        "payment": pk,
                        "amount": formatting.money(amount),
                        "refunded": formatting.money(refunded[pk]),
                    },
                    family_id=family_id,
                    order_id=order_id,
                    payment_id=pk,
                )
            )
    return problems


def credit_notes_booked() -> list[Problem]:
    """Each credit note is booked once, reducing its own order by its amount;
    every credit-note entry belongs to a credit note."""
    problems = []
    orphans = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.CREDIT_NOTE, credit_note__isnull=True
    ).values_list("pk", "family_id", "order_id", "amount")
    for pk, family_id, order_id, amount in orphans:
        problems.append(
            Problem(
                "credit_note_entry_without_note",
                _("A credit-note entry of %(amount)s (entry %(entry)s) belongs to no credit note.")
                % {"amount": formatting.money(-amount), "entry": pk},
                family_id=family_id,
                order_id=order_id,
            )
        )
    booked = {
        note_id: (amount, order_id, family_id)
        for note_id, amount, order_id, family_id in LedgerEntry.objects.filter(
            credit_note__isnull=False
        ).values_list("credit_note_id", "amount", "order_id", "family_id")
    }
    notes = CreditNote.objects.select_related("order").order_by("pk")
    for note in notes.iterator(chunk_size=2000):
        entry = booked.get(note.pk)
        ids = {"family_id": note.order.family_id, "order_id": note.order_id}
        if entry != (-note.amount, note.order_id, note.order.family_id):
            problems.append(
                Problem(
                    "credit_note_not_booked" if entry is None else "credit_note_amount_mismatch",
                    _(
                        "Credit note %(note)s of %(amount)s on order %(order)s is booked as "
                        "%(booked)s."
                    )
                    % {
                        "note": note.display_number,
                        "amount": formatting.money(note.amount),
                        "order": _order_ref(note.order_id),
                        "booked": formatting.money(-entry[0]) if entry else _("nothing"),
                    },
                    **ids,
                )
            )
    return problems


def credit_entries() -> list[Problem]:
    """Credit applied to an order in the ledger is credit spent from the
    family's grants: the uses with the entry's reference add up to it."""
    spent: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for family_id, reference, amount in CreditUse.objects.filter(
        kind=CreditUse.Kind.SPENT
    ).values_list("grant__family_id", "reference", "amount"):
        spent[family_id, reference] += amount
    problems = []
    entries = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CREDIT).values_list(
        "pk", "family_id", "order_id", "amount", "reference"
    )
    for pk, family_id, order_id, amount, reference in entries:
        used = spent.get((family_id, reference), ZERO) if reference else ZERO
        if used != -amount:
            problems.append(
                Problem(
                    "credit_entry_mismatch",
                    _(
                        "Credit of %(amount)s applied to order %(order)s (entry %(entry)s) was "
                        "spent from the family's credit as %(used)s."
                    )
                    % {
                        "amount": formatting.money(-amount),
                        "order": _order_ref(order_id),
                        "entry": pk,
                        "used": formatting.money(used),
                    },
                    family_id=family_id,
                    order_id=order_id,
                )
            )
    return problems


# --- Benefits ----------------------------------------------------------------------------------

# Which event may follow which in a token's history (None: the first event).
TOKEN_NEXT: dict[str | None, set[str]] = {
    None: {TokenEvent.Kind.ISSUED},
    TokenEvent.Kind.ISSUED: {
        TokenEvent.Kind.APPLIED,
        TokenEvent.Kind.EXPIRED,
        TokenEvent.Kind.REVOKED,
    },
    TokenEvent.Kind.RETURNED: {
        TokenEvent.Kind.APPLIED,
        TokenEvent.Kind.EXPIRED,
        TokenEvent.Kind.REVOKED,
    },
    TokenEvent.Kind.APPLIED: {TokenEvent.Kind.RETURNED},
    TokenEvent.Kind.EXPIRED: set(),
    TokenEvent.Kind.REVOKED: set(),
}


# A token in use books a place that still stands (or was attended).
BOOKED: set[str] = {Enrollment.Status.ACTIVE, Enrollment.Status.COMPLETED}


def token_histories() -> list[Problem]:
    """A token's history is a path the services can take (issued first; used
    only while available; returned only after use; nothing after expiry or
    revocation; a use names its booking, which stands while the token is
    in use), and the state the pages show
    (computed in SQL from the newest event) is the one its history gives."""
    events = Prefetch(
        "events",
        queryset=TokenEvent.objects.select_related("enrollment__session").order_by("at", "pk"),
    )
    tokens = benefit_selectors.tokens_with_state(
        MakeupToken.objects.select_related("student").prefetch_related(events).order_by("pk")
    )
    problems = []
    for token in tokens.iterator(chunk_size=1000):
        ids = {"family_id": token.student.family_id}
        history = list(token.events.all())
        previous: str | None = None
        broken = None
        for event in history:
            if event.kind not in TOKEN_NEXT.get(previous, set()):
                broken = _("“%(kind)s” follows “%(previous)s”.") % {
                    "kind": event.kind,
                    "previous": previous or _("nothing"),
                }
                break
            if event.kind == TokenEvent.Kind.APPLIED and (
                event.enrollment is None or event.enrollment.session is None
            ):
                broken = _("A use names no make-up booking.")
                break
            previous = event.kind
        booking = history[-1].enrollment if history else None
        if not history:
            broken = _("It has no history.")
        elif (
            not broken
            and previous == TokenEvent.Kind.APPLIED
            and booking is not None
            and booking.status not in BOOKED
        ):
            broken = _("It is in use for a booking that is %(status)s.") % {
                "status": booking.get_status_display().lower()
            }
        if broken:
            problems.append(
                Problem(
                    "token_history",
                    _("The make-up token %(token)s of %(student)s has an impossible history: ")
                    % {"token": token.pk, "student": token.student}
                    + broken,
                    **ids,
                )
            )
            continue
        shown = rules.state_from(token.last_kind, token.last_starts, token.expires_on)
        delattr(token, "last_kind")  # now from the history itself
        from_history = rules.token_state(token)
        if shown != from_history:
            problems.append(
                Problem(
                    "token_state_mismatch",
                    _(
                        "The make-up token %(token)s of %(student)s shows as %(shown)s; its "
                        "history says %(state)s."
                    )
                    % {
                        "token": token.pk,
                        "student": token.student,
                        "shown": shown,
                        "state": from_history,
                    },
                    **ids,
                )
            )
    return problems


def pass_punches() -> list[Problem]:
    """Punches left on a punch card or an entry pass never went below zero at
    any point of its history, and the number the pages show is the sum of
    its history."""
    running: dict[int, int] = {}
    negative: dict[int, int] = {}
    counted = (
        PassEvent.objects.exclude(pass_obj__kind=Pass.Kind.PERMANENT)
        .order_by("pass_obj_id", "at", "pk")
        .values_list("pass_obj_id", "punches")
    )
    for pass_id, punches in counted.iterator(chunk_size=5000):
        running[pass_id] = running.get(pass_id, 0) + punches
        if running[pass_id] < 0 and pass_id not in negative:
            negative[pass_id] = running[pass_id]
    problems = []
    passes = Pass.objects.filter(pk__in=list(negative)).values_list("pk", "name", "family_id")
    for pk, name, family_id in passes:
        problems.append(
            Problem(
                "pass_negative",
                _("The pass %(pass)s (%(name)s) went down to %(visits)s visits.")
                % {"pass": pk, "name": name, "visits": negative[pk]},
                family_id=family_id,
            )
        )
    families = Family.objects.filter(passes__isnull=False).distinct().prefetch_related("students")
    for family in families.order_by("pk"):
        groups = benefit_selectors.pass_groups(family, family.students.all(), with_history=False)
        for pass_obj in groups.available + groups.unavailable + groups.expired:
            if pass_obj.left is None:
                continue  # permanent: unlimited
            expected = running.get(pass_obj.pk, 0)
            if pass_obj.left != expected:
                problems.append(
                    Problem(
                        "pass_left_mismatch",
                        _(
                            "The pass %(pass)s (%(name)s) shows %(shown)s visits left; its "
                            "history adds up to %(visits)s."
                        )
                        % {
                            "pass": pass_obj.pk,
                            "name": pass_obj.name,
                            "shown": pass_obj.left,
                            "visits": expected,
                        },
                        family_id=family.pk,
                    )
                )
    return problems


def credit_balances() -> list[Problem]:
    """No credit grant is used beyond its amount, and the family's credit as
    the pages show it is what is left of its unexpired grants."""
    used: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for grant_id, amount in CreditUse.objects.values_list("grant_id", "amount"):
        used[grant_id] += amount
    problems = []
    left: dict[int, Decimal] = defaultdict(lambda: ZERO)
    day = today()
    grants = CreditGrant.objects.order_by("pk").values_list(
        "pk", "family_id", "amount", "expires_on"
    )
    for pk, family_id, amount, expires_on in grants.iterator(chunk_size=5000):
        rest = amount - used.get(pk, ZERO)
        if rest < 0:
            problems.append(
                Problem(
                    "credit_overspent",
                    _("Credit %(grant)s of %(amount)s was used for %(used)s.")
                    % {
                        "grant": pk,
                        "amount": formatting.money(amount),
                        "used": formatting.money(used[pk]),
                    },
                    family_id=family_id,
                )
            )
        left[family_id] += rest if rest > 0 and (expires_on is None or expires_on >= day) else ZERO
    for family in Family.objects.filter(pk__in=list(left)).order_by("pk"):
        shown = benefit_selectors.family_credit_balance(family)
        if shown != left[family.pk]:
            problems.append(
                Problem(
                    "credit_balance_mismatch",
                    _(
                        "%(family)s: the portal shows %(shown)s credit; what is left of its "
                        "grants adds up to %(left)s."
                    )
                    % {
                        "family": family.name,
                        "shown": formatting.money(shown),
                        "left": formatting.money(left[family.pk]),
                    },
                    family_id=family.pk,
                )
            )
    return problems


def benefit_limits() -> list[Problem]:
    """A discount is used no more often than it may be, and a voucher
    redeemed no more often than it may be."""
    problems = []
    overused = (
        Discount.objects.filter(max_uses__isnull=False)
        .annotate(times=Count("uses"))
        .filter(times__gt=F("max_uses"))
    )
    for discount in overused:
        problems.append(
            Problem(
                "discount_overused",
                _("The discount “%(name)s” was used %(times)s times; it may be used %(max)s.")
                % {"name": discount.description, "times": discount.times, "max": discount.max_uses},
                family_id=discount.family_id,
            )
        )
    vouchers = Voucher.objects.annotate(times=Count("redemptions")).filter(
        times__gt=F("max_redemptions")
    )
    for voucher in vouchers:
        problems.append(
            Problem(
                "voucher_overused",
                _("The code %(code)s was redeemed %(times)s times; it may be redeemed %(max)s.")
                % {"code": voucher.code, "times": voucher.times, "max": voucher.max_redemptions},
            )
        )
    return problems


# --- All of them -------------------------------------------------------------------------------

# Those that do not need the ledger summed (family_balances and
# orders_not_below_zero share one pass over it).
OTHER_CHECKS: list[Callable[[], list[Problem]]] = [
    payments_booked,
    refunds_booked,
    credit_notes_booked,
    credit_entries,
    token_histories,
    pass_punches,
    credit_balances,
    benefit_limits,
]


def check_all() -> list[Problem]:
    """Every invariant, in the connection's schema, over one snapshot of the
    data (a repeatable-read transaction: a payment booked while the check
    runs is seen by every check or by none). Inside a caller's transaction
    (a test's), that transaction's view."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        return _check_all()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _check_all()


def _check_all() -> list[Problem]:
    sums = _ledger_sums()
    problems = family_balances(sums) + orders_not_below_zero(sums)
    for check in OTHER_CHECKS:
        problems += check()
    return problems


def record(problems: Iterable[Problem]) -> list[Finding]:
    """Each problem as a Finding staff see (the staff home, the admin)."""
    from . import services

    families = Family.objects.in_bulk({p.family_id for p in problems if p.family_id})
    orders = Order.objects.in_bulk({p.order_id for p in problems if p.order_id})
    payments = Payment.objects.in_bulk({p.payment_id for p in problems if p.payment_id})
    return [
        services.finding_record(
            source=Finding.Source.CHECK,
            code=problem.code,
            message=problem.message,
            family=families.get(problem.family_id) if problem.family_id else None,
            order=orders.get(problem.order_id) if problem.order_id else None,
            payment=payments.get(problem.payment_id) if problem.payment_id else None,
        )
        for problem in problems
    ]
