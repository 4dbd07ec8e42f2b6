"""The make-up policy parents see is the provider's text plus sentences from
its actual rules, frozen in numbered versions: a settings change that changes
either publishes the next version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from benefits import services as benefit_services
from benefits.models import MakeupToken
from benefits.services import BenefitError
from conftest import client_for, login
from enrollments.models import Location, Session
from families.models import Guardian, Student
from portal import clock, formatting
from portal.tenancy import use_public_schema
from providers.models import PolicyVersion, Provider
from providers.services import policy_current, provider_settings_update
from tests.htmlforms import form_data

pytestmark = pytest.mark.django_db


def fresh(provider) -> Provider:
    use_public_schema()
    return Provider.objects.get(pk=provider.pk)


def test_the_demo_policy_states_where_a_token_works_as_booking_enforces_it(aquakids):
    policy = policy_current(provider=fresh(aquakids))
    assert policy is not None and policy.number >= 1
    assert "any of our pools" not in policy.text
    assert "only at the location of that session" in policy.text
    assert "valid for 60 days from the session missed" in policy.text
    assert "at least 24 hours before the session earns a make-up token" in policy.text
    assert "Booking closes 2 hours before the session starts." in policy.text
    # ... as booking does: a Tivoli token is refused at Kodeljevo.
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", last_name="Novak")
    token = MakeupToken.objects.get(student=mia, reason="absence")
    elsewhere = (
        Session.objects.filter(klass__location__name="Kodeljevo Pool", starts_at__gt=clock.now())
        .exclude(status=Session.Status.CANCELLED)
        .first()
    )
    ana = Guardian.objects.get(user__email="ana@aquakids.test")
    with pytest.raises(BenefitError, match="This token is for Tivoli Pool"):
        benefit_services.makeup_book(token=token, session=elsewhere, actor=ana)


def test_request_mode_states_its_own_rules(leaps):
    policy = policy_current(provider=fresh(leaps))
    assert policy.own_text.startswith("Ask for a make-up in the portal")
    assert "the office confirms each request" in policy.rules_text
    assert "token" not in policy.rules_text


def test_a_changed_rule_publishes_a_new_version_and_the_old_one_stays(aquakids):
    provider = fresh(aquakids)
    before = policy_current(provider=provider)
    provider_settings_update(
        provider=provider, changes={"support_phone": "+386 1 555 0199"}, changed_by="a@b.test"
    )
    assert policy_current(provider=provider).number == before.number  # not a rule
    provider_settings_update(
        provider=provider, changes={"makeup_token_days": 30}, changed_by="owner@aquakids.test"
    )
    after = policy_current(provider=provider)
    assert after.number == before.number + 1
    assert "valid for 30 days" in after.text and after.published_by == "owner@aquakids.test"
    assert "valid for 60 days" in PolicyVersion.objects.get(pk=before.pk).text  # frozen
    provider_settings_update(
        provider=provider, changes={"makeup_policy": "Have fun."}, changed_by="a@b.test"
    )
    latest = policy_current(provider=provider)
    assert latest.number == before.number + 2
    assert latest.text.startswith("Have fun.\n\n") and "valid for 30 days" in latest.text


def test_published_versions_refuse_update_and_delete(aquakids):
    fresh(aquakids)
    for sql in (
        "UPDATE providers_policyversion SET own_text = 'rewritten'",
        "DELETE FROM providers_policyversion",
    ):
        with pytest.raises(DatabaseError, match="Cannot"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)


def test_parent_pages_show_the_published_version(aquakids, ana):
    provider = fresh(aquakids)
    provider_settings_update(
        provider=provider, changes={"makeup_booking_window_hours": 5}, changed_by="a@b.test"
    )
    number = policy_current(provider=provider).number
    for url in ("/benefits/makeups/", "/policies/"):
        html = ana.get(url).content.decode()
        assert "Booking closes 5 hours before the session starts." in html, url
        assert f"Version {number}, in effect since" in html, url
        assert "any of our pools" not in html, url


# --- Tokens that need attention on the dashboard --------------------------------------------


def test_a_token_no_session_can_take_is_flagged_with_what_to_do(aquakids, ana):
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", last_name="Novak")
    nowhere = Location.objects.create(name="Closed Pool", address="Nowhere 1")
    benefit_services.token_issue(
        student=mia,
        reason="goodwill",
        location=nowhere,
        expires_on=clock.today() + timedelta(days=30),
    )
    html = ana.get("/sections/benefits/").content.decode()
    assert "No suitable session at Closed Pool has a free place before the token expires" in html
    assert "Ask the office to book it at another location." in html


def test_a_token_expiring_within_a_week_is_flagged(aquakids, ana):
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", last_name="Novak")
    expires = clock.today() + timedelta(days=6)
    benefit_services.token_issue(student=mia, reason="goodwill", location=None, expires_on=expires)
    later = benefit_services.token_issue(
        student=mia, reason="goodwill", location=None, expires_on=expires + timedelta(days=30)
    )
    html = ana.get("/").content.decode()
    assert f"Expires soon: book a make-up by {formatting.day(expires, 'long')}." in html
    row = html.split(f"/benefits/makeups/{later.pk}/book/")[0].rsplit("<li", 1)[1]
    assert "Needs attention" not in row


def test_staff_saving_a_rule_on_the_settings_page_publish_the_next_version(aquakids, ana):
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    before = policy_current(provider=fresh(aquakids)).number
    page = staff.get("/staff/settings/").content.decode()
    assert "Make-up policy parents see" in page and f"Version {before}," in page
    data = form_data(page, "settings-form")
    data["makeup_notice_hours"] = "48"
    assert staff.post("/staff/settings/", data).status_code == 302
    after = policy_current(provider=fresh(aquakids))
    assert after.number == before + 1 and after.published_by == "staff@aquakids.test"
    assert "at least 48 hours before the session earns a make-up token" in after.text
    assert f"Version {before + 1}," in ana.get("/policies/").content.decode()


def test_the_platform_admin_changing_a_rule_publishes_the_next_version(aquakids):
    use_public_schema()
    from accounts.models import User

    operator = client_for("public")
    operator.force_login(User.objects.get(email="admin@portal.test"))
    before = policy_current(provider=fresh(aquakids)).number
    url = f"/admin/providers/provider/{aquakids.pk}/change/"
    data = form_data(operator.get(url).content.decode(), "provider_form")
    assert operator.post(url, {**data, "makeup_policy": "New words."}).status_code == 302
    after = policy_current(provider=fresh(aquakids))
    assert after.number == before + 1 and after.text.startswith("New words.\n\n")
    assert after.published_by == "admin@portal.test"
    again = form_data(operator.get(url).content.decode(), "provider_form")
    assert operator.post(url, again).status_code == 302  # nothing changed this time...
    assert policy_current(provider=fresh(aquakids)).number == before + 1  # ...no new version
