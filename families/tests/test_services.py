"""Invitation states and transitions, and the race of two tabs accepting one link."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from conftest import client_for
from families import rules, services
from families.exceptions import InvitationInvalid, NotAllowed
from families.models import ContactEmail, Guardian, Invitation
from providers.models import Provider

BASE = "http://aquakids.localhost"


def primary():
    return Guardian.objects.select_related("family", "user").get(user__email="ana@aquakids.test")


def new_guardian(first="Grace"):
    ana = primary()
    return ana, services.guardian_add(
        family=ana.family, actor=ana, first_name=first, last_name="Novak"
    )


def token_of(invitation):
    return services._invitation_token(invitation)


def state(guardian):
    return rules.access_state(Guardian.objects.select_related("user").get(pk=guardian.pk))


@pytest.mark.django_db
class TestInvitations:
    def test_no_login_then_sent_then_can_log_in(
        self, in_aquakids, django_capture_on_commit_callbacks
    ):
        ana, grace = new_guardian()
        assert state(grace) == rules.NO_LOGIN
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="grace@example.com", base_url=BASE
        )
        assert state(grace) == rules.INVITE_SENT
        user = services.invitation_accept(token=token_of(invitation), password="swim-lessons-42")
        assert user.email == "grace@example.com" and user.check_password("swim-lessons-42")
        assert state(grace) == rules.CAN_LOG_IN
        assert authenticate(username="grace@example.com", password="swim-lessons-42") == user
        assert ContactEmail.objects.get(email="grace@example.com").is_login

    def test_a_used_link_does_not_work_twice(self, in_aquakids):
        ana, grace = new_guardian()
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        services.invitation_accept(token=token_of(invitation), password="swim-lessons-42")
        with pytest.raises(InvitationInvalid) as used:
            services.invitation_accept(token=token_of(invitation), password="another-pass-99")
        assert used.value.reason == "used"
        assert User.objects.get(email="g@example.com").check_password("swim-lessons-42")

    def test_expired_link(self, in_aquakids):
        ana, grace = new_guardian()
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert state(grace) == rules.INVITE_EXPIRED
        with pytest.raises(InvitationInvalid) as expired:
            services.invitation_accept(token=token_of(invitation), password="swim-lessons-42")
        assert expired.value.reason == "expired"
        assert grace.user is None

    def test_revoked_link_and_resend_supersedes(self, in_aquakids):
        ana, grace = new_guardian()
        first = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        second = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        with pytest.raises(InvitationInvalid) as old:
            services.invitation_check(token_of(first))
        assert old.value.reason == "revoked"
        assert services.invitation_check(token_of(second)) == second
        services.invitation_revoke(guardian=grace, actor=ana)
        assert state(grace) == rules.INVITE_REVOKED
        with pytest.raises(InvitationInvalid):
            services.invitation_check(token_of(second))
        with pytest.raises(NotAllowed):
            services.invitation_revoke(guardian=grace, actor=ana)  # nothing left to revoke

    def test_revoking_an_accepted_guardian_ends_the_login_and_a_new_invite_restores_it(
        self, in_aquakids
    ):
        ana, grace = new_guardian()
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        user = services.invitation_accept(token=token_of(invitation), password="swim-lessons-42")
        services.invitation_revoke(guardian=Guardian.objects.get(pk=grace.pk), actor=ana)
        user.refresh_from_db()
        assert not user.is_active and state(grace) == rules.INVITE_REVOKED
        assert authenticate(username="g@example.com", password="swim-lessons-42") is None
        again = services.invitation_send(
            guardian=Guardian.objects.get(pk=grace.pk),
            actor=ana,
            email="g@example.com",
            base_url=BASE,
        )
        same_user = services.invitation_accept(token=token_of(again), password="new-pass-word-77")
        assert same_user.pk == user.pk and same_user.is_active
        assert state(grace) == rules.CAN_LOG_IN

    def test_tampered_or_foreign_tokens(self, in_aquakids):
        ana, grace = new_guardian()
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        with pytest.raises(InvitationInvalid) as bad:
            services.invitation_check(token_of(invitation)[:-2] + "xx")
        assert bad.value.reason == "invalid"
        forged = signing.dumps({"i": invitation.pk, "n": "0" * 32}, salt="other")
        with pytest.raises(InvitationInvalid):
            services.invitation_check(forged)

    def test_weak_password_is_refused_and_the_link_still_works(self, in_aquakids):
        ana, grace = new_guardian()
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        with pytest.raises(ValidationError):
            services.invitation_accept(token=token_of(invitation), password="123")
        assert services.invitation_check(token_of(invitation)) == invitation

    def test_an_address_with_a_login_already_is_told_to_log_in_and_gets_no_link(
        self, in_aquakids, django_capture_on_commit_callbacks
    ):
        ana, grace = new_guardian()
        with django_capture_on_commit_callbacks(execute=True):
            invitation = services.invitation_send(
                guardian=grace, actor=ana, email="Ben@AquaKid\u017f.test", base_url=BASE
            )
        assert invitation.email == "ben@aquakids.test" and state(grace) == rules.INVITE_SENT
        [sent] = mail.outbox
        assert sent.to == ["ben@aquakids.test"]
        assert "has a login there already" in sent.body and f"{BASE}/accounts/login/" in sent.body
        assert "/invitations/" not in sent.body

    def test_only_the_primary_invites(self, in_aquakids):
        ana, grace = new_guardian()
        sam = Guardian.objects.get(user__email="sam@aquakids.test")
        with pytest.raises(NotAllowed):
            services.invitation_send(
                guardian=grace, actor=sam, email="g@example.com", base_url=BASE
            )
        with pytest.raises(NotAllowed):
            services.invitation_revoke(guardian=ana, actor=sam)

    def test_invitation_pages(self, aquakids):
        connection.set_tenant(aquakids)
        ana, grace = new_guardian()
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="g@example.com", base_url=BASE
        )
        client = client_for("aquakids")
        url = f"/invitations/{token_of(invitation)}/"
        page = client.get(url)
        assert page.status_code == 200 and b"Welcome, Grace" in page.content
        mismatch = client.post(url, {"new_password1": "swim-lessons-42", "new_password2": "other"})
        assert b"The two passwords differ" in mismatch.content
        done = client.post(
            url, {"new_password1": "swim-lessons-42", "new_password2": "swim-lessons-42"}
        )
        assert done.status_code == 302 and done["Location"] == "/"
        assert b"The Novak family" in client.get("/").content
        used = client_for("aquakids").get(url)
        assert used.status_code == 410 and b"This invitation was used already" in used.content
        junk = client_for("aquakids").get("/invitations/not-a-token/")
        assert junk.status_code == 404 and b"This invitation link does not work" in junk.content


def test_two_tabs_accepting_one_invitation_use_it_once(committed):
    with tenant_context(Provider.objects.get(slug="aquakids")):
        ana, grace = new_guardian("Racer")
        invitation = services.invitation_send(
            guardian=grace, actor=ana, email="racer@example.com", base_url=BASE
        )
        token = token_of(invitation)
    results, barrier = [], threading.Barrier(2)

    def accept(password):
        try:
            with schema_context("aquakids"):
                barrier.wait()
                results.append(services.invitation_accept(token=token, password=password).pk)
        except InvitationInvalid as error:
            results.append(error.reason)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=accept, args=(p,)) for p in ("first-pass-123", "second-pass-456")
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        with schema_context("aquakids"):
            assert sorted(map(str, results))[-1] == "used", results
            assert sum(isinstance(r, int) for r in results) == 1
            assert User.objects.filter(email="racer@example.com").count() == 1
            assert Invitation.objects.get(pk=invitation.pk).accepted_at is not None
    finally:
        with schema_context("aquakids"):
            Guardian.objects.filter(pk=grace.pk).delete()
            User.objects.filter(email="racer@example.com").delete()
            ContactEmail.objects.filter(email="racer@example.com").delete()
