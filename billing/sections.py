"""Payments (top of the dashboard) and the orders summary (bottom): both
family-level, since orders belong to the family even when about one child."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.sections import Level, Section, Viewer, register

from . import gateway, selectors


def _orders(viewer: Viewer):
    return viewer.memo("orders", lambda: selectors.order_groups(viewer.family))


def payments_context(viewer: Viewer) -> dict:
    groups = _orders(viewer)
    return {
        "unpaid": groups.unpaid,
        "paid": groups.paid[:3],
        "online": viewer.provider.online_payments and gateway.configured(),
        "may_pay": viewer.guardian.may_pay,
    }


def orders_context(viewer: Viewer) -> dict:
    groups = _orders(viewer)
    return {
        "unpaid_count": len(groups.unpaid),
        "paid_count": groups.paid_count,
        "more_paid": groups.paid_count - len(groups.paid),
        "orders": groups,
    }


register(
    Section(
        key="payments",
        title=_("Payments"),
        level=Level.FAMILY,
        template="billing/sections.html#payments",
        order=20,
        context=payments_context,
        family_note=_(
            "Payments are for the whole family: they do not change when you pick a child."
        ),
        refresh_on_return=True,
    )
)
register(
    Section(
        key="orders",
        title=_("Orders"),
        level=Level.FAMILY,
        template="billing/sections.html#orders",
        order=60,
        context=orders_context,
        refresh_on_return=True,
    )
)
