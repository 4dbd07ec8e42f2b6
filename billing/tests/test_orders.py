"""Orders made by the service: lines, discount lines, the charge and the
invoice in one transaction; discounts and promo codes by the rules; a code on
an unpaid order; the currency fixed once money exists."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from benefits import services as benefit_services
from benefits.models import Discount, DiscountUse, Voucher, VoucherRedemption
from billing import selectors, services
from billing.models import Invoice, LedgerEntry, NumberSequence, Order, OrderLine
from billing.services import BillingError
from conftest import client_for, login
from enrollments.tests.factories import ClassFactory, FamilyFactory, StudentFactory, enrol
from families.models import Guardian
from tests.htmlforms import form_data

from .helpers import new_order, payer

pytestmark = pytest.mark.django_db

D = Decimal


def tuition(description, price, enrollment=None):
    return {
        "kind": "enrollment",
        "description": description,
        "unit_price": D(price),
        "enrollment": enrollment,
    }


def siblings():
    """A family with two children, each in a class of their own."""
    mia = StudentFactory(first_name="Mia")
    leo = StudentFactory(first_name="Leo", family=mia.family)
    return mia.family, mia, leo, enrol(mia, ClassFactory()), enrol(leo, ClassFactory())


def test_an_order_its_discount_lines_the_charge_and_the_invoice_are_made_together(in_aquakids):
    family, mia, leo, mias, leos = siblings()
    Discount.objects.create(family=family, kind="sibling", description="Sibling", percent=D("10"))
    order = services.order_create(
        family=family,
        title="Autumn term",
        lines=[tuition("Swim Level 2", "180.00", mias), tuition("Swim Level 1", "150.00", leos)],
    )
    discount = order.lines.get(kind="discount")
    assert discount.description == "Sibling discount 10 % · Swim Level 1"
    assert discount.amount == D("-15.00") and discount.reduces.enrollment == leos
    entries = list(order.entries.order_by("pk").values_list("kind", "amount", "description"))
    assert entries == [
        ("charge", D("330.00"), "Autumn term"),
        ("discount", D("-15.00"), "Sibling discount 10 % · Swim Level 1"),
    ]
    assert services.order_outstanding(order) == D("315.00")
    assert selectors.order_in_family(family, order.pk).charged == D("315.00")
    invoice = Invoice.objects.get(order=order)
    assert invoice.snapshot["total"] == "315.00"
    assert [x["amount"] for x in invoice.snapshot["lines"]] == ["180.00", "150.00", "-15.00"]
    assert DiscountUse.objects.get(discount__family=family).amount == D("15.00")
    # The statement and the ledger say it too.
    (listed,) = selectors.statement_lines(family)
    assert [x.description for x in listed.discount_lines] == [discount.description]
    charges = [e.description for e in selectors.history(family, "charges")]
    assert "Sibling discount 10 % · Swim Level 1" in charges


def test_a_refused_order_leaves_nothing_behind_not_even_an_invoice_number(in_aquakids):
    family = FamilyFactory()
    new_order(family=family)  # the counter row exists
    numbers = NumberSequence.objects.get(name="invoice").last
    with pytest.raises(BillingError, match="know that code") as refusal:
        services.order_create(
            family=family,
            title="Term",
            lines=[tuition("Term", "90.00")],
            promo_code="NO-SUCH-CODE",
        )
    assert refusal.value.field == "promo_code"
    assert Order.objects.filter(family=family).count() == 1
    assert LedgerEntry.objects.filter(family=family).count() == 1
    assert NumberSequence.objects.get(name="invoice").last == numbers


def test_the_sibling_discount_reaches_the_other_childs_order(in_aquakids):
    family, mia, leo, mias, leos = siblings()
    Discount.objects.create(family=family, kind="sibling", description="S", percent=D("10"))
    first = services.order_create(
        family=family, title="Mia", student=mia, lines=[tuition("Level 2", "180", mias)]
    )
    second = services.order_create(
        family=family, title="Leo", student=leo, lines=[tuition("Level 1", "150", leos)]
    )
    assert not first.lines.filter(kind="discount").exists()  # the highest tuition pays in full
    assert second.lines.get(kind="discount").amount == D("-15.00")


def test_multi_class_discounts_reach_orders(in_aquakids):
    family, mia, leo, mias, leos = siblings()
    second_class = enrol(leo, ClassFactory())
    Discount.objects.create(
        family=family, student=leo, kind="multi_class", description="2nd", amount=D("5.00")
    )
    order = services.order_create(
        family=family,
        title="Leo",
        student=leo,
        lines=[tuition("Level 1", "150", leos), tuition("Diving", "90", second_class)],
    )
    line = order.lines.get(kind="discount")
    assert line.amount == D("-5.00") and line.reduces.description == "Diving"
    assert line.description == "Multi-class discount 5,00\xa0€ · Diving"


def test_a_promo_code_reduces_one_order_unless_its_limit_says_more(in_aquakids):
    Voucher.objects.create(
        code="TERM10",
        kind="promo",
        description="10 % off",
        discount_percent=D("10"),
        max_redemptions=50,
    )
    family = FamilyFactory()
    coded = services.order_create(
        family=family, title="Autumn", lines=[tuition("Autumn", "100")], promo_code="term10"
    )
    assert coded.promo.voucher.code == "TERM10"
    assert coded.lines.get(kind="discount").description == "Promo code TERM10 10 %"
    assert services.order_outstanding(coded) == D("90.00")
    later = services.order_create(family=family, title="Spring", lines=[tuition("Spring", "100")])
    assert services.order_outstanding(later) == D("100.00") and later.promo is None
    with pytest.raises(BillingError, match="used this code already"):
        services.order_create(
            family=family, title="Summer", lines=[tuition("Summer", "100")], promo_code="TERM10"
        )

    Voucher.objects.create(
        code="TWICE", kind="promo", description="5 off", discount_amount=D("5"), discount_uses=2
    )
    other = FamilyFactory()
    guardian = payer(other, email="twice@example.com")
    benefit_services.voucher_redeem(code="TWICE", family=other, actor=guardian)
    # Redeemed under Benefits: it reaches the next two orders with tuition, not a cap.
    cap = services.order_create(
        family=other, title="Cap", lines=[{"kind": "other", "description": "Cap", "unit_price": 8}]
    )
    owed = [
        services.order_outstanding(
            services.order_create(family=other, title=f"T{n}", lines=[tuition("T", "50")])
        )
        for n in range(3)
    ]
    assert services.order_outstanding(cap) == D("8.00")
    assert owed == [D("45.00"), D("45.00"), D("50.00")]


def test_a_gift_code_is_not_a_promo_code(in_aquakids):
    Voucher.objects.create(code="GIFT-X", kind="gift", description="Gift", credit_amount=D("20"))
    with pytest.raises(BillingError, match="not a promo code"):
        services.order_create(
            family=FamilyFactory(), title="T", lines=[tuition("T", "50")], promo_code="GIFT-X"
        )


def test_a_code_on_an_unpaid_order_one_code_per_order(in_aquakids):
    for code in ("LATE5", "SECOND"):
        Voucher.objects.create(
            code=code, kind="promo", description=code, discount_amount=D("5"), max_redemptions=9
        )
    order = new_order(amount="60.00")
    guardian = payer(order.family, email="late@example.com")
    assert services.order_promo_apply(order=order, code="late5", actor=guardian) == D("5.00")
    assert services.order_outstanding(order) == D("55.00")
    entry = order.entries.get(kind="discount")
    assert entry.amount == D("-5.00") and entry.actor_name == guardian.full_name
    assert order.lines.get(kind="discount").description == "Promo code LATE5 5,00\xa0€"
    with pytest.raises(BillingError, match="one code per order") as refusal:
        services.order_promo_apply(order=order, code="SECOND", actor=guardian)
    assert refusal.value.field == "code"
    assert not VoucherRedemption.objects.filter(voucher__code="SECOND").exists()


def test_a_code_is_refused_on_a_paid_or_cancelled_order_and_for_others(in_aquakids):
    Voucher.objects.create(code="NOPE", kind="promo", description="x", discount_percent=D("10"))
    paid = new_order(amount="30.00")
    services.payment_record_offline(
        order=paid, amount=None, method="cash", key="p", actor_user=None
    )
    guardian = payer(paid.family, email="paid@example.com")
    with pytest.raises(BillingError, match="paid"):
        services.order_promo_apply(order=paid, code="NOPE", actor=guardian)
    cancelled = new_order(family=paid.family)
    Order.objects.filter(pk=cancelled.pk).update(cancelled_at=cancelled.created_at)
    with pytest.raises(BillingError, match="cancelled"):
        services.order_promo_apply(order=cancelled, code="NOPE", actor=guardian)
    stranger = payer(FamilyFactory(), email="stranger@example.com")
    with pytest.raises(Exception, match="may not change"):
        services.order_promo_apply(order=new_order(family=paid.family), code="NOPE", actor=stranger)
    assert not Discount.objects.filter(voucher__code="NOPE").exists()


def test_parents_apply_a_code_on_their_order_page_and_never_on_anothers(aquakids, ana, ben):
    connection.set_tenant(aquakids)
    Voucher.objects.create(
        code="PAGE10", kind="promo", description="10 %", discount_percent=D("10"), max_redemptions=9
    )
    mine = Order.objects.get(family__name="Novak", title="Autumn term: Swim Level 2")
    theirs = Order.objects.get(family__name="Okafor")
    assert ana.get(f"/billing/orders/{theirs.pk}/").status_code == 404
    assert (
        ana.post(f"/billing/orders/{theirs.pk}/promo-code/", {"code": "PAGE10"}).status_code == 404
    )
    page = ana.get(f"/billing/orders/{mine.pk}/").content.decode()
    assert f'action="/billing/orders/{mine.pk}/promo-code/"' in page
    wrong = ana.post(f"/billing/orders/{mine.pk}/promo-code/", {"code": "PAGE1O"})
    html = wrong.content.decode()
    field = html.split('id="promo-title"')[1]
    assert "We do not know that code" in field and 'value="PAGE1O"' in field
    assert ana.post(f"/billing/orders/{mine.pk}/promo-code/", {"code": "page10"}).status_code == 302
    connection.set_tenant(aquakids)
    assert services.order_outstanding(mine) == D("162.00")
    page = ana.get(f"/billing/orders/{mine.pk}/").content.decode()
    assert "Promo code PAGE10 applied." in page and "Have a promo code?" not in page
    assert "Promo code PAGE10 10 %" in page
    connection.set_tenant(aquakids)
    assert services.order_outstanding(theirs) == D("150.00")


def test_the_currency_is_fixed_once_money_exists(db):
    from django_tenants.utils import tenant_context

    from providers.services import ProviderError, provider_create, provider_currency_set

    provider = provider_create(slug="money-test", name="Money Test", domains=["money.localhost"])
    assert provider_currency_set(provider=provider, currency="GBP", changed_by="op") is not None
    assert provider.settings_changes.get(field="currency").new == "GBP"
    with tenant_context(provider):
        new_order(family=FamilyFactory())
    with pytest.raises(ProviderError, match="fixed at GBP") as refusal:
        provider_currency_set(provider=provider, currency="EUR", changed_by="op")
    assert refusal.value.field == "currency"
    provider.refresh_from_db()
    assert provider.currency == "GBP"


def test_the_platform_admin_shows_the_currency_fixed_with_a_note(aquakids):
    from accounts.models import User
    from tests.htmlforms import form_data

    connection.set_schema_to_public()
    client = client_for("public")
    client.force_login(User.objects.get(email="admin@portal.test"))
    url = f"/admin/providers/provider/{aquakids.pk}/change/"
    html = client.get(url).content.decode()
    assert "The currency is fixed" in html
    assert 'name="currency"' not in html
    data = form_data(html, "provider_form")
    data["currency"] = ["USD"]
    assert client.post(url, data).status_code == 302
    aquakids.refresh_from_db()
    assert aquakids.currency == "EUR"


def test_staff_make_an_order_at_the_desk_through_the_service(aquakids):
    staff = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    connection.set_tenant(aquakids)
    Voucher.objects.create(
        code="DESK5", kind="promo", description="5 off", discount_amount=D("5"), max_redemptions=9
    )
    okafor = Order.objects.get(family__name="Okafor").family_id
    found = staff.get("/admin/billing/order/add/?q=okafor").content.decode()
    assert f'href="?family={okafor}"' in found  # the family is found first, as at the desk
    connection.set_tenant(aquakids)
    family, mia, leo, mias, leos = siblings()
    Guardian.objects.create(family=family, first_name="Ana", last_name="Test", is_primary=True)
    page = staff.get(f"/admin/billing/order/add/?family={family.pk}").content.decode()
    assert "New order for the" in page and 'id="order_form"' in page
    assert f'<option value="{leos.pk}">Leo: ' in page  # the family's enrolments only
    base = {
        "family": family.pk,
        "student": leo.pk,
        "title": "",
        "due_date": "2031-01-15",
        "apply_discounts": "on",
        "lines-TOTAL_FORMS": "3",
        "lines-INITIAL_FORMS": "0",
        "lines-0-kind": "enrollment",
        "lines-0-description": "Swim Level 1",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "150.00",
        "lines-0-enrollment": leos.pk,
        "lines-1-kind": "enrollment",
        "lines-1-quantity": "1",
        "lines-2-kind": "enrollment",
        "lines-2-quantity": "1",
    }
    refused = staff.post("/admin/billing/order/add/", {**base, "promo_code": "DESK6"})
    assert refused.status_code == 200
    html = refused.content.decode()
    field = html.split('name="promo_code"')[1].split("</fieldset>")[0]
    assert "We do not know that code" in field
    assert 'value="DESK6"' in html and 'value="Swim Level 1"' in html  # nothing typed is lost
    empty = staff.post(
        "/admin/billing/order/add/",
        {**base, "lines-0-description": "", "lines-0-unit_price": "", "lines-0-enrollment": ""},
    )
    assert "Add at least one line" in empty.content.decode()
    connection.set_tenant(aquakids)
    assert not Order.objects.filter(family=family).exists()

    made = staff.post("/admin/billing/order/add/", {**base, "promo_code": "desk5"})
    assert made.status_code == 302
    connection.set_tenant(aquakids)
    order = Order.objects.get(family=family)
    assert order.title == "Swim Level 1" and order.student == leo and order.promo is not None
    assert services.order_outstanding(order) == D("145.00")
    assert Invoice.objects.filter(order=order).exists()
    charge = order.entries.get(kind="charge")
    assert charge.actor.email == "desk@aquakids.test" and "staff" in charge.actor_name
    assert list(order.lines.values_list("kind", flat=True)) == ["enrollment", "discount"]


def test_lines_are_fixed_once_charged(aquakids):
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Okafor")
    html = staff.get(f"/admin/billing/order/{order.pk}/change/").content.decode()
    assert 'name="lines-0-unit_price"' not in html and "Record a payment" in html
    assert OrderLine.objects.filter(order=order).count() == 1


def test_staff_move_a_due_date_through_the_service_and_amounts_stay(aquakids):
    staff = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    connection.set_tenant(aquakids)
    order = Order.objects.get(family__name="Okafor")
    owed = services.order_outstanding(order)
    url = f"/admin/billing/order/{order.pk}/change/"
    data = form_data(staff.get(url).content.decode(), "order_form")
    data.update(title="Summer term (moved)", due_date="15/01/2031")
    assert staff.post(url, data).status_code == 302
    connection.set_tenant(aquakids)
    order.refresh_from_db()
    assert (order.title, order.due_date.isoformat()) == ("Summer term (moved)", "2031-01-15")
    assert services.order_outstanding(order) == owed
    with pytest.raises(services.BillingError):
        services.order_details_change(order=order, title=" ", due_date=None, actor_user=None)


def test_staff_apply_a_code_from_the_orders_page(aquakids):
    staff = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    connection.set_tenant(aquakids)
    Voucher.objects.create(
        code="STAFF3", kind="promo", description="3 off", discount_amount=D("3"), max_redemptions=9
    )
    order = Order.objects.get(family__name="Okafor")
    url = f"/admin/billing/order/{order.pk}/promo-code/"
    wrong = staff.post(url, {"code": "STAFF4"}).content.decode()
    assert "We do not know that code" in wrong.split('name="code"')[1]
    assert staff.post(url, {"code": "staff3"}).status_code == 302
    connection.set_tenant(aquakids)
    assert services.order_outstanding(order) == D("147.00")
    entry = order.entries.get(kind="discount")
    assert entry.actor.email == "desk@aquakids.test" and "(staff)" in entry.actor_name
