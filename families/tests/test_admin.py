from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection

from conftest import client_for, login
from families.models import Guardian

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


@pytest.mark.parametrize(
    "term", ["Novak", "ana@aquakids.test", "ana.novak@work", "+38641555123", "Leo"]
)
def test_staff_find_a_family_by_name_email_or_phone(staff, term):
    html = staff.get("/admin/families/family/", {"q": term}).content.decode()
    assert ">Novak<" in html and ">Okafor<" not in html


def test_family_page_in_admin_lists_guardians_students_and_contacts(staff, aquakids):
    connection.set_tenant(aquakids)
    family = Guardian.objects.get(user__email="ana@aquakids.test").family
    html = staff.get(f"/admin/families/family/{family.pk}/change/").content.decode()
    for text in ("Mia", "Leo", "Sam", "ana.novak@work.example", "Trubarjeva cesta 12"):
        assert text in html


def test_staff_send_and_revoke_invitations_from_admin(
    staff, aquakids, django_capture_on_commit_callbacks
):
    connection.set_tenant(aquakids)
    ana = Guardian.objects.get(user__email="ana@aquakids.test")
    grace = Guardian.objects.create(family=ana.family, first_name="Grace", last_name="Novak")
    grace.emails.create(family=ana.family, email="grace@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            "/admin/families/guardian/",
            {"action": "send_invitation", "_selected_action": [grace.pk, ana.pk]},
            follow=True,
        )
    html = response.content.decode()
    assert "Invitation sent to grace@example.com." in html
    assert "Ana Novak: no invitation" in html
    assert [m.to for m in mail.outbox] == [["grace@example.com"]]
    assert mail.outbox[0].subject == "Your invitation to the family portal of Aqua Kids Swim School"
    assert "Invited by: Aqua Kids Swim School" in mail.outbox[0].body
    listing = staff.get("/admin/families/guardian/", {"q": "Grace"}).content.decode()
    assert "Invite sent" in listing
    staff.post(
        "/admin/families/guardian/",
        {"action": "revoke_access", "_selected_action": [grace.pk]},
    )
    assert (
        "Invite revoked" in staff.get("/admin/families/guardian/", {"q": "Grace"}).content.decode()
    )


def test_parents_cannot_open_the_staff_admin(ana):
    response = ana.get("/admin/families/family/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
