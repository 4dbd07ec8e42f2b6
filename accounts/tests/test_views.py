from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import connection

from accounts.models import User
from conftest import client_for

pytestmark = pytest.mark.django_db

DEMO = "portal-demo"


def post_login(client, email, password):
    return client.post("/accounts/login/", {"username": email, "password": password})


def test_parent_logs_in_and_lands_on_the_family_dashboard(aquakids):
    client = client_for("aquakids")
    response = post_login(client, "ANA@aquakids.test", DEMO)
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/").content.decode()
    assert "The Novak family" in page
    assert "Mia" in page and "Leo" in page
    assert "Noah" not in page


def test_wrong_password_says_so_next_to_the_form_and_keeps_the_email(aquakids):
    response = post_login(client_for("aquakids"), "ana@aquakids.test", "wrong")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html and "do not match" in html
    assert 'value="ana@aquakids.test"' in html


def test_repeated_bad_passwords_lock_the_address_even_for_the_right_one(aquakids, settings):
    client = client_for("aquakids")
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        assert "do not match" in post_login(client, "ana@aquakids.test", "nope").content.decode()
    locked = post_login(client, "ana@aquakids.test", DEMO)
    assert locked.status_code == 200
    assert "Too many failed attempts" in locked.content.decode()
    # Another parent is not locked out by Ana's attempts.
    assert post_login(client_for("aquakids"), "ben@aquakids.test", DEMO).status_code == 302


def test_throttling_is_per_provider(aquakids, leaps, settings):
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        post_login(client_for("leaps"), "ana@aquakids.test", "nope")
    assert post_login(client_for("aquakids"), "ana@aquakids.test", DEMO).status_code == 302


def test_password_reset_round_trip(aquakids, django_capture_on_commit_callbacks):
    client = client_for("aquakids")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password/reset/", {"email": "ana@aquakids.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ana@aquakids.test"]
    assert "Aqua Kids Swim School" in message.subject
    assert message.reply_to == ["hello@aquakids.test"]
    link = re.search(r"http://aquakids\.localhost(/accounts/password/reset/\S+/)", message.body)
    assert link, message.body

    form = client.get(link.group(1), follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-new-long-password", "new_password2": "a-new-long-password"},
    )
    assert done.status_code == 302
    # Logged in straight away, and the new password works from now on.
    assert client.get("/").status_code == 200
    assert (
        post_login(client_for("aquakids"), "ana@aquakids.test", "a-new-long-password").status_code
        == 302
    )
    # The link works once.
    again = client_for("aquakids").get(link.group(1), follow=True)
    assert b"This link no longer works" in again.content


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(
    aquakids, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("aquakids").post(
            "/accounts/password/reset/", {"email": "cara@leaps.test"}, follow=True
        )
    assert b"Check your e-mail" in response.content
    assert mail.outbox == []


def test_change_password(aquakids, ana):
    response = ana.post(
        "/accounts/password/change/",
        {"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
    )
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert "Your old password was entered incorrectly" in html
    response = ana.post(
        "/accounts/password/change/",
        {
            "old_password": DEMO,
            "new_password1": "brand-new-password-1",
            "new_password2": "brand-new-password-1",
        },
    )
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    assert User.objects.get(email="ana@aquakids.test").check_password("brand-new-password-1")


def test_logout_needs_post_and_ends_the_session(ana):
    assert ana.get("/").status_code == 200
    ana.post("/accounts/logout/")
    assert ana.get("/").status_code == 302


def test_a_cache_outage_does_not_lock_parents_out(aquakids, settings):
    dead = "redis://127.0.0.1:9/0"  # nothing listens there
    settings.CACHES = {alias: {**conf, "LOCATION": dead} for alias, conf in settings.CACHES.items()}
    assert (
        "do not match"
        in post_login(client_for("aquakids"), "ana@aquakids.test", "x").content.decode()
    )
    client = client_for("aquakids")
    assert post_login(client, "ana@aquakids.test", DEMO).status_code == 302
    # Sessions and host lookups fall back to PostgreSQL: pages still render.
    page = client.get("/")
    assert page.status_code == 200 and b"Upcoming sessions" in page.content
