"""Demo benefits: something available, something used, something expired, so
every group and history has content. Idempotent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from enrollments import services as enrollment_services
from enrollments.models import Enrollment, Location, Session
from families.models import Student
from portal import clock
from portal.clock import today

from . import services
from .models import (
    CreditGrant,
    CreditUse,
    Discount,
    MakeupRequest,
    MakeupToken,
    Pass,
    PassEvent,
    TokenEvent,
    Voucher,
)


def _student(first, last):
    return Student.objects.get(first_name=first, last_name=last)


def _past_session(student, weeks_ago: int) -> Session | None:
    enrollment = Enrollment.objects.filter(student=student, status="active", kind="regular").first()
    if not enrollment:
        return None
    return (
        Session.objects.filter(
            klass__level=enrollment.klass.level,
            starts_at__lt=clock.now() - timedelta(weeks=weeks_ago),
        )
        .exclude(klass=enrollment.klass)
        .order_by("-starts_at")
        .first()
    )


def seed(provider, *, password: str) -> None:
    if provider.slug == "aquakids":
        _aquakids()
    elif provider.slug == "leaps":
        _leaps()


def _aquakids() -> None:
    day = today()
    mia, leo = _student("Mia", "Novak"), _student("Leo", "Novak")
    novak = mia.family
    tivoli = Location.objects.get(name="Tivoli Pool")
    kodeljevo = Location.objects.get(name="Kodeljevo Pool")
    if not MakeupToken.objects.filter(student__family=novak).exists():
        services.token_issue(
            student=mia,
            reason=MakeupToken.Reason.ABSENCE,
            location=tivoli,
            expires_on=day + timedelta(days=40),
            note="Missed a lesson with a cold",
        )
        services.token_issue(
            student=leo,
            reason=MakeupToken.Reason.GOODWILL,
            location=kodeljevo,
            expires_on=day + timedelta(days=5),
        )
        old = services.token_issue(
            student=mia,
            reason=MakeupToken.Reason.GOODWILL,
            location=tivoli,
            expires_on=day - timedelta(days=3),
        )
        TokenEvent.objects.create(token=old, kind=TokenEvent.Kind.EXPIRED)
        used = services.token_issue(
            student=mia,
            reason=MakeupToken.Reason.CANCELLED,
            location=tivoli,
            expires_on=day + timedelta(days=20),
        )
        session = _past_session(mia, 2)
        if session:
            booking = enrollment_services.single_booking_create(
                student=mia, session=session, kind=Enrollment.Kind.MAKEUP
            )
            TokenEvent.objects.create(token=used, kind=TokenEvent.Kind.APPLIED, enrollment=booking)

    if not Pass.objects.filter(family=novak).exists():
        card = services.pass_create(
            family=novak,
            kind=Pass.Kind.PUNCH,
            name="10-visit family swim card",
            punches=10,
            valid_days=180,
            amount_paid=Decimal("90.00"),
        )
        for weeks in (3, 5):
            session = _past_session(leo, weeks)
            if session:
                booking = enrollment_services.single_booking_create(
                    student=leo, session=session, kind=Enrollment.Kind.DROPIN
                )
                PassEvent.objects.create(
                    pass_obj=card, kind="punch", punches=-1, enrollment=booking
                )
        entry = services.pass_create(
            family=novak,
            student=mia,
            kind=Pass.Kind.ENTRY,
            name="Summer splash entry",
            amount_paid=Decimal("8.00"),
        )
        Pass.objects.filter(pk=entry.pk).update(
            purchased_on=day - timedelta(days=120), expires_on=day - timedelta(days=30)
        )

    if not CreditGrant.objects.filter(family=novak).exists():
        services.credit_grant(
            family=novak,
            amount=Decimal("15.00"),
            source=CreditGrant.Source.GOODWILL,
            description="Sorry for the pool closure",
            expires_on=day + timedelta(days=90),
        )
        refund = services.credit_grant(
            family=novak,
            amount=Decimal("30.00"),
            source=CreditGrant.Source.CANCELLATION,
            description="Cancelled autumn camp day",
        )
        CreditUse.objects.create(
            grant=refund,
            kind=CreditUse.Kind.SPENT,
            amount=Decimal("12.50"),
            where="Swim cap and goggles",
            reference="demo-shop-1",
        )
        lapsed = services.credit_grant(
            family=novak,
            amount=Decimal("5.00"),
            source=CreditGrant.Source.GOODWILL,
            description="Referral thank-you",
            expires_on=day - timedelta(days=10),
        )
        CreditUse.objects.create(
            grant=lapsed, kind=CreditUse.Kind.EXPIRED, amount=Decimal("5.00"), where="Expired"
        )

    if not Discount.objects.filter(family=novak).exists():
        Discount.objects.create(
            family=novak,
            kind=Discount.Kind.SIBLING,
            description="Sibling discount",
            percent=Decimal("10"),
        )
        Discount.objects.create(
            family=novak,
            student=leo,
            kind=Discount.Kind.MULTI_CLASS,
            description="Second class for Leo",
            amount=Decimal("5.00"),
        )
        Discount.objects.create(
            family=novak,
            kind=Discount.Kind.PROMOTIONAL,
            description="Spring promotion",
            percent=Decimal("15"),
            valid_until=day - timedelta(days=40),
        )

    vouchers: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "WELCOME10",
            "promo",
            "Welcome: 10 % off your next term",
            {"discount_percent": Decimal("10"), "max_redemptions": 500},
        ),
        ("GIFT25", "gift", "Gift voucher", {"credit_amount": Decimal("25.00")}),
        (
            "SPLASH5",
            "pass",
            "5 splash sessions",
            {"pass_kind": "punch", "pass_punches": 5, "pass_valid_days": 90},
        ),
    ]
    for code, kind, description, extra in vouchers:
        Voucher.objects.get_or_create(
            code=code, defaults={"kind": kind, "description": description, **extra}
        )


def _leaps() -> None:
    finn, zoe = _student("Finn", "Lindqvist"), _student("Zoe", "Lindqvist")
    family = finn.family
    enrollment = Enrollment.objects.filter(student=finn, status="active").first()
    if enrollment and not MakeupRequest.objects.filter(student=finn).exists():
        target = (
            Session.objects.filter(
                klass__programme=enrollment.klass.programme, starts_at__gt=clock.now()
            )
            .exclude(klass=enrollment.klass)
            .order_by("starts_at")
            .first()
        )
        if target:
            MakeupRequest.objects.create(
                student=finn, session=target, note="Missed Tuesday for a school trip"
            )
    if not Pass.objects.filter(family=family).exists():
        services.pass_create(
            family=family,
            student=zoe,
            kind=Pass.Kind.PERMANENT,
            name="Tiny tumblers open play",
            valid_days=60,
            amount_paid=Decimal("40.00"),
        )
