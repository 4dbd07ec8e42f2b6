"""Each benefit's state transitions, and the rules that explain a refusal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from benefits import rules, selectors, services
from benefits.models import CreditGrant, CreditUse, MakeupToken, Pass, Voucher
from benefits.services import BenefitError
from enrollments import services as enrollment_services
from enrollments.models import Enrollment, Session
from enrollments.tests.factories import ClassFactory
from portal.clock import today
from providers.models import Provider

from .factories import family_with_child, sibling_class

pytestmark = pytest.mark.django_db


def next_session(klass, after=None):
    return Session.objects.filter(
        klass=klass, starts_at__gt=after or timezone.now() + timedelta(hours=3)
    ).order_by("starts_at")[0]


def state(token):
    return selectors.token_in_family(token.student.family, token.pk).state


class TestTokens:
    def test_issue_book_pending_cancel_returns_then_spent(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        other = sibling_class(home)
        token = services.token_issue(student=student, reason="goodwill", location=home.location)
        assert state(token) == rules.AVAILABLE
        session = next_session(other)
        booking = services.makeup_book(token=token, session=session, actor=guardian)
        assert booking.kind == "makeup" and booking.session == session
        assert state(token) == rules.PENDING
        services.single_booking_cancel(enrollment=booking, actor=guardian)
        assert state(token) == rules.AVAILABLE
        assert Enrollment.objects.get(pk=booking.pk).status == "cancelled"
        again = services.makeup_book(token=token, session=session, actor=guardian)
        Session.objects.filter(pk=session.pk).update(
            starts_at=timezone.now() - timedelta(hours=1), ends_at=timezone.now()
        )
        assert state(token) == rules.SPENT
        with pytest.raises(Exception, match="has started"):
            services.single_booking_cancel(enrollment=again, actor=guardian)
        kinds = [e.kind for e in MakeupToken.objects.get(pk=token.pk).events.all()]
        assert kinds == ["issued", "applied", "returned", "applied"]

    def test_expiry_is_derived_and_recorded_once(self, in_aquakids):
        _, _, student, home = family_with_child()
        token = services.token_issue(
            student=student, reason="goodwill", expires_on=today() - timedelta(days=1)
        )
        assert state(token) == rules.EXPIRED  # before the daily task
        assert services.expire_lapsed()["tokens"] >= 1
        assert services.expire_lapsed()["tokens"] == 0
        assert [e.kind for e in token.events.all()] == ["issued", "expired"]

    def test_the_rules_both_filter_and_explain(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        token = services.token_issue(
            student=student,
            reason="goodwill",
            location=home.location,
            expires_on=today() + timedelta(days=10),
        )
        elsewhere = ClassFactory(programme=home.programme, level=home.level, weekday=2)
        full = sibling_class(home, weekday=4, capacity=0)
        fine = sibling_class(home, weekday=3)
        offers = {}
        # The soonest session of each class from tomorrow on (today's may be
        # inside the booking cut-off, depending on the hour the suite runs).
        tomorrow = timezone.now() + timedelta(days=1)
        for offer in selectors.makeup_offers(token):
            if offer.session.starts_at > tomorrow:
                offers.setdefault(offer.session.klass_id, offer)
        assert offers[fine.pk].bookable
        assert any("This token is for" in r for r in offers[elsewhere.pk].reasons)
        assert any("full" in r for r in offers[full.pk].reasons)
        late = [o for o in selectors.makeup_offers(token) if o.session.klass_id == fine.pk][-1]
        assert any("expires on" in r for r in late.reasons)
        # Booking enforces the very same reasons.
        with pytest.raises(BenefitError, match="This token is for"):
            services.makeup_book(token=token, session=next_session(elsewhere), actor=guardian)
        with pytest.raises(BenefitError, match="full"):
            services.makeup_book(token=token, session=next_session(full), actor=guardian)

    def test_tokens_come_from_absences_in_time_and_cancelled_sessions(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        enrollment = Enrollment.objects.get(student=student)
        soon = Session.objects.filter(klass=home, starts_at__gt=timezone.now()).order_by(
            "starts_at"
        )
        early = [s for s in soon if s.starts_at > timezone.now() + timedelta(days=2)][0]
        absence = enrollment_services.absence_report_by_enrollment(
            enrollment=enrollment, actor=guardian, sessions=[early]
        )
        assert MakeupToken.objects.filter(student=student, source_session=early).count() == 1
        enrollment_services.absence_cancel(absence=absence, actor=guardian)
        late = soon.filter(starts_at__gt=early.starts_at)[0]
        enrollment_services.session_cancel(session=late, reason="Storm")
        assert MakeupToken.objects.get(student=student, source_session=late).reason == "cancelled"
        # Reported again: still one token for that session.
        enrollment_services.absence_report_by_enrollment(
            enrollment=enrollment, actor=guardian, sessions=[early]
        )
        assert MakeupToken.objects.filter(student=student, source_session=early).count() == 1

    def test_switched_off_tokens_cannot_be_booked(self, in_aquakids, aquakids):
        family, guardian, student, home = family_with_child()
        token = services.token_issue(student=student, reason="goodwill")
        Provider.objects.filter(pk=aquakids.pk).update(makeup_tokens_enabled=False)
        connection.set_tenant(Provider.objects.get(pk=aquakids.pk))
        with pytest.raises(BenefitError):
            services.makeup_book(
                token=token, session=next_session(sibling_class(home)), actor=guardian
            )


class TestPasses:
    def test_punch_card_book_cancel_adjust_expire(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        card = services.pass_create(family=family, kind=Pass.Kind.PUNCH, name="3 visits", punches=3)
        other = sibling_class(home)
        visit = services.pass_book(
            pass_obj=card, student=student, session=next_session(other), actor=guardian
        )
        groups = selectors.pass_groups(family, [student])
        assert groups.available[0].left == 2 and groups.available[0].used == 1
        services.single_booking_cancel(enrollment=visit, actor=guardian)
        assert selectors.pass_groups(family, [student]).available[0].left == 3
        services.pass_adjust(pass_obj=card, punches=-3, note="Sold back", actor_user=None)
        groups = selectors.pass_groups(family, [student])
        assert groups.unavailable[0].left == 0 and not groups.available
        with pytest.raises(BenefitError, match="no visits left"):
            services.pass_book(
                pass_obj=card, student=student, session=next_session(other), actor=guardian
            )
        with pytest.raises(BenefitError, match="below zero"):
            services.pass_adjust(pass_obj=card, punches=-1, note="Oops", actor_user=None)

    def test_permanent_pass_counts_visits_until_expiry(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        permanent = services.pass_create(
            family=family, kind=Pass.Kind.PERMANENT, name="Open swim", valid_days=30
        )
        other = sibling_class(home)
        services.pass_book(
            pass_obj=permanent, student=student, session=next_session(other), actor=guardian
        )
        available = selectors.pass_groups(family, [student]).available[0]
        assert available.left is None and available.used == 1
        Pass.objects.filter(pk=permanent.pk).update(expires_on=today() - timedelta(days=1))
        assert selectors.pass_groups(family, [student]).expired[0].pk == permanent.pk
        services.expire_lapsed()
        assert [e.kind for e in permanent.events.all()][-1] == "expired"


class TestCredits:
    def test_spend_earliest_expiring_first_and_show_where_it_went(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        later = services.credit_grant(
            family=family, amount=Decimal("20"), source="goodwill", description="Later"
        )
        sooner = services.credit_grant(
            family=family,
            amount=Decimal("10"),
            source="refund",
            description="Sooner",
            expires_on=today() + timedelta(days=5),
        )
        uses = services.credit_spend(
            family=family, amount=Decimal("15"), where="Term fee", reference="order-1"
        )
        assert [(u.grant_id, u.amount) for u in uses] == [(sooner.pk, 10), (later.pk, 5)]
        summary = selectors.credit_summary(family)
        assert summary.balance == Decimal("15.00") == selectors.family_credit_balance(family)
        assert {g.pk for g in summary.recently_used} == {sooner.pk, later.pk}
        # Same reference again: spent once.
        assert (
            services.credit_spend(
                family=family, amount=Decimal("15"), where="Term fee", reference="order-1"
            )
            == uses
        )
        with pytest.raises(BenefitError, match="not enough credit"):
            services.credit_spend(family=family, amount=Decimal("15.01"), where="x", reference="o2")
        services.credit_withdraw(grant=later, amount=Decimal("5"), note="Mistake", actor_user=None)
        assert selectors.family_credit_balance(family) == Decimal("10.00")

    def test_expired_credit_leaves_the_balance_and_is_recorded(self, in_aquakids):
        family, *_ = family_with_child()
        grant = services.credit_grant(
            family=family,
            amount=Decimal("7.50"),
            source="goodwill",
            description="Old",
            expires_on=today() - timedelta(days=1),
        )
        assert selectors.family_credit_balance(family) == 0
        services.expire_lapsed()
        assert CreditUse.objects.get(grant=grant).kind == "expired"
        with pytest.raises(RuntimeError):
            grant.delete()


class TestVouchers:
    def test_each_kind_and_its_limits(self, in_aquakids):
        family, guardian, student, home = family_with_child()
        gift = Voucher.objects.create(
            code="Gift-ABC", kind="gift", description="Gift", credit_amount=Decimal("25")
        )
        Voucher.objects.create(
            code="PUNCH3",
            kind="pass",
            description="3 visits",
            pass_kind="punch",
            pass_punches=3,
            max_redemptions=5,
        )
        Voucher.objects.create(
            code="PROMO",
            kind="promo",
            description="10 % off",
            discount_percent=Decimal("10"),
            valid_until=today() - timedelta(days=1),
        )
        assert "25" in services.voucher_redeem(code=" gift-abc ", family=family, actor=guardian)
        assert selectors.family_credit_balance(family) == Decimal("25.00")
        with pytest.raises(BenefitError, match="used this code already"):
            services.voucher_redeem(code="GIFT-ABC", family=family, actor=guardian)
        other_family, other_guardian, *_ = family_with_child()
        with pytest.raises(BenefitError, match="used up"):
            services.voucher_redeem(code="GIFT-ABC", family=other_family, actor=other_guardian)
        services.voucher_redeem(code="punch3", family=family, actor=guardian, student=student)
        assert selectors.pass_groups(family, [student]).available[0].left == 3
        with pytest.raises(BenefitError, match="expired"):
            services.voucher_redeem(code="PROMO", family=family, actor=guardian)
        with pytest.raises(BenefitError, match="do not know"):
            services.voucher_redeem(code="NOPE", family=family, actor=guardian)
        assert gift.redemptions.count() == 1


def test_credit_grants_are_append_only(in_aquakids):
    family, *_ = family_with_child()
    grant = services.credit_grant(
        family=family, amount=Decimal("1"), source="goodwill", description="x"
    )
    grant.amount = Decimal("100")
    with pytest.raises(RuntimeError):
        grant.save()
    assert CreditGrant.objects.get(pk=grant.pk).amount == Decimal("1.00")


def test_a_guardian_books_only_with_their_own_family_s_tokens_and_passes(in_aquakids):
    """The services check the family themselves, whoever calls them."""
    family, guardian, student, home = family_with_child()
    _, stranger, strangers_child, _ = family_with_child()
    other = sibling_class(home)
    token = services.token_issue(student=student, reason=MakeupToken.Reason.GOODWILL, note="Test")
    with pytest.raises(BenefitError, match="belongs to another family"):
        services.makeup_book(token=token, session=next_session(other), actor=stranger)
    card = services.pass_create(family=family, kind=Pass.Kind.PUNCH, name="Ten", punches=10)
    with pytest.raises(BenefitError, match="belongs to another family"):
        services.pass_book(
            pass_obj=card, student=strangers_child, session=next_session(other), actor=stranger
        )
    with pytest.raises(BenefitError, match="belongs to another family"):
        services.pass_book(
            pass_obj=card, student=strangers_child, session=next_session(other), actor=guardian
        )
    assert not Enrollment.objects.filter(
        student__in=[student, strangers_child], session__isnull=False
    ).exists()
