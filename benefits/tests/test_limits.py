"""Codes a family tries are limited (portal.limits.VOUCHER): guessing is
refused with when to try again, next to the field, on the Benefits page and
on an order's promo code alike."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from benefits import services
from benefits.models import Voucher
from billing import services as billing_services
from billing.services import BillingError
from conftest import client_for, login
from families.models import Guardian
from portal import limits

pytestmark = pytest.mark.django_db


def test_guessing_codes_is_refused_past_the_limit_even_for_a_real_code(aquakids, ana):
    for n in range(limits.VOUCHER.allowed):
        page = ana.post("/benefits/redeem/", {"code": f"GUESS{n}"}).content.decode()
        assert "We do not know that code" in page
    refused = ana.post("/benefits/redeem/", {"code": "GIFT25"})
    html = refused.content.decode()
    assert "Too many tries. Try again in 15 minutes." in html
    assert 'id="id_code_error"' in html and 'value="GIFT25"' in html  # next to the field
    connection.set_tenant(aquakids)
    assert Voucher.objects.get(code="GIFT25").redemptions.count() == 0
    # Another family is not held back by the Novaks' guesses.
    ben = login(client_for("aquakids"), aquakids, "ben@aquakids.test")
    assert ben.post("/benefits/redeem/", {"code": "GIFT25"}).status_code == 302


def test_promo_codes_on_orders_share_the_familys_limit(in_aquakids):
    ana = Guardian.objects.select_related("family").get(user__email="ana@aquakids.test")
    Voucher.objects.create(
        code="TERM10", kind="promo", description="10 % off", discount_percent=Decimal("10")
    )
    for n in range(limits.VOUCHER.allowed):
        with pytest.raises(services.BenefitError, match="We do not know that code"):
            services.voucher_redeem(code=f"GUESS{n}", family=ana.family, actor=ana)
    with pytest.raises(BillingError, match="Too many tries. Try again in 15 minutes.") as refused:
        billing_services.order_create(
            family=ana.family,
            title="Autumn",
            lines=[{"kind": "other", "description": "Cap", "unit_price": Decimal("8")}],
            promo_code="TERM10",
        )
    assert refused.value.field == "promo_code"
