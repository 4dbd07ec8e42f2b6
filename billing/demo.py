"""Demo money, made through the services with the project clock moved back,
so every date reads as it would have happened: orders made before the term,
invoiced the same day, paid at the desk or by bank transfer weeks ago. Each
order is booked to the pool of its child's class (Aqua Kids has two), and the
families hold every status a parent can see: unpaid, partly paid and overdue,
paid, refunded. Idempotent: a family that has orders is left alone."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from enrollments.models import Enrollment, Location
from families.models import Family, Student
from portal import clock

from . import services
from .models import Order, RefundRequest


@dataclass
class Paid:
    amount: str
    days: int  # after the term started (negative: before)
    method: str = "offline"


@dataclass
class Spec:
    title: str
    kind: str
    price: str
    child: str
    location: str
    created: int  # days after the term started (negative: before)
    due: int | None  # days from today (negative: overdue)
    paid: list[Paid] = field(default_factory=list)
    # Called off after it was paid: the charge reversed and the money given back.
    refunded_after: int | None = None


SPECS: dict[str, dict[str, list[Spec]]] = {
    "aquakids": {
        "Novak": [
            Spec(
                "Registration 2026/27",
                "registration",
                "25.00",
                "Mia",
                "Tivoli Pool",
                created=-21,
                due=None,
                paid=[Paid("25.00", -18)],
            ),
            Spec(
                "Autumn term: Swim Level 2",
                "enrollment",
                "180.00",
                "Mia",
                "Tivoli Pool",
                created=-7,
                due=10,
            ),
            Spec(
                "Autumn term: Swim Level 1",
                "enrollment",
                "150.00",
                "Leo",
                "Kodeljevo Pool",
                created=-7,
                due=-5,
                paid=[Paid("50.00", 10, "bank")],
            ),
            Spec(
                "Pool party: end of summer",
                "other",
                "20.00",
                "Leo",
                "Kodeljevo Pool",
                created=-28,
                due=None,
                paid=[Paid("20.00", -25)],
                refunded_after=-20,
            ),
        ],
        "Okafor": [
            Spec(
                "Autumn term: Swim Level 1",
                "enrollment",
                "150.00",
                "Noah",
                "Tivoli Pool",
                created=-7,
                due=7,
            )
        ],
        "Kovač": [
            Spec(
                "Autumn term: Swim Level 2",
                "enrollment",
                "180.00",
                "Maks",
                "Kodeljevo Pool",
                created=-7,
                due=None,
                paid=[Paid("180.00", 3, "bank")],
            )
        ],
    },
    "leaps": {
        "Lindqvist": [
            Spec(
                "Spring term: Recreational gymnastics",
                "enrollment",
                "95.00",
                "Ella",
                "Leaps Hall",
                created=-3,
                due=14,
            ),
            Spec(
                "Club membership 2026",
                "registration",
                "30.00",
                "Finn",
                "Leaps Hall",
                created=-30,
                due=None,
                paid=[Paid("30.00", -27, "bank")],
            ),
        ]
    },
}


def _at(day: date, hour: int) -> AbstractContextManager[None]:
    """The clock at that hour of that day; where it cannot be moved (the
    drill's production settings), the demo is dated today."""
    if not clock.can_move():
        return nullcontext()
    return clock.moved_to(datetime.combine(day, time(hour), tzinfo=clock.provider_zone()))


def seed(provider, *, password: str) -> None:
    day = clock.today()
    term_start = day - timedelta(days=day.weekday()) - timedelta(weeks=9)
    for family_name, specs in SPECS.get(provider.slug, {}).items():
        family = Family.objects.filter(name=family_name).first()
        if family is None or Order.objects.filter(family=family).exists():
            continue
        for spec in specs:
            _order(family, spec, term_start=term_start, today=day)


def _order(family: Family, spec: Spec, *, term_start: date, today: date) -> None:
    student = Student.objects.get(family=family, first_name=spec.child)
    location = Location.objects.get(name=spec.location)
    line = {"kind": spec.kind, "description": spec.title, "unit_price": Decimal(spec.price)}
    if spec.kind == "enrollment":  # the class's programme gives the line its VAT rate
        line["enrollment"] = Enrollment.objects.filter(
            student=student, klass__location=location, kind=Enrollment.Kind.REGULAR
        ).first()
    with _at(term_start + timedelta(days=spec.created), 9):
        order = services.order_create(
            family=family,
            title=spec.title,
            student=student,
            location=location,
            due_date=today + timedelta(days=spec.due) if spec.due is not None else None,
            lines=[line],
            # The demo's figures are the term fees as listed: the family's
            # standing discounts are shown on orders staff make.
            discounts=False,
        )
        services.invoice_issue(order=order)  # issued with the order (a no-op where it is already)
    payments = []
    for number, paid in enumerate(spec.paid):
        with _at(term_start + timedelta(days=paid.days), 16):
            payments.append(
                services.payment_record_offline(
                    order=order,
                    amount=Decimal(paid.amount),
                    method=paid.method,
                    key=f"demo-{order.pk}-{number}",
                    actor_user=None,
                )
            )
    if spec.refunded_after is not None and payments:
        # Money back, and a credit note takes the charge off the order.
        with _at(term_start + timedelta(days=spec.refunded_after), 11):
            services.refund_create(
                payment=payments[0],
                amount=payments[0].amount,
                reason="Called off: the pool was closed",
                actor_user=None,
                meaning=RefundRequest.Meaning.CREDIT_NOTE,
                method=RefundRequest.Method.DESK,
                key=f"demo-refund-{order.pk}",
            )
