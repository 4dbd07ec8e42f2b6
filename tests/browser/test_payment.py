from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import COPY, SCREENSHOTS, assert_accessible, in_copy, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def order_to_pay(demo_copy):
    """An unpaid order of the Novak family's own, in the copy of Aqua Kids:
    what the test pays stays there, as it would in real life."""

    def make():
        from billing.tests.helpers import new_order
        from families.models import Family

        return new_order(Family.objects.get(name="Novak"), amount="64.00", title="Swim camp").title

    return in_copy(make)


def test_ana_pays_an_unpaid_order_by_card(portal_server, page, order_to_pay):
    log_in(page, portal_server, COPY, "ana@aquakids.test")
    payments = page.locator("#payments")
    row = payments.locator(".order-row", has_text=order_to_pay)
    expect(row).to_contain_text("Unpaid")
    row.get_by_role("link", name=re.compile("Pay")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pay")
    card = page.locator("#card-element")
    card.locator('input[placeholder="number"]').fill("4000002500003155")  # asks for 3-D Secure
    card.locator('input[placeholder="exp_month"]').fill("12")
    card.locator('input[placeholder="exp_year"]').fill("31")
    card.locator('input[placeholder="cvc"]').fill("123")
    card.locator('input[placeholder="postal_code"]').fill("1000")
    page.screenshot(path=str(SCREENSHOTS / "pay-360.png"), full_page=True)
    page.get_by_role("button", name=re.compile("Pay")).click()
    # The bank's 3-D Secure step: once to check the card, once for the payment.
    for _ in range(2):
        page.get_by_role("button", name="Complete authentication").click()
    expect(page.locator("#payment-status")).to_contain_text("Paid, thank you", timeout=20_000)
    assert_accessible(page)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#payments")).not_to_contain_text(f"{order_to_pay} #")
    paid_rows = page.locator("#payments .order-row", has_text=order_to_pay)
    expect(paid_rows).to_contain_text("Paid")


@pytest.fixture
def bens_saved_card_and_order(demo_copy):
    """Ben (another family of the copy) with a card saved and an order of his own."""

    def make():
        from billing import services
        from billing.tests.helpers import card, new_order
        from families.models import Guardian

        ben = Guardian.objects.get(user__email="ben@aquakids.test")
        services.payment_method_save(guardian=ben, stripe_payment_method_id=card())
        return new_order(ben.family, amount="48.00", title="Swim bag").title

    return in_copy(make)


def test_a_saved_card_chosen_hides_the_new_card_fields(
    portal_server, page, bens_saved_card_and_order
):
    log_in(page, portal_server, COPY, "ben@aquakids.test")
    row = page.locator("#payments .order-row", has_text=bens_saved_card_and_order)
    row.get_by_role("link", name=re.compile("Pay")).click()
    expect(page.get_by_role("radio", name=re.compile("4242"))).to_be_checked()
    expect(page.locator("#new-card")).to_be_hidden()
    page.get_by_role("radio", name="A new card").check()
    expect(page.locator("#new-card")).to_be_visible()
    expect(page.get_by_label("Save this card for next time")).to_be_visible()
    page.get_by_role("radio", name=re.compile("4242")).check()
    expect(page.locator("#new-card")).to_be_hidden()
    # The saved card pays without anything typed.
    page.get_by_role("button", name=re.compile("Pay")).click()
    expect(page.locator("#payment-status")).to_contain_text("Paid, thank you", timeout=20_000)
