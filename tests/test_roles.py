"""Staff roles: groups with permissions at every provider, no superusers in
a provider's schema, staff invited by an owner, logins with history
deactivated instead of deleted."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.db import connection
from django_tenants.utils import schema_context

from accounts import roles
from accounts.models import User
from conftest import client_for, login
from families.models import Family, StaffView

pytestmark = pytest.mark.django_db


def test_every_provider_has_the_three_roles_and_no_superuser(aquakids, leaps):
    for provider in (aquakids, leaps):
        connection.set_tenant(provider)
        assert not User.objects.filter(is_superuser=True).exists()
        owner = Group.objects.get(name=roles.OWNER)
        assert owner.permissions.count() == Permission.objects.count()
        desk = set(
            Group.objects.get(name=roles.FRONT_DESK).permissions.values_list("codename", flat=True)
        )
        manager = set(
            Group.objects.get(name=roles.MANAGER).permissions.values_list("codename", flat=True)
        )
        assert {"view_as_family", "add_enrollment", "view_order"} <= desk
        assert not {"add_user", "change_provider", "add_ledgerentry", "delete_family"} & desk
        assert {"add_ledgerentry", "change_payment", "view_as_family"} <= manager
        assert not {"add_user", "change_user", "change_provider"} & manager
        staff = User.objects.get(email=f"staff@{provider.slug}.test")
        assert staff.has_perm("accounts.add_user") and staff.has_perm("providers.change_provider")


@pytest.mark.parametrize(
    ("email", "allowed", "refused"),
    [
        (
            "desk@aquakids.test",
            ["/admin/families/family/", "/admin/enrollments/enrollment/add/", "/staff/embed/"],
            ["/staff/settings/", "/admin/accounts/user/", "/admin/billing/ledgerentry/add/"],
        ),
        (
            "manager@aquakids.test",
            ["/admin/billing/ledgerentry/add/", "/admin/families/family/", "/staff/embed/"],
            ["/staff/settings/", "/admin/accounts/user/add/"],
        ),
        (
            "staff@aquakids.test",
            ["/staff/settings/", "/admin/accounts/user/add/", "/admin/billing/ledgerentry/add/"],
            [],
        ),
    ],
)
def test_each_role_reaches_what_it_may_and_no_more(email, allowed, refused, aquakids):
    client = login(client_for("aquakids"), aquakids, email)
    for url in allowed:
        assert client.get(url).status_code == 200, (email, url)
    for url in refused:
        assert client.get(url).status_code == 403, (email, url)


def test_an_owner_invites_staff_who_choose_their_password_and_get_their_role(
    aquakids, django_capture_on_commit_callbacks
):
    owner = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(
            "/admin/accounts/user/add/",
            {"email": "Nina@AquaKids.test", "full_name": "Nina Desk", "role": roles.FRONT_DESK},
        )
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    nina = User.objects.get(email="nina@aquakids.test")
    assert nina.is_staff and not nina.is_superuser and not nina.has_usable_password()
    assert list(nina.groups.values_list("name", flat=True)) == [roles.FRONT_DESK]
    message = mail.outbox[-1]
    assert message.to == ["nina@aquakids.test"] and "Aqua Kids" in message.subject
    link = re.search(r"http://aquakids\.localhost(/accounts/password/reset/\S+/)", message.body)
    assert link, message.body

    browser = client_for("aquakids")
    form = browser.get(link.group(1), follow=True)
    assert form.status_code == 200
    browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "Desk-pass-90210", "new_password2": "Desk-pass-90210"},
    )
    fresh = client_for("aquakids")
    logged_in = fresh.post(
        "/admin/login/?next=/admin/",
        {"username": "nina@aquakids.test", "password": "Desk-pass-90210"},
    )
    assert logged_in.status_code == 302
    assert fresh.get("/admin/families/family/").status_code == 200
    assert fresh.get("/admin/accounts/user/").status_code == 403

    # The same address twice is refused next to the field, nothing saved twice.
    again = owner.post(
        "/admin/accounts/user/add/",
        {"email": "NINA@aquakids.test", "full_name": "Nina", "role": roles.FRONT_DESK},
    )
    assert again.status_code == 200
    assert "There is a login with this e-mail address already." in again.content.decode()
    connection.set_tenant(aquakids)
    assert User.objects.filter(email="nina@aquakids.test").count() == 1


def test_a_login_with_history_is_deactivated_and_the_delete_page_says_so(aquakids):
    connection.set_tenant(aquakids)
    desk = User.objects.get(email="desk@aquakids.test")
    StaffView.objects.create(staff=desk, family=Family.objects.first())
    owner = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    page = owner.get(f"/admin/accounts/user/{desk.pk}/delete/").content.decode()
    assert "deactivated instead of deleted" in page
    assert owner.post(f"/admin/accounts/user/{desk.pk}/delete/", {"post": "yes"}).status_code == 302
    connection.set_tenant(aquakids)
    desk.refresh_from_db()
    assert not desk.is_active
    assert StaffView.objects.filter(staff=desk).exists()
    refused = client_for("aquakids").post(
        "/admin/login/?next=/admin/", {"username": desk.email, "password": "portal-demo"}
    )
    assert refused.status_code == 200


def test_a_new_providers_schema_has_the_roles(db):
    from providers.services import provider_create

    provider = provider_create(slug="roles-check", name="Roles check", domains=[])
    with schema_context(provider.schema_name):
        assert set(Group.objects.values_list("name", flat=True)) == set(roles.ROLES)
        assert Group.objects.get(name=roles.OWNER).permissions.count() == (
            Permission.objects.count()
        )
