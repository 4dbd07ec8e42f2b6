"""The development outbox shows live password-reset links: only the
provider's own staff may open it."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail import EmailMessage

from conftest import client_for, login
from portal.tenancy import use_provider

RESET = "http://aquakids.localhost/accounts/reset/MQ/secret-token-123/"


@pytest.fixture
def sent(aquakids, settings, tmp_path):
    settings.DEBUG = True
    settings.EMAIL_FOLDER = tmp_path
    settings.EMAIL_BACKEND = "portal.mail.FolderBackend"
    use_provider(aquakids)
    EmailMessage("Reset your password", f"Open {RESET}", to=["staff@aquakids.test"]).send()
    assert not mail.outbox
    return RESET


def test_staff_of_the_provider_see_the_outbox(sent, aquakids):
    staff = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    response = staff.get("/dev/outbox/")
    assert response.status_code == 200
    assert sent in response.content.decode()


def test_a_parent_cannot_see_reset_links(sent, ana):
    response = ana.get("/dev/outbox/")
    assert response.status_code == 404
    assert sent not in response.content.decode()


def test_a_visitor_is_sent_to_the_login_page(sent, aquakids_client):
    response = aquakids_client.get("/dev/outbox/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert sent not in response.content.decode()


def test_staff_of_another_provider_cannot_see_it(sent, leaps):
    staff = login(client_for("leaps"), leaps, "staff@leaps.test")
    response = staff.get("/dev/outbox/")
    assert sent not in response.content.decode()


def test_with_debug_off_the_page_does_not_exist(sent, aquakids, settings):
    settings.DEBUG = False
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    assert staff.get("/dev/outbox/").status_code == 404
