"""Money and access holes found in review, each pinned by a test."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing import services
from billing.services import BillingError
from billing.tests.helpers import card, new_order, payer
from billing.views import handoff_token
from conftest import client_for
from providers.models import Provider

pytestmark = pytest.mark.django_db


def test_a_pay_link_of_one_provider_means_nothing_at_another(aquakids, leaps):
    from accounts.models import User
    from billing.models import Order

    connection.set_tenant(aquakids)
    ana = User.objects.get(email="ana@aquakids.test")
    token = handoff_token(ana, Order.objects.filter(family__name="Novak").first())
    assert client_for("leaps").get(f"/billing/continue/{token}/").status_code == 404
    # At home it asks first (a link someone sent must not log a stranger in).
    home = client_for("aquakids")
    asked = home.get(f"/billing/continue/{token}/")
    assert asked.status_code == 200 and b"Continue as" in asked.content
    assert home.get("/").status_code == 302  # not logged in by the GET
    assert home.post(f"/billing/continue/{token}/").status_code == 302
    assert home.get("/").status_code == 403  # logged in for this payment only
    assert client_for("aquakids").post(f"/billing/continue/{token}/").status_code == 404  # used


def test_an_attempt_key_of_another_order_finds_nothing(in_aquakids):
    first = new_order()
    guardian = payer(first.family, email="k1@example.com")
    paid = services.payment_start(
        order=first, payer=guardian, stripe_payment_method_id=card(), attempt_key="same"
    )
    other = new_order(family=first.family)
    again = services.payment_start(
        order=other, payer=guardian, stripe_payment_method_id=card(), attempt_key="same"
    )
    assert again.pk != paid.pk and again.order_id == other.pk


def test_no_credit_while_a_card_payment_is_in_progress_and_no_paying_cancelled_orders(in_aquakids):
    from benefits import services as benefits

    order = new_order()
    guardian = payer(order.family, email="k2@example.com")
    benefits.credit_grant(
        family=order.family, amount=Decimal("500"), source="goodwill", description="x"
    )
    pending = services.payment_start(
        order=order,
        payer=guardian,
        stripe_payment_method_id=card("4000002500003155"),
        attempt_key="3ds",
    )
    assert pending.status == "requires_action"
    with pytest.raises(BillingError, match="in progress"):
        services.credit_apply(order=order, actor=guardian)
    cancelled = new_order(family=order.family)
    cancelled.cancelled_at = timezone.now()
    cancelled.save()
    with pytest.raises(BillingError, match="cancelled"):
        services.credit_apply(order=cancelled, actor=guardian)
    with pytest.raises(BillingError, match="cancelled"):
        services.payment_start(
            order=cancelled, payer=guardian, stripe_payment_method_id=card(), attempt_key="c"
        )


def test_a_makeup_only_in_the_childs_own_programme_and_running_classes(in_aquakids):
    from benefits import services as benefits
    from benefits.services import BenefitError
    from benefits.tests.factories import family_with_child, sibling_class
    from enrollments.models import Session
    from enrollments.tests.factories import ClassFactory

    family, guardian, student, home = family_with_child()
    token = benefits.token_issue(student=student, reason="goodwill")
    elsewhere = ClassFactory(weekday=4)  # another programme, no level
    session = Session.objects.filter(klass=elsewhere, starts_at__gt=timezone.now()).first()
    with pytest.raises(BenefitError, match="own programme"):
        benefits.makeup_book(token=token, session=session, actor=guardian)
    stopped = sibling_class(home, is_active=False)
    session = Session.objects.filter(klass=stopped, starts_at__gt=timezone.now()).first()
    with pytest.raises(BenefitError, match="not running"):
        benefits.makeup_book(token=token, session=session, actor=guardian)


def test_report_a_problem_does_not_redirect_off_site(ana):
    response = ana.post(
        "/report-a-problem/", {"page": "/\\evil.example", "clicked": "x", "expected": "y"}
    )
    assert response["Location"] == "/"


def test_a_second_setup_run_changes_nothing(db):
    from providers.services import provider_setup

    provider = Provider.objects.get(slug="leaps")
    assert provider_setup(provider_id=provider.pk).status == "ready"
