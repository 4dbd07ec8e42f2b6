from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from accounts.models import User
from conftest import client_for, login
from families.models import (
    ContactEmail,
    ContactPhone,
    Guardian,
    MailingAddress,
    ProblemReport,
    Student,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam(aquakids):
    return login(client_for("aquakids"), aquakids, "sam@aquakids.test")


def novak(aquakids, first_name):
    connection.set_tenant(aquakids)
    return Guardian.objects.select_related("user", "family").get(
        first_name=first_name, family__name="Novak"
    )


def test_account_page_shows_students_guardians_and_contact_columns(ana):
    html = ana.get("/account/").content.decode()
    assert "Mia Novak" in html and "Leo Novak" in html
    assert re.search(r"Sam Novak.*?Can log in", html, re.S)
    columns = re.findall(r'<h3 class="card-title" id="col-[^"]+">([^<]+)</h3>', html)
    assert columns == ["Ana Novak", "Sam Novak", "Unassigned"]
    # Opted-out values say so in red italics; the login e-mail is marked.
    assert (
        '<em class="unsubscribed">Unsubscribed</em>'
        in html.split("ana.novak@work.example")[1][:200]
    )
    assert html.count('class="unsubscribed"') == 2
    assert re.search(r"ana@aquakids\.test\s*<span class=\"tag tag-strong\">Login</span>", html)
    assert "+386 1 555 01 99" in html.split('id="col-unassigned"')[1]


def test_add_student_keeps_what_was_typed_and_explains_errors(aquakids, ana):
    response = ana.post(
        "/account/students/add/",
        {
            "first_name": "",
            "last_name": "Novak",
            "date_of_birth": "2099-01-01",
            "medical_notes": "Peanut allergy",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html
    assert "The date of birth cannot be in the future." in html
    assert 'value="Novak"' in html and "Peanut allergy" in html and 'value="2099-01-01"' in html
    assert html.count('aria-invalid="true"') == 2

    response = ana.post(
        "/account/students/add/",
        {
            "first_name": "Ivy",
            "last_name": "Novak",
            "date_of_birth": "2021-05-02",
            "medical_notes": "Peanut allergy",
        },
    )
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    ivy = Student.objects.get(first_name="Ivy")
    assert ivy.family.name == "Novak" and ivy.medical_notes == "Peanut allergy" and ivy.colour
    assert "Ivy" in ana.get("/").content.decode()


def test_edit_student_and_photo_served_only_to_the_family(aquakids, ana, ben):
    mia = Student.objects.get(first_name="Mia")
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "#0b63ce").save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "mia.png"
    response = ana.post(
        f"/account/students/{mia.pk}/edit/",
        {
            "first_name": "Mia",
            "last_name": "Novak",
            "date_of_birth": "2017-04-12",
            "gender": "f",
            "medical_notes": "Asthma inhaler in bag",
            "photo": buffer,
        },
    )
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    mia.refresh_from_db()
    assert mia.medical_notes == "Asthma inhaler in bag"
    assert mia.photo.name.startswith("students/")
    photo = ana.get(f"/account/students/{mia.pk}/photo")
    assert photo.status_code == 200 and b"".join(photo.streaming_content).startswith(b"\x89PNG")
    assert ben.get(f"/account/students/{mia.pk}/photo").status_code == 404
    assert f"/account/students/{mia.pk}/photo" in ana.get("/").content.decode()


def test_a_guardian_without_permission_cannot_edit_students(aquakids, sam):
    mia = Student.objects.get(first_name="Mia")
    assert sam.get("/account/students/add/").status_code == 403
    assert sam.post(f"/account/students/{mia.pk}/edit/", {"first_name": "X"}).status_code == 403
    assert "Add student" not in sam.get("/account/").content.decode()


def test_primary_adds_a_guardian_and_invites_them(
    aquakids, ana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post(
            "/account/guardians/add/",
            {
                "first_name": "Grace",
                "last_name": "Novak",
                "email": "Grace@Example.com",
                "send_invitation": "on",
                "can_pay": "on",
            },
        )
    assert response.status_code == 302
    grace = novak(aquakids, "Grace")
    assert grace.can_pay and not grace.is_primary and grace.user is None
    assert ContactEmail.objects.get(email="grace@example.com").guardian == grace
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["grace@example.com"]
    # The provider's text: the inviter's name only in the body, as data.
    assert mail.outbox[0].subject == "Your invitation to the family portal of Aqua Kids Swim School"
    assert "Ana Novak" not in mail.outbox[0].subject
    assert "Invited by: Ana Novak" in mail.outbox[0].body
    assert re.search(r"Grace Novak.*?Invite sent", ana.get("/account/").content.decode(), re.S)


def test_invitation_needs_an_email(ana):
    response = ana.post(
        "/account/guardians/add/",
        {"first_name": "Grace", "last_name": "Novak", "send_invitation": "on"},
    )
    assert "Enter an e-mail address to send the invitation to." in response.content.decode()


def test_secondary_cannot_change_other_guardians_or_permissions(aquakids, sam):
    ana_g = novak(aquakids, "Ana")
    sam_g = novak(aquakids, "Sam")
    for url in (
        f"/account/guardians/{ana_g.pk}/edit/",
        f"/account/guardians/{sam_g.pk}/invite/",
        f"/account/guardians/{ana_g.pk}/revoke/",
        "/account/guardians/add/",
    ):
        assert sam.get(url).status_code == 403, url
        assert sam.post(url, {"first_name": "Hacked", "can_pay": "on"}).status_code == 403, url
    assert sam.post(f"/account/guardians/{ana_g.pk}/reset-password/").status_code == 403
    # Sam edits his own name, but the permission fields are not his to set.
    page = sam.get(f"/account/guardians/{sam_g.pk}/edit/").content.decode()
    assert 'name="can_pay"' not in page
    sam.post(
        f"/account/guardians/{sam_g.pk}/edit/",
        {"first_name": "Samuel", "last_name": "Novak", "can_pay": "on"},
    )
    sam_g.refresh_from_db()
    assert sam_g.first_name == "Samuel" and not sam_g.can_pay
    ana_email = ContactEmail.objects.get(email="ana@aquakids.test")
    assert sam.get(f"/account/contacts/email/{ana_email.pk}/edit/").status_code == 403
    sam.post(f"/account/contacts/email/{ana_email.pk}/delete/")
    assert ContactEmail.objects.filter(pk=ana_email.pk).exists()


def test_primary_sets_permissions_but_not_details_of_an_accepted_guardian(aquakids, ana):
    sam_g = novak(aquakids, "Sam")
    page = ana.get(f"/account/guardians/{sam_g.pk}/edit/").content.decode()
    assert 'name="first_name"' not in page and 'name="can_pay"' in page
    ana.post(
        f"/account/guardians/{sam_g.pk}/edit/",
        {"first_name": "Renamed", "can_pay": "on", "can_edit_students": "on"},
    )
    sam_g.refresh_from_db()
    assert sam_g.first_name == "Sam" and sam_g.can_pay and sam_g.can_edit_students
    sam_phone = ContactPhone.objects.get(guardian=sam_g)
    assert ana.get(f"/account/contacts/phone/{sam_phone.pk}/edit/").status_code == 403
    assert (
        ana.post(
            f"/account/contacts/phone/{sam_phone.pk}/edit/",
            {"number": "+38640000000", "kind": "mobile"},
        ).status_code
        == 403
    )


def test_contacts_add_edit_validate_and_store_e164(aquakids, ana):
    response = ana.post("/account/contacts/phone/add/", {"number": "12", "kind": "mobile"})
    assert "Enter a valid phone number" in response.content.decode()
    assert 'value="12"' in response.content.decode()
    ana.post("/account/contacts/phone/add/", {"number": "041 987 654", "kind": "work"})
    connection.set_tenant(aquakids)
    phone = ContactPhone.objects.get(kind="work")
    assert phone.number.as_e164 == "+38641987654"
    assert phone.guardian.first_name == "Ana"
    ana.post(
        f"/account/contacts/phone/{phone.pk}/edit/",
        {"number": "+44 20 7946 0321", "kind": "work", "sms_opt_out": "on"},
    )
    phone.refresh_from_db()
    assert phone.number.as_e164 == "+442079460321" and phone.sms_opt_out
    ana.post(
        "/account/contacts/address/add/?guardian=unassigned",
        {"line1": "Holiday flat 3", "postcode": "6320", "city": "Portorož", "country": "si"},
    )
    address = MailingAddress.objects.get(line1="Holiday flat 3")
    assert address.guardian is None and address.country == "SI"
    ana.post(f"/account/contacts/address/{address.pk}/delete/")
    assert not MailingAddress.objects.filter(pk=address.pk).exists()


def test_the_login_email_is_marked_and_cannot_be_deleted_or_changed(aquakids, ana):
    connection.set_tenant(aquakids)
    login_email = ContactEmail.objects.get(email="ana@aquakids.test")
    response = ana.post(f"/account/contacts/email/{login_email.pk}/delete/", follow=True)
    assert "The login e-mail address cannot be deleted." in response.content.decode()
    assert ContactEmail.objects.filter(pk=login_email.pk).exists()
    ana.post(
        f"/account/contacts/email/{login_email.pk}/edit/",
        {"email": "other@example.com", "blasts_opt_out": "on"},
    )
    login_email.refresh_from_db()
    assert login_email.email == "ana@aquakids.test" and login_email.blasts_opt_out


def test_reassigning_an_unassigned_value(aquakids, ana, sam):
    connection.set_tenant(aquakids)
    home = ContactPhone.objects.get(guardian=None)
    sam_g = novak(aquakids, "Sam")
    # Only the primary guardian sorts out the Unassigned column.
    sam.post(f"/account/contacts/phone/{home.pk}/assign/", {"guardian": sam_g.pk})
    home.refresh_from_db()
    assert home.guardian is None
    ana.post(f"/account/contacts/phone/{home.pk}/assign/", {"guardian": sam_g.pk})
    home.refresh_from_db()
    assert home.guardian == sam_g
    html = ana.get("/account/").content.decode()
    assert (
        "+386 1 555 01 99" in html.split('id="col-' + str(sam_g.pk) + '"')[1].split("</article>")[0]
    )
    # Now it is Sam's: Ana cannot move it back, Sam can.
    response = ana.post(
        f"/account/contacts/phone/{home.pk}/assign/", {"guardian": "unassigned"}, follow=True
    )
    assert "Only this guardian can move their own contact details." in response.content.decode()
    sam.post(f"/account/contacts/phone/{home.pk}/assign/", {"guardian": "unassigned"})
    home.refresh_from_db()
    assert home.guardian is None


def test_revoke_and_reset_password_of_a_secondary(
    aquakids, ana, sam, django_capture_on_commit_callbacks
):
    sam_g = novak(aquakids, "Sam")
    with django_capture_on_commit_callbacks(execute=True):
        ana.post(f"/account/guardians/{sam_g.pk}/reset-password/")
    assert mail.outbox[-1].to == ["sam@aquakids.test"]
    assert "/accounts/password/reset/" in mail.outbox[-1].body
    assert sam.get("/").status_code == 200
    ana.post(f"/account/guardians/{sam_g.pk}/revoke/")
    connection.set_tenant(aquakids)
    assert not User.objects.get(email="sam@aquakids.test").is_active
    assert sam.get("/").status_code == 302  # logged out
    assert re.search(r"Sam Novak.*?Invite revoked", ana.get("/account/").content.decode(), re.S)


def test_account_queries_do_not_grow(aquakids, ana):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert ana.get("/account/").status_code == 200
        return len(queries)

    small = count()
    connection.set_tenant(aquakids)
    family = novak(aquakids, "Ana").family
    for n in range(6):
        g = Guardian.objects.create(family=family, first_name=f"Aunt{n}", last_name="Novak")
        ContactEmail.objects.create(family=family, guardian=g, email=f"aunt{n}@example.com")
        ContactPhone.objects.create(family=family, guardian=g, number=f"+3864155500{n}")
        Student.objects.create(family=family, first_name=f"Kid{n}", last_name="Novak")
    assert count() == small
    assert small <= 15


def test_every_family_url_is_not_found_for_another_family(aquakids, ben):
    """Ben walks every URL of this app with the Novak family's ids."""
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia")
    sam_g = novak(aquakids, "Sam")
    email = ContactEmail.objects.get(email="ana@aquakids.test")
    phone = ContactPhone.objects.filter(guardian__first_name="Ana").first()
    address = MailingAddress.objects.get(line1="Trubarjeva cesta 12")
    report = ProblemReport.objects.create(
        family=mia.family, page="/", clicked="Pay", expected="A receipt", answer="Fixed"
    )
    urls = [
        f"/account/problem-reports/{report.pk}/",
        f"/account/students/{mia.pk}/edit/",
        f"/account/students/{mia.pk}/photo",
        f"/account/guardians/{sam_g.pk}/edit/",
        f"/account/guardians/{sam_g.pk}/invite/",
        f"/account/guardians/{sam_g.pk}/revoke/",
        f"/account/guardians/{sam_g.pk}/reset-password/",
        f"/account/contacts/email/{email.pk}/edit/",
        f"/account/contacts/email/{email.pk}/delete/",
        f"/account/contacts/email/{email.pk}/assign/",
        f"/account/contacts/phone/{phone.pk}/edit/",
        f"/account/contacts/phone/{phone.pk}/delete/",
        f"/account/contacts/phone/{phone.pk}/assign/",
        f"/account/contacts/address/{address.pk}/edit/",
        f"/account/contacts/address/{address.pk}/delete/",
        f"/account/contacts/address/{address.pk}/assign/",
        f"/account/contacts/phone/add/?guardian={sam_g.pk}",
        f"/?child={mia.pk}",
        f"/sections/bookings/?child={mia.pk}",
    ]
    from django.urls import resolve

    from families.urls import urlpatterns

    with_ids = {p.name for p in urlpatterns if "<int:pk>" in str(p.pattern)}
    walked = {resolve(url.split("?")[0], urlconf="portal.urls").url_name for url in urls}
    assert with_ids <= walked, with_ids - walked
    for url in urls:
        # 405 only where the view takes no such method at all: nothing is revealed.
        statuses = {
            "get": ben.get(url).status_code,
            "post": ben.post(url, {"guardian": sam_g.pk}).status_code,
        }
        assert set(statuses.values()) <= {404, 405} and 404 in statuses.values(), (url, statuses)
    connection.set_tenant(aquakids)
    assert ContactEmail.objects.filter(pk=email.pk, guardian__first_name="Ana").exists()
    assert MailingAddress.objects.filter(pk=address.pk).exists()
