"""Saved payment methods under concurrency: real threads, real commits,
real PostgreSQL (rows of the tests' own, in the session's race provider).
A race ends in one clear outcome, never an IntegrityError."""

from __future__ import annotations

import threading

from django.db import connections
from django_tenants.utils import tenant_context

from billing import services
from billing.models import PaymentMethod
from billing.services import BillingError
from enrollments.tests.factories import FamilyFactory
from families.models import Guardian

from .helpers import card, payer, saved_card


def _race(provider, *calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            with tenant_context(provider):
                barrier.wait()
                outcomes[index] = call()
        except Exception as error:  # noqa: BLE001  (compared below)
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _race_guardian(provider, email: str) -> Guardian:
    with tenant_context(provider):
        return payer(FamilyFactory(), email=email)


def test_two_cards_saved_at_once_for_the_last_slot_give_a_clear_message(committed, race_provider):
    guardian = _race_guardian(race_provider, "cards-slot@race.test")
    with tenant_context(race_provider):
        saved_card(guardian)
        saved_card(guardian, "5555555555554444")
        cards = [card(), card("4000056655665556")]
    outcomes = _race(
        race_provider,
        *[
            lambda pm=pm: services.payment_method_save(
                guardian=guardian, stripe_payment_method_id=pm
            )
            for pm in cards
        ],
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], BillingError), outcomes
    assert "up to three" in str(refused[0])
    with tenant_context(race_provider):
        methods = list(PaymentMethod.objects.filter(guardian=guardian))
        assert sorted(m.slot for m in methods) == [1, 2, 3]
        assert sum(m.is_primary for m in methods) == 1


def test_two_first_cards_saved_at_once_make_one_primary(committed, race_provider):
    guardian = _race_guardian(race_provider, "cards-first@race.test")
    with tenant_context(race_provider):
        cards = [card(), card("5555555555554444")]
    outcomes = _race(
        race_provider,
        *[
            lambda pm=pm: services.payment_method_save(
                guardian=guardian, stripe_payment_method_id=pm
            )
            for pm in cards
        ],
    )
    assert all(isinstance(o, PaymentMethod) for o in outcomes), outcomes
    with tenant_context(race_provider):
        methods = list(PaymentMethod.objects.filter(guardian=guardian))
        assert sorted(m.slot for m in methods) == [1, 2]
        assert sum(m.is_primary for m in methods) == 1


def test_two_methods_made_primary_at_once_leave_one_primary(committed, race_provider):
    guardian = _race_guardian(race_provider, "cards-primary@race.test")
    with tenant_context(race_provider):
        saved_card(guardian)
        second = saved_card(guardian, "5555555555554444")
        third = saved_card(guardian, "4000056655665556")
    outcomes = _race(
        race_provider,
        *[
            lambda m=m: services.payment_method_update(
                method=m, actor=guardian, is_primary=True, recurring_authorized=False
            )
            for m in (second, third)
        ],
    )
    assert all(isinstance(o, PaymentMethod) for o in outcomes), outcomes
    with tenant_context(race_provider):
        primaries = PaymentMethod.objects.filter(guardian=guardian, is_primary=True)
        assert primaries.count() == 1 and primaries.get().pk in {second.pk, third.pk}
