"""Invitations cannot be used to learn which addresses have a login, to send
the provider's e-mail with a parent's own text, or to send many: the same
answer for every address, the provider's fixed text with the inviter's name
as data in the body, names that could pass for links refused, and a daily
limit per family (portal.limits.INVITATION)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import connection

from families import services
from families.models import Guardian, Invitation
from portal import limits

pytestmark = pytest.mark.django_db

SUBJECT = "Your invitation to the family portal of Aqua Kids Swim School"


def new_guardian(aquakids, first):
    connection.set_tenant(aquakids)
    ana = Guardian.objects.select_related("family").get(user__email="ana@aquakids.test")
    return services.guardian_add(family=ana.family, actor=ana, first_name=first, last_name="Lee")


def invite(client, guardian, email, capture):
    with capture(execute=True):
        return client.post(
            f"/account/guardians/{guardian.pk}/invite/", {"email": email}, follow=True
        )


def flash(response) -> str:
    found = re.search(
        r"Invitation sent to \S+ The link works for 7 days\.", response.content.decode()
    )
    return found.group(0) if found else ""


@pytest.mark.parametrize(
    "email,has_login",
    [
        ("grace@example.com", False),
        ("ben@aquakids.test", True),  # another family's parent
        ("staff@aquakids.test", True),  # the provider's staff
        ("BEN@aquakid\u017f.test", True),  # another spelling of a parent's address
        ("ben@aquak\u0131ds.test", False),  # dotless ı: another address, no login
    ],
)
def test_the_same_answer_whether_or_not_the_address_has_a_login(
    aquakids, ana, django_capture_on_commit_callbacks, email, has_login
):
    target = new_guardian(aquakids, "Grace")
    response = invite(ana, target, email, django_capture_on_commit_callbacks)
    html = response.content.decode()
    assert response.redirect_chain[-1][0].endswith("/account/")
    assert flash(response).startswith("Invitation sent to ")
    assert "already has a login" not in html and "Use another address" not in html
    assert re.search(r"Grace Lee.*?Invite sent", html, re.S)
    [sent] = mail.outbox
    assert sent.subject == SUBJECT and "Invited by: Ana Novak" in sent.body
    if has_login:
        assert "has a login there already" in sent.body and "/invitations/" not in sent.body
        assert "/accounts/login/" in sent.body
    else:
        assert "/invitations/" in sent.body and "has a login" not in sent.body


@pytest.mark.parametrize(
    "first,last",
    [
        ("Visit https://prizes.example", "Now"),
        ("Refund at", "www.evil.example"),
        ("Pay", "refunds-desk.com"),
        ("A" * 45, "B" * 40),
    ],
    ids=["link-in-name", "www-in-name", "host-in-name", "name-over-80"],
)
def test_an_inviter_name_that_could_pass_for_a_link_or_a_message_is_refused(
    aquakids, ana, django_capture_on_commit_callbacks, first, last
):
    target = new_guardian(aquakids, "Grace")
    Guardian.objects.filter(user__email="ana@aquakids.test").update(
        first_name=first, last_name=last
    )
    response = invite(ana, target, "grace@example.com", django_capture_on_commit_callbacks)
    html = response.content.decode()
    assert "cannot go into an invitation" in html and "Correct your name" in html
    assert 'value="grace@example.com"' in html
    assert mail.outbox == []
    connection.set_tenant(aquakids)
    assert not Invitation.objects.filter(guardian=target).exists()


def test_a_family_sends_a_limited_number_of_invitations_a_day(
    aquakids, ana, django_capture_on_commit_callbacks
):
    target = new_guardian(aquakids, "Grace")
    for n in range(limits.INVITATION.allowed):
        assert flash(invite(ana, target, f"g{n}@example.com", django_capture_on_commit_callbacks))
    refused = invite(ana, target, "last@example.com", django_capture_on_commit_callbacks)
    html = refused.content.decode()
    assert "Too many tries. Try again in 24 hours." in html
    assert 'id="id_email_error"' in html and 'value="last@example.com"' in html
    assert len(mail.outbox) == limits.INVITATION.allowed
    assert "last@example.com" not in [m.to[0] for m in mail.outbox]


def test_staff_sending_from_the_admin_is_not_held_by_the_familys_limit(
    aquakids, django_capture_on_commit_callbacks
):
    target = new_guardian(aquakids, "Grace")
    for _ in range(limits.INVITATION.allowed):
        limits.take(limits.INVITATION, target.family_id)
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_send(
            guardian=target, actor=None, email="grace@example.com", base_url="http://x"
        )
    assert [m.to for m in mail.outbox] == [["grace@example.com"]]
    assert "Invited by: Aqua Kids Swim School" in mail.outbox[0].body


def test_a_primary_guardians_password_resets_for_a_guardian_share_the_addresss_limit(
    aquakids, ana, django_capture_on_commit_callbacks
):
    connection.set_tenant(aquakids)
    sam = Guardian.objects.get(user__email="sam@aquakids.test")
    url = f"/account/guardians/{sam.pk}/reset-password/"
    for _ in range(limits.RESET_EMAIL.allowed):
        with django_capture_on_commit_callbacks(execute=True):
            assert "will get an e-mail" in ana.post(url, follow=True).content.decode()
    refused = ana.post(url, follow=True).content.decode()
    assert "Too many tries. Try again in 60 minutes." in refused
    assert [m.to for m in mail.outbox] == [["sam@aquakids.test"]] * limits.RESET_EMAIL.allowed
