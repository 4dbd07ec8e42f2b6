"""Demo orders: something unpaid, partly paid and paid in each family."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from enrollments.models import Location
from families.models import Family, Student
from portal.clock import today

from . import services
from .models import Order

SPECS: dict[str, dict[str, list[tuple[str, str, str, int | None, str, str]]]] = {
    "aquakids": {
        "Novak": [
            ("Registration 2026/27", "registration", "25.00", None, "Mia", "paid"),
            ("Autumn term: Swim Level 2", "enrollment", "180.00", 10, "Mia", "unpaid"),
            ("Autumn term: Swim Level 1", "enrollment", "150.00", -5, "Leo", "50.00"),
        ],
        "Okafor": [("Autumn term: Swim Level 1", "enrollment", "150.00", 7, "Noah", "unpaid")],
    },
    "leaps": {
        "Lindqvist": [
            ("Spring term: Recreational gymnastics", "enrollment", "95.00", 14, "Ella", "unpaid"),
            ("Club membership 2026", "registration", "30.00", None, "Finn", "paid"),
        ]
    },
}


def seed(provider, *, password: str) -> None:
    location = Location.objects.first()
    for family_name, orders in SPECS.get(provider.slug, {}).items():
        family = Family.objects.get(name=family_name)
        if Order.objects.filter(family=family).exists():
            continue
        for title, kind, price, due_in, child, paid in orders:
            student = Student.objects.get(family=family, first_name=child)
            order = services.order_create(
                family=family,
                title=title,
                student=student,
                location=location,
                due_date=today() + timedelta(days=due_in) if due_in is not None else None,
                lines=[{"kind": kind, "description": title, "unit_price": Decimal(price)}],
            )
            if paid != "unpaid":
                amount = Decimal(price) if paid == "paid" else Decimal(paid)
                services.payment_record_offline(
                    order=order,
                    amount=amount,
                    method="offline",
                    key=f"demo-{order.pk}",
                    actor_user=None,
                )
