from __future__ import annotations

import re

import pytest
from django.core import mail
from django_tenants.utils import schema_context

from accounts.models import User
from families.models import ContactEmail, Guardian

from .conftest import SCREENSHOTS, assert_accessible, committed, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture
def cleanup_grace():
    yield

    def remove():
        with schema_context("aquakids"):
            Guardian.objects.filter(first_name="Grace", family__name="Novak").delete()
            User.objects.filter(email="grace@example.com").delete()
            ContactEmail.objects.filter(email="grace@example.com").delete()

    committed(remove)


def test_ana_invites_a_guardian_who_accepts_in_another_browser(
    portal_server, browser, page, cleanup_grace
):
    log_in(page, portal_server, "aquakids", "ana@aquakids.test")
    page.locator(".account-menu summary").click()
    page.get_by_role("link", name="My account").click()
    assert page.get_by_role("heading", level=1).inner_text() == "My account"
    assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "account-360.png"), full_page=True)

    page.get_by_role("link", name="Add guardian").click()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Novak")
    page.get_by_role("button", name="Add guardian").click()
    # The checkbox is on by default: an e-mail is needed, and what was typed stays.
    assert "Enter an e-mail address" in page.locator(".field-errors").inner_text()
    assert page.get_by_label("First name").input_value() == "Grace"
    assert_accessible(page)
    page.get_by_label("E-mail address").fill("grace@example.com")
    page.get_by_role("button", name="Add guardian").click()
    page.wait_for_url(re.compile(r"/account/$"))
    assert "Grace Novak is added and invited" in page.locator(".messages").inner_text()
    row = page.locator(".guardian-row", has_text="Grace Novak")
    assert "Invite sent" in row.inner_text()

    link = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    other = browser.new_context(viewport={"width": 360, "height": 780})
    try:
        grace = other.new_page()
        grace.goto(link)
        assert grace.get_by_role("heading", level=1).inner_text() == "Welcome, Grace"
        assert_accessible(grace)
        grace.get_by_label("Choose a password").fill("pool-time-2026")
        grace.get_by_label("Type it again").fill("pool-time-2026")
        grace.get_by_role("button", name="Set password and log in").click()
        grace.wait_for_url(portal_server.url("aquakids", "/"))
        assert grace.get_by_role("heading", level=1).inner_text() == "The Novak family"
        # The link is spent.
        grace.goto(link)
        assert "used already" in grace.get_by_role("heading", level=1).inner_text()
    finally:
        other.close()

    page.reload()
    assert "Can log in" in page.locator(".guardian-row", has_text="Grace Novak").inner_text()
