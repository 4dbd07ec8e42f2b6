"""Uploaded images (a problem report's screenshot, a child's photo): capped
in size, re-encoded without metadata, typed by their content, and served by
it (never as a PDF because of a name); problem reports are limited per login
(portal.limits.PROBLEM_REPORT), the office's e-mail included."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.db import connection
from PIL import Image

from conftest import client_for, login
from families.models import ProblemReport, Student
from portal import limits

pytestmark = pytest.mark.django_db


def image_bytes(kind: str = "PNG", size=(64, 48), exif: bool = True) -> bytes:
    image = Image.new("RGB", size, (10, 120, 200))
    options = {}
    if exif:
        data = Image.Exif()
        data[0x013B] = "Photographer Name"  # Artist
        data[0x8825] = {1: "N", 2: (46.0, 3.0, 0.0)}  # GPS: where it was taken
        options["exif"] = data.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def report(client, screenshot=None, **extra):
    data = {"page": "/billing/", "clicked": "Pressed Pay", "expected": "A card form", **extra}
    if screenshot is not None:
        data["screenshot"] = screenshot
    return client.post("/report-a-problem/", data)


@pytest.fixture
def owner(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


def test_a_30_mb_screenshot_is_not_stored_and_the_form_keeps_what_was_typed(aquakids, ana):
    big = upload("screen.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (30 * 1024 * 1024))
    response = report(ana, big, clicked="Pressed Pay twice")
    html = response.content.decode()
    assert "“screen.png” is larger than 10 MB and was not uploaded" in html
    assert "Pressed Pay twice" in html
    connection.set_tenant(aquakids)
    assert not ProblemReport.objects.exists()


def test_a_screenshot_over_5_mb_is_refused_next_to_its_field(aquakids, ana):
    big = upload("screen.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (6 * 1024 * 1024))
    response = report(ana, big, clicked="Pressed Pay twice")
    html = response.content.decode()
    assert response.status_code == 200
    assert "The screenshot is too large: at most 5 MB is accepted (this file is 6.0 MB)." in html
    assert 'id="id_screenshot_error"' in html and "Pressed Pay twice" in html
    connection.set_tenant(aquakids)
    assert not ProblemReport.objects.exists()


def test_a_screenshot_is_re_encoded_without_exif(aquakids, ana):
    assert b"Photographer Name" in image_bytes("JPEG")
    assert report(ana, upload("screen.jpg", image_bytes("JPEG"))).status_code == 302
    connection.set_tenant(aquakids)
    stored = ProblemReport.objects.get().screenshot
    data = stored.read()
    assert stored.name.endswith(".jpg")
    assert b"Photographer Name" not in data
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and not image.getexif() and image.size == (64, 48)


def test_a_png_named_pdf_is_stored_and_served_as_a_png(aquakids, ana, owner):
    assert report(ana, upload("invoice.pdf", image_bytes("PNG"))).status_code == 302
    connection.set_tenant(aquakids)
    found = ProblemReport.objects.get()
    assert found.screenshot.name.endswith(".png")
    served = owner.get(f"/staff/reports/{found.pk}/screenshot")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert (
        served["Content-Disposition"].startswith("inline")
        and ".png" in served["Content-Disposition"]
    )
    assert b"".join(served.streaming_content).startswith(b"\x89PNG")


def test_files_stored_before_re_encoding_are_served_by_their_content(aquakids, owner):
    connection.set_tenant(aquakids)
    old = ProblemReport(page="/", clicked="x", expected="y")
    old.screenshot.save("old.pdf", ContentFile(image_bytes("PNG", exif=False)), save=True)
    served = owner.get(f"/staff/reports/{old.pk}/screenshot")
    assert served["Content-Type"] == "image/png" and served["X-Content-Type-Options"] == "nosniff"
    junk = ProblemReport(page="/", clicked="x", expected="y")
    junk.screenshot.save("junk.pdf", ContentFile(b"%PDF-1.4 not an image"), save=True)
    served = owner.get(f"/staff/reports/{junk.pk}/screenshot")
    assert served["Content-Type"] == "application/octet-stream"
    assert served["Content-Disposition"].startswith("attachment")


def test_problem_reports_are_limited_per_login_office_mail_included(
    aquakids, ana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(limits.PROBLEM_REPORT.allowed):
            assert report(ana).status_code == 302
    assert len(mail.outbox) == limits.PROBLEM_REPORT.allowed
    with django_capture_on_commit_callbacks(execute=True):
        refused = report(ana, clicked="Once more")
    html = refused.content.decode()
    assert refused.status_code == 200
    assert "Too many tries. Try again in 60 minutes." in html and "Once more" in html
    assert len(mail.outbox) == limits.PROBLEM_REPORT.allowed
    connection.set_tenant(aquakids)
    assert ProblemReport.objects.count() == limits.PROBLEM_REPORT.allowed


def test_a_childs_photo_is_re_encoded_and_served_by_its_content(aquakids, ana):
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", family__name="Novak")
    data = {
        "first_name": "Mia",
        "last_name": mia.last_name,
        "date_of_birth": mia.date_of_birth.isoformat(),
        "photo": upload("mia.pdf", image_bytes("JPEG")),
    }
    assert ana.post(f"/account/students/{mia.pk}/edit/", data).status_code == 302
    mia.refresh_from_db()
    assert mia.photo.name.endswith(".jpg")
    served = ana.get(f"/account/students/{mia.pk}/photo")
    assert served["Content-Type"] == "image/jpeg" and served["X-Content-Type-Options"] == "nosniff"
    assert b"Photographer Name" not in b"".join(served.streaming_content)
    too_big = dict(data, photo=upload("mia.png", b"\x89PNG" + b"\0" * (6 * 1024 * 1024)))
    refused = ana.post(f"/account/students/{mia.pk}/edit/", too_big).content.decode()
    assert "The photo is too large: at most 5 MB is accepted" in refused


def test_past_the_report_limit_a_screenshot_is_not_even_opened(aquakids, ana):
    for _ in range(limits.PROBLEM_REPORT.allowed):
        assert report(ana).status_code == 302
    refused = report(ana, upload("screen.png", b"not an image at all"), clicked="Again")
    html = refused.content.decode()
    assert "Too many tries. Try again in 60 minutes." in html and "Again" in html
    assert "not a picture" not in html.lower() and "id_screenshot_error" not in html


def test_children_s_photos_are_limited_per_login_and_not_opened_past_it(aquakids, ana):
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", family__name="Novak")

    def send(photo):
        data = {
            "first_name": "Mia",
            "last_name": mia.last_name,
            "date_of_birth": mia.date_of_birth.isoformat(),
            "photo": photo,
        }
        return ana.post(f"/account/students/{mia.pk}/edit/", data)

    for _ in range(limits.PHOTO.allowed):
        assert send(upload("mia.png", image_bytes())).status_code == 302
    refused = send(upload("mia.png", b"not an image at all"))
    html = refused.content.decode()
    assert refused.status_code == 200
    assert "Too many tries. Try again in 60 minutes." in html and 'id="id_photo_error"' in html
    assert "is not a PNG, JPEG or WebP" not in html
