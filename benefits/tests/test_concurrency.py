"""Fifty requests at once spend one token, one punch, one credit and one
single-use code exactly once: real threads, real commits, real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from django.db import connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from benefits import services
from benefits.models import CreditUse, Pass, PassEvent, TokenEvent, Voucher, VoucherRedemption
from benefits.services import BenefitError
from enrollments.models import Enrollment, Session

from .factories import family_with_child, sibling_class

RACERS = 50


def race(provider, attempts) -> list[str]:
    """Run each attempt in its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []

    def run(attempt):
        try:
            with tenant_context(provider):
                barrier.wait(timeout=30)
                attempt()
                outcomes.append("ok")
        except BenefitError:
            outcomes.append("refused")
        except Exception as error:  # surfaced by the assertion
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return sorted(outcomes)


def expected():
    return ["ok"] + ["refused"] * (RACERS - 1)


def sessions_of(klass, n):
    return list(
        Session.objects.filter(
            klass=klass, starts_at__gt=timezone.now() + timedelta(hours=1)
        ).order_by("starts_at")[:n]
    )


def test_one_token_fifty_bookings(committed, race_provider):
    with tenant_context(race_provider):
        family, guardian, student, home = family_with_child()
        other = sibling_class(home, capacity=RACERS * 2)
        session = sessions_of(other, 1)[0]
        token = services.token_issue(student=student, reason="goodwill")
    outcomes = race(
        race_provider,
        [lambda: services.makeup_book(token=token, session=session, actor=guardian)] * RACERS,
    )
    assert outcomes == expected()
    with tenant_context(race_provider):
        assert TokenEvent.objects.filter(token=token, kind="applied").count() == 1
        assert Enrollment.objects.filter(student=student, kind="makeup").count() == 1


def test_one_punch_fifty_visits(committed, race_provider):
    with tenant_context(race_provider):
        family, guardian, student, home = family_with_child()
        other = sibling_class(home, capacity=RACERS * 2)
        sessions = sessions_of(other, 5)
        card = services.pass_create(family=family, kind=Pass.Kind.PUNCH, name="One", punches=1)

    def visit(session):
        return lambda: services.pass_book(
            pass_obj=card, student=student, session=session, actor=guardian
        )

    attempts = [visit(sessions[i % len(sessions)]) for i in range(RACERS)]
    assert race(race_provider, attempts) == expected()
    with tenant_context(race_provider):
        assert sum(PassEvent.objects.filter(pass_obj=card).values_list("punches", flat=True)) == 0
        assert PassEvent.objects.filter(pass_obj=card, kind="punch").count() == 1


def test_one_credit_fifty_spends(committed, race_provider):
    with tenant_context(race_provider):
        family, *_ = family_with_child()
        services.credit_grant(
            family=family, amount=Decimal("10"), source="goodwill", description="x"
        )
    attempts = [
        (
            lambda i=i: services.credit_spend(
                family=family, amount=Decimal("10"), where="Order", reference=f"order-{i}"
            )
        )
        for i in range(RACERS)
    ]
    assert race(race_provider, attempts) == expected()
    with tenant_context(race_provider):
        assert CreditUse.objects.filter(grant__family=family).count() == 1


def test_the_same_spend_sent_fifty_times_spends_once(committed, race_provider):
    with tenant_context(race_provider):
        family, *_ = family_with_child()
        services.credit_grant(
            family=family, amount=Decimal("100"), source="goodwill", description="x"
        )
    spend = lambda: services.credit_spend(  # noqa: E731
        family=family, amount=Decimal("10"), where="Order 7", reference="order-7"
    )
    assert race(race_provider, [spend] * RACERS) == ["ok"] * RACERS
    with tenant_context(race_provider):
        assert CreditUse.objects.filter(grant__family=family).count() == 1


def test_one_single_use_code_fifty_families(committed, race_provider):
    with tenant_context(race_provider):
        voucher = Voucher.objects.create(
            code="RACE-ONCE", kind="gift", description="Gift", credit_amount=Decimal("5")
        )
        families = [family_with_child()[:2] for _ in range(RACERS)]
    attempts = [
        (lambda f=f, g=g: services.voucher_redeem(code="race-once", family=f, actor=g))
        for f, g in families
    ]
    assert race(race_provider, attempts) == expected()
    with tenant_context(race_provider):
        assert VoucherRedemption.objects.filter(voucher=voucher).count() == 1
