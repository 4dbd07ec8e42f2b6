"""One spelling of a login e-mail address (accounts.emails.normalise: NFKC and
case folding), the same for login, its throttle, password reset and
invitations: `ſ` (long s) is `s`, so `ana@aquakidſ.test` is Ana's address
and shares her throttle; dotless `ı` is another letter, so
`ana@aquakıds.test` is another address and logs in as nobody."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection

from accounts.emails import normalise
from accounts.models import User
from conftest import client_for

pytestmark = pytest.mark.django_db

DEMO = "portal-demo"
LONG_S = "ana@aquakid\u017f.test"  # ſ: NFKC and casefold both make it "s"
DOTLESS_I = "ana@aquak\u0131ds.test"  # ı: PostgreSQL's UPPER() makes it "I"


def post_login(client, email, password):
    return client.post("/accounts/login/", {"username": email, "password": password})


def test_normalise_is_nfkc_and_casefold_and_stable():
    assert normalise("  Ana@AquaKid\u017f.Test ") == "ana@aquakids.test"
    assert normalise("\u212aate@example.com") == "kate@example.com"  # Kelvin sign
    assert normalise("STRA\u00dfE@example.com") == "strasse@example.com"
    assert normalise(DOTLESS_I) == DOTLESS_I != "ana@aquakids.test"
    for text in ["ana@aquakid\u017f.test", "\u0130lker@example.com", "\u0345x@example.com"]:
        assert normalise(normalise(text)) == normalise(text)


def test_a_long_s_spelling_shares_the_throttle_and_cannot_log_in_during_the_lockout(
    aquakids, settings
):
    client = client_for("aquakids")
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        assert "do not match" in post_login(client, "ana@aquakids.test", "nope").content.decode()
    variant = post_login(client_for("aquakids"), LONG_S, DEMO)
    assert variant.status_code == 200
    assert "Too many failed attempts. Try again in 15 minutes" in variant.content.decode()


def test_failures_under_every_spelling_count_towards_one_budget(aquakids, settings):
    spellings = [LONG_S, "ANA@AQUAKIDS.TEST", "ana@aquakids.test", "Ana@AquaKid\u017f.Test"]
    for n in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        post_login(client_for("aquakids"), spellings[n % len(spellings)], "nope")
    locked = post_login(client_for("aquakids"), "ana@aquakids.test", DEMO)
    assert "Too many failed attempts" in locked.content.decode()


def test_a_long_s_spelling_logs_in_to_the_same_account_when_not_locked(aquakids):
    client = client_for("aquakids")
    assert post_login(client, LONG_S, DEMO).status_code == 302
    connection.set_tenant(aquakids)
    ana = User.objects.get(email="ana@aquakids.test")
    assert client.session["_auth_user_id"] == str(ana.pk)


def test_a_dotless_i_is_another_address_and_logs_in_as_nobody(aquakids, settings):
    response = post_login(client_for("aquakids"), DOTLESS_I, DEMO)
    assert response.status_code == 200 and "do not match" in response.content.decode()
    # Nor does guessing under it use up Ana's budget.
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        post_login(client_for("aquakids"), DOTLESS_I, "nope")
    assert post_login(client_for("aquakids"), "ana@aquakids.test", DEMO).status_code == 302


def test_logins_are_stored_normalised(aquakids):
    connection.set_tenant(aquakids)
    user = User.objects.create_user("Nina@AquaKid\u017f.Test", "a-long-password-1")
    assert user.email == "nina@aquakids.test"
    assert User.objects.get_by_natural_key("NINA@aquakid\u017f.test") == user
    with pytest.raises(User.DoesNotExist):
        User.objects.get_by_natural_key("nina@aquak\u0131ds.test")


def test_password_reset_under_a_long_s_spelling_goes_to_the_stored_address_and_shares_its_limit(
    aquakids, django_capture_on_commit_callbacks
):
    client = client_for("aquakids")
    spellings = [LONG_S, "ANA@aquakids.test", "ana@aquakid\u017f.test"]
    for email in spellings:
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post("/accounts/password/reset/", {"email": email}).status_code == 302
    assert [m.to for m in mail.outbox] == [["ana@aquakids.test"]] * 3
    refused = client_for("aquakids").post(
        "/accounts/password/reset/", {"email": "ana@aquakids.test"}
    )
    assert refused.status_code == 200
    assert "Too many tries. Try again in 60 minutes." in refused.content.decode()
    assert len(mail.outbox) == 3


def test_password_reset_under_a_dotless_i_spelling_sends_nothing(
    aquakids, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("aquakids").post(
            "/accounts/password/reset/", {"email": DOTLESS_I}, follow=True
        )
    assert b"Check your e-mail" in response.content
    assert mail.outbox == []


def test_the_migration_normalises_stored_addresses_and_never_merges_two_logins(aquakids):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0003_login_emails_normalised")
    connection.set_tenant(aquakids)
    odd = User.objects.create_user("kim@example.com", "a-long-password-1")
    twin = User.objects.create_user("twin@example.com", "a-long-password-1")
    # As stored before addresses were normalised (lower-cased only).
    User.objects.filter(pk=odd.pk).update(email="\u212aim@example.com")  # Kelvin sign
    clash = User.objects.create_user("clash@example.com", "a-long-password-1")
    User.objects.filter(pk=clash.pk).update(email="twin@example.co\u217f")  # ⅿ: NFKC "m"
    migration.normalise_emails(apps, None)
    odd.refresh_from_db()
    clash.refresh_from_db()
    assert odd.email == "kim@example.com"
    assert clash.email == "twin@example.co\u217f"  # left for staff: twin has the address
    assert User.objects.get_by_natural_key("TWIN@example.com") == twin


def test_password_reset_e_mails_are_limited_per_client_address(aquakids):
    from portal import limits

    client = client_for("aquakids")
    for n in range(limits.RESET_ADDRESS.allowed):
        response = client.post("/accounts/password/reset/", {"email": f"p{n}@example.com"})
        assert response.status_code == 302
    refused = client.post("/accounts/password/reset/", {"email": "ana@aquakids.test"})
    html = refused.content.decode()
    assert "Too many tries. Try again in 60 minutes." in html
    assert 'id="id_email_error"' in html and 'value="ana@aquakids.test"' in html
