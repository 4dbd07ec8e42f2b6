"""What people type: names without invisible characters, real country codes,
bounded long text with a counter, a too-large form shown again with what was
typed, and a family without children still gets pages."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from conftest import HOSTS, login
from families.models import Family, Guardian, MailingAddress, Student
from portal.tenancy import use_provider
from portal.validators import hidden_characters
from tests.test_no_store import tenant_paths

HIDDEN = {
    "right-to-left override": "Mia\u202eavoN",
    "left-to-right isolate": "\u2066Mia",
    "zero-width space": "Mi\u200ba",
    "zero-width joiner": "Mia\u200d",
    "byte-order mark": "\ufeffMia",
}


def student_data(**changes) -> dict:
    return {"first_name": "Ava", "last_name": "Novak", "date_of_birth": "2018-05-01"} | changes


@pytest.mark.parametrize("name", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_child_name_with_hidden_characters_is_refused_next_to_the_field(ana, aquakids, name):
    response = ana.post("/account/students/add/", student_data(first_name=name))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "first_name" in errors and "invisible characters" in errors["first_name"][0]
    assert hidden_characters(name)[0] in errors["first_name"][0]
    use_provider(aquakids)
    assert not Student.objects.filter(last_name="Novak", first_name__startswith="Av").exists()


def test_ordinary_names_in_any_script_are_accepted():
    for name in ("Ana-Marija", "O'Neil", "Žiga Šuštar", "Zoë", "محمد", "李小龙", "Nguyễn"):
        assert hidden_characters(name) == []


@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_a_guardian_name_with_hidden_characters_is_refused(ana, field):
    data = {"first_name": "Tom", "last_name": "Novak", field: "To\u200bm\u202e"}
    response = ana.post("/account/guardians/add/", data)
    assert response.status_code == 200
    assert "invisible characters" in response.context["form"].errors[field][0]


def test_the_services_and_the_admin_refuse_them_too(in_aquakids):
    family = Family.objects.get(name="Novak")
    with pytest.raises(ValidationError, match="invisible characters"):
        Student(family=family, first_name="Le\u202eo", last_name="Novak").full_clean()
    with pytest.raises(ValidationError, match="invisible characters"):
        Guardian(family=family, first_name="Sam", last_name="No\u2067vak").full_clean()
    with pytest.raises(ValidationError, match="invisible characters"):
        Family(name="Nov\u200bak").full_clean(exclude=["created_at"])
    from families import services

    with pytest.raises(ValidationError, match="invisible characters"):
        services.student_create(
            family=family,
            actor=family.guardians.get(is_primary=True),
            first_name="Le\u202eo",
            last_name="Novak",
        )


# --- Country codes --------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["XX", "ZZ", "UK", "EU", "1A"])
def test_an_address_country_must_be_an_iso_code(ana, code):
    data = {"line1": "Main 1", "postcode": "1000", "city": "Ljubljana", "country": code}
    response = ana.post("/account/contacts/address/add/", data)
    assert response.status_code == 200
    assert "is not a country code" in response.context["form"].errors["country"][0]


def test_a_real_country_code_is_accepted_in_any_case(ana, aquakids):
    data = {"line1": "Main 9", "postcode": "1000", "city": "Ljubljana", "country": "at"}
    response = ana.post("/account/contacts/address/add/", data)
    assert response.status_code == 302
    use_provider(aquakids)
    assert MailingAddress.objects.get(line1="Main 9").country == "AT"


def test_a_provider_country_must_be_an_iso_code(aquakids):
    aquakids.country = "XX"
    with pytest.raises(ValidationError, match="is not a country code"):
        aquakids.full_clean()


# --- Long text ---------------------------------------------------------------------------------


def test_medical_notes_are_bounded_and_show_a_counter(ana, aquakids):
    page = ana.get("/account/students/add/").content.decode()
    assert 'maxlength="1000"' in page and "At most 1000 characters." in page
    assert 'data-max="1000"' in page and "{used} of {max} characters" in page
    response = ana.post("/account/students/add/", student_data(medical_notes="n" * 1001))
    assert response.status_code == 200
    error = response.context["form"].errors["medical_notes"][0]
    assert "at most 1000 characters" in error
    assert "This text has 1001 characters: shorten it." in response.content.decode()


def test_a_problem_report_is_bounded(ana):
    page = ana.get("/report-a-problem/").content.decode()
    assert page.count('maxlength="2000"') == 2 and "At most 2000 characters." in page
    response = ana.post("/report-a-problem/", {"clicked": "c" * 2001, "expected": "ok"})
    assert response.status_code == 200
    assert "at most 2000 characters" in response.context["form"].errors["clicked"][0]


def test_an_absence_reason_shows_its_limit(ana, aquakids):
    use_provider(aquakids)
    mia = Student.objects.get(first_name="Mia", family__name="Novak")
    page = ana.get(f"/students/{mia.pk}/absences/by-date/").content.decode()
    assert 'maxlength="200"' in page and "At most 200 characters." in page


def test_the_model_bounds_long_text_for_every_path(in_aquakids):
    mia = Student.objects.get(first_name="Mia", family__name="Novak")
    mia.medical_notes = "n" * 1001
    with pytest.raises(ValidationError, match="at most 1000 characters"):
        mia.full_clean()


# --- A form with too much in it -----------------------------------------------------------------


def test_a_body_over_the_limit_shows_the_form_again_with_what_was_typed(ana, aquakids, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    data = student_data(first_name="Ava", medical_notes="n" * 20_000)
    response = ana.post("/account/students/add/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "What you sent is too large (at most 9 KB): nothing was saved." in html
    assert 'value="Ava"' in html and 'value="2018-05-01"' in html
    use_provider(aquakids)
    assert not Student.objects.filter(first_name="Ava").exists()


def test_an_urlencoded_body_over_the_limit_keeps_what_was_typed(ana, aquakids, settings):
    from urllib.parse import urlencode

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = urlencode(student_data(first_name="Ava", medical_notes="n" * 20_000))
    response = ana.post(
        "/account/students/add/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "What you sent is too large" in html and 'value="Ava"' in html
    use_provider(aquakids)
    assert not Student.objects.filter(first_name="Ava").exists()


def png(size: int) -> bytes:
    """A PNG of about `size` bytes (noise does not compress)."""
    import os

    side = int((size / 3) ** 0.5) + 1
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_file_over_the_limit_keeps_the_text_fields(ana, aquakids, settings):
    settings.UPLOAD_MAX_BYTES = 50_000
    photo = SimpleUploadedFile("holiday.png", png(120_000), content_type="image/png")
    response = ana.post("/account/students/add/", student_data(first_name="Ava", photo=photo))
    assert response.status_code == 200
    html = response.content.decode()
    assert "“holiday.png” is larger than 48 KB and was not uploaded: nothing was saved." in html
    assert 'value="Ava"' in html
    use_provider(aquakids)
    assert not Student.objects.filter(first_name="Ava").exists()


def test_a_too_large_post_only_action_goes_back_with_the_message(ana, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = ana.post(
        "/calendar/reset/", {"student": "", "junk": "j" * 5_000}, HTTP_REFERER="/calendar/"
    )
    assert response.status_code == 302 and response["Location"] == "/calendar/"
    assert "What you sent is too large" in ana.get("/calendar/").content.decode()


def test_a_small_form_is_untouched(ana, aquakids):
    response = ana.post("/account/students/add/", student_data(first_name="Ava"))
    assert response.status_code == 302
    use_provider(aquakids)
    assert Student.objects.filter(first_name="Ava").exists()


# --- A family without children --------------------------------------------------------------


def test_a_family_without_children_gets_pages_not_errors(aquakids):
    from accounts.models import User

    use_provider(aquakids)
    family = Family.objects.create(name="Empty")
    user = User.objects.create_user("empty@aquakids.test", "long-enough-pass")
    Guardian.objects.create(
        family=family, user=user, first_name="Eve", last_name="Empty", is_primary=True
    )
    client = login(
        Client(raise_request_exception=False, HTTP_HOST=HOSTS["aquakids"]),
        aquakids,
        "empty@aquakids.test",
    )
    failed = []
    for name, path in tenant_paths():
        if path.startswith(("/staff/", "/dev/")):
            continue
        response = client.get(path)
        if response.status_code >= 500:
            failed.append((name, path, response.status_code))
    assert failed == []
    # The pass page of a family's pass (bought before a child was added).
    from benefits.models import Pass

    pass_obj = Pass.objects.filter(family__name="Novak").first()
    pass_obj.pk = None
    pass_obj.family = family
    pass_obj.student = None
    pass_obj.save()
    response = client.get(f"/benefits/passes/{pass_obj.pk}/book/")
    assert response.status_code == 302 and response["Location"] == "/account/"
