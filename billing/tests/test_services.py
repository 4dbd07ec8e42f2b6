"""Orders, the ledger and payments against the local Stripe stand-in over HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benefits import services as benefit_services
from billing import gateway, invariants, selectors, services
from billing.models import Invoice, LedgerEntry, Payment
from billing.services import BillingError
from enrollments.tests.factories import FamilyFactory

from .helpers import authenticate_3ds, card, new_order, payer, stuck_payment

pytestmark = pytest.mark.django_db


def owed(order):
    return services.order_outstanding(order)


def test_order_status_follows_the_ledger(in_aquakids):
    order = new_order(amount="100.00")
    status = lambda: selectors.order_in_family(order.family, order.pk).status.state  # noqa: E731
    assert status() == "unpaid"
    services.payment_record_offline(
        order=order, amount=Decimal("40"), method="offline", key="k1", actor_user=None
    )
    assert status() == "partly_paid" and owed(order) == Decimal("60.00")
    # The same form submitted twice records once.
    services.payment_record_offline(
        order=order, amount=Decimal("40"), method="offline", key="k1", actor_user=None
    )
    assert owed(order) == Decimal("60.00")
    services.payment_record_offline(
        order=order, amount=Decimal("60"), method="bank", key="k2", actor_user=None
    )
    assert status() == "paid"
    fin = selectors.financials(order.family)
    assert fin.outstanding == 0 and fin.last_payment.amount == Decimal("60.00")


def test_card_payment_succeeds_and_is_booked_once(in_aquakids):
    order = new_order(amount="45.50")
    guardian = payer(order.family, email="p1@example.com")
    payment = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="a1"
    )
    assert payment.status == "succeeded" and payment.stripe_payment_intent_id.startswith("pi_")
    assert owed(order) == 0
    # A retry of the same attempt, and a late sync, change nothing.
    again = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="a1"
    )
    assert again.pk == payment.pk
    services.payment_sync(payment=payment)
    assert LedgerEntry.objects.filter(payment=payment).count() == 1
    with pytest.raises(BillingError, match="paid"):
        services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="a2"
        )


def test_declined_card_fails_with_the_reason_and_nothing_is_booked(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="p2@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000000000000341"),
        attempt_key="d1",
    )
    assert payment.status == "failed" and "declined" in payment.failure_message
    assert owed(order) == Decimal("100.00")
    # A new attempt is allowed after a failure.
    ok = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="d2"
    )
    assert ok.status == "succeeded"


def test_3d_secure_waits_then_completes(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="p3@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="s1",
    )
    assert payment.status == "requires_action" and payment.client_secret
    assert owed(order) == Decimal("100.00")
    with pytest.raises(BillingError, match="in progress"):
        services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="s2"
        )
    authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret)
    assert services.payment_sync(payment=payment).status == "succeeded"
    assert owed(order) == 0


def test_3d_secure_failed_authentication(in_aquakids):
    order = new_order()
    guardian = payer(order.family, email="p4@example.com")
    payment = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="f1",
    )
    authenticate_3ds(payment.stripe_payment_intent_id, payment.client_secret, success=False)
    assert services.payment_sync(payment=payment).status == "failed"
    assert owed(order) == Decimal("100.00")


def _payment_in(state: str, n: int):
    """A payment brought to `state` the way it happens, and Stripe's current
    answer for it (a real PaymentIntent at the stand-in)."""
    from billing import gateway

    order = new_order()
    guardian = payer(order.family, email=f"fwd-{state}-{n}@example.com")
    if state == "processing":
        payment = stuck_payment(order, guardian)
        intent = gateway.payment_intent_create(
            params=payment.stripe_request, idempotency_key=payment.stripe_idempotency_key
        )
        return payment, intent
    number = "4242424242424242" if state == "succeeded" else "4000002500003155"
    payment = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(number), attempt_key="fwd"
    )
    intent_id = payment.stripe_payment_intent_id
    assert intent_id
    if state == "failed":
        authenticate_3ds(intent_id, payment.client_secret, success=False)
        payment = services.payment_sync(payment=payment)
    assert payment.status == state
    return payment, gateway.payment_intent_retrieve(intent_id)


STRIPE_SAYS = {
    "processing": "processing",
    "requires_action": "requires_action",
    "requires_payment_method": "failed",
    "canceled": "failed",
    "succeeded": "succeeded",
}
FORWARD = ["processing", "requires_action", "failed", "succeeded"]


@pytest.mark.parametrize("start", FORWARD)
def test_states_only_move_forward(in_aquakids, start):
    """From each state, each answer Stripe can give (as the same intent reads at
    another moment, e.g. a late or replayed event): the payment moves only
    forward, a success wins whenever it comes, and is booked once."""
    import stripe

    for n, (stripe_status, means) in enumerate(STRIPE_SAYS.items()):
        payment, intent = _payment_in(start, n)
        seen = stripe.PaymentIntent.construct_from(
            {**intent.to_dict(), "status": stripe_status}, "sk_test"
        )
        after = services.payment_apply_intent(payment_id=payment.pk, intent=seen)
        expected = means if FORWARD.index(means) > FORWARD.index(start) else start
        assert after.status == expected, (start, stripe_status)
        booked = LedgerEntry.objects.filter(payment=payment, kind="payment").count()
        assert booked == (1 if expected == "succeeded" else 0), (start, stripe_status)
        again = services.payment_apply_intent(payment_id=payment.pk, intent=seen)
        assert again.status == expected
        assert LedgerEntry.objects.filter(payment=payment, kind="payment").count() == booked
        assert services.order_outstanding(payment.order) == (0 if booked else payment.amount)


def test_permission_and_switches(in_aquakids, aquakids):
    from providers.models import Provider

    order = new_order()
    secondary = payer(order.family, email="p6@example.com", may_pay=False, primary=False)
    with pytest.raises(BillingError, match="may not pay"):
        services.payment_start(
            order=order, payer=secondary, stripe_payment_method_id=card(), attempt_key="x"
        )
    Provider.objects.filter(pk=aquakids.pk).update(online_payments=False)
    from django.db import connection

    connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
    primary = payer(order.family, email="p7@example.com", primary=False)
    with pytest.raises(BillingError, match="not available"):
        services.payment_start(
            order=order, payer=primary, stripe_payment_method_id=card(), attempt_key="y"
        )
    assert Payment.objects.filter(order=order).count() == 0


def test_refunds_card_and_offline(in_aquakids):
    order = new_order(amount="80")
    guardian = payer(order.family, email="p8@example.com")
    paid = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="r1"
    )
    # Part of a card payment back to the card, the amount owed again.
    refund = services.refund_create(
        payment=paid,
        amount=Decimal("30"),
        reason="Missed week",
        actor_user=None,
        meaning="still_owed",
    )
    assert refund.status == "succeeded" and refund.stripe_refund_id.startswith("re_")
    at_stripe = gateway.refund_retrieve(refund.stripe_refund_id)
    assert at_stripe.amount == 3000 and at_stripe.payment_intent == paid.stripe_payment_intent_id
    assert owed(order) == Decimal("30.00")
    with pytest.raises(BillingError, match="up to 50,00") as refused:
        services.refund_create(
            payment=paid, amount=Decimal("51"), reason="Too much", actor_user=None
        )
    assert refused.value.field == "amount"
    assert selectors.order_in_family(order.family, order.pk).status.state == "partly_paid"

    # Money taken at the desk, given back at the desk: no Stripe, booked at once.
    desk = new_order(amount="40")
    cash = services.payment_record_offline(
        order=desk, amount=None, method="offline", key="cash", actor_user=None
    )
    back = services.refund_create(
        payment=cash,
        amount=Decimal("15"),
        reason="Sibling left",
        actor_user=None,
        meaning="still_owed",
        method="desk",
    )
    assert back.status == "succeeded" and back.stripe_refund_id is None
    assert back.refund.method == "desk" and back.refund.amount == Decimal("15.00")
    assert owed(desk) == Decimal("15.00")
    with pytest.raises(BillingError, match="cannot go back that way"):
        services.refund_create(
            payment=cash, amount=Decimal("1"), reason="x", actor_user=None, method="card"
        )
    # The whole rest, by bank transfer, reducing the charge: nothing becomes owed.
    rest = services.refund_create(
        payment=cash,
        amount=Decimal("25"),
        reason="Course cancelled",
        meaning="credit_note",
        actor_user=None,
        method="bank",
    )
    assert rest.refund.method == "bank" and owed(desk) == Decimal("15.00")
    assert services.payment_refundable(cash) == 0
    entries = LedgerEntry.objects.filter(order=desk).order_by("pk")
    assert [(e.kind, e.amount) for e in entries][-2:] == [
        ("refund", Decimal("25.00")),
        ("credit_note", Decimal("-25.00")),
    ]


def test_apply_credit(in_aquakids):
    order = new_order(amount="50")
    guardian = payer(order.family, email="p9@example.com")
    benefit_services.credit_grant(
        family=order.family, amount=Decimal("20"), source="goodwill", description="x"
    )
    assert services.credit_apply(order=order, actor=guardian) == Decimal("20.00")
    assert owed(order) == Decimal("30.00")
    with pytest.raises(BillingError, match="Nothing to apply"):
        services.credit_apply(order=order, actor=guardian)


def test_invoice_numbers_have_no_gaps_and_are_issued_once(in_aquakids):
    orders = [new_order() for _ in range(4)]
    numbers = [services.invoice_issue(order=o).number for o in orders]
    assert numbers == list(range(numbers[0], numbers[0] + 4))
    assert services.invoice_issue(order=orders[0]).number == numbers[0]
    invoice = Invoice.objects.get(order=orders[1])
    assert invoice.snapshot["total"] == "100.00" and invoice.display_number.startswith("INV-")


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["order", "pay", "adjust", "refund"]), amounts), max_size=12
    )
)
def test_balance_is_the_sum_of_entries(in_aquakids, ops):
    """Against a model that knows every amount independently: what the family
    owes, what each order owes, the entries booked (one per movement, with
    its sign), which adjustments and refunds are allowed, and the books'
    invariants."""
    family = FamilyFactory()
    orders: list[list] = []  # [order, still owed] per order made
    payments: list[list] = []  # [payment, amount paid, refunded so far]
    booked: list[Decimal] = []  # each entry the family should have, in order
    for n, (op, amount) in enumerate(ops):
        if op == "order":
            orders.append([new_order(family=family, amount=str(amount)), amount])
            booked.append(amount)
        elif op == "pay" and orders:
            allowed = amount <= orders[-1][1]  # the desk never takes more than is owed
            try:
                payment = services.payment_record_offline(
                    order=orders[-1][0],
                    amount=amount,
                    method="cash",
                    key=f"h{n}-{family.pk}",
                    actor_user=None,
                )
            except BillingError:
                assert not allowed
            else:
                assert allowed
                orders[-1][1] -= amount
                payments.append([payment, amount, Decimal("0")])
                booked.append(-amount)
        elif op == "adjust" and orders:
            allowed = amount <= orders[-1][1]  # never below zero
            try:
                services.adjustment_create(
                    family=family,
                    amount=-amount,
                    reason="fix",
                    actor_user=None,
                    order=orders[-1][0],
                )
            except BillingError:
                assert not allowed
            else:
                assert allowed
                orders[-1][1] -= amount
                booked.append(-amount)
        elif op == "refund" and payments:
            payment, paid, refunded = payments[-1]
            allowed = amount <= paid - refunded
            try:
                services.refund_create(
                    payment=payment,
                    amount=amount,
                    reason="r",
                    actor_user=None,
                    meaning="still_owed",
                )
            except BillingError:
                assert not allowed
            else:
                assert allowed
                payments[-1][2] += amount
                next(o for o in orders if o[0].pk == payment.order_id)[1] += amount
                booked.append(amount)
        expected = sum((owed for _o, owed in orders), Decimal("0"))
        assert selectors.financials(family).outstanding == expected
        for order, owed_on_order in orders:
            assert services.order_outstanding(order) == owed_on_order
        entries = LedgerEntry.objects.filter(family=family).order_by("pk")
        assert list(entries.values_list("amount", flat=True)) == booked
    assert invariants.check_all() == []


def test_stripe_unreachable_says_so_and_charges_nothing(in_aquakids, settings):
    order = new_order()
    guardian = payer(order.family, email="down@example.com")
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    payment = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id="pm_anything", attempt_key="down"
    )
    assert payment.status == "failed" and "could not reach" in payment.failure_message
    assert owed(order) == Decimal("100.00")
    settings.STRIPE_API_BASE = __import__("os").environ["STRIPE_API_BASE"]
    retry = services.payment_start(
        order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="up"
    )
    assert retry.status == "succeeded" and owed(order) == 0
