from __future__ import annotations

import re

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from billing.models import LedgerEntry, Payment, PaymentMethod, StripeCustomer

from .conftest import SCREENSHOTS, assert_accessible, committed, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def undo_payments():
    def snapshot():
        with schema_context("aquakids"):
            return set(Payment.objects.values_list("pk", flat=True))

    before = committed(snapshot)
    yield

    def undo():
        with schema_context("aquakids"):
            new = Payment.objects.exclude(pk__in=before)
            LedgerEntry.objects.filter(payment__in=new).delete()
            new.delete()
            PaymentMethod.objects.all().delete()
            StripeCustomer.objects.all().delete()

    committed(undo)


def test_ana_pays_an_unpaid_order_by_card(portal_server, page, undo_payments):
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
    payments = page.locator("#payments")
    row = payments.locator(".order-row", has_text="Autumn term: Swim Level 2")
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
    expect(page.locator("#payments")).not_to_contain_text("Autumn term: Swim Level 2 #")
    paid_rows = page.locator("#payments .order-row", has_text="Autumn term: Swim Level 2")
    expect(paid_rows).to_contain_text("Paid")


def test_a_saved_card_chosen_hides_the_new_card_fields(portal_server, page, undo_payments):
    from billing import services
    from billing.tests.helpers import card
    from families.models import Guardian

    def save_one():
        from django_tenants.utils import tenant_context

        from providers.models import Provider

        with tenant_context(Provider.objects.get(slug="aquakids")):
            ana = Guardian.objects.get(user__email="ana@aquakids.test")
            services.payment_method_save(guardian=ana, stripe_payment_method_id=card())

    committed(save_one)
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
    row = page.locator("#payments .order-row", has_text="Autumn term: Swim Level 2")
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
