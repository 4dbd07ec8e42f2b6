"""The logo staff upload (checked, re-encoded, removable) and the websites
allowed to frame the portal (checked, normalised, refused framings noted
with a one-click "allow")."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django_tenants.utils import schema_context
from PIL import Image

from conftest import client_for, login
from providers.branding import logo_clean, origin_normalise, origins_clean
from providers.middleware import note_keys
from providers.models import FramingAttempt, Provider, SettingsChange
from tests.htmlforms import form_data

pytestmark = pytest.mark.django_db

SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)


def image_file(kind: str, size=(900, 600), mode="RGBA", name=None, exif=True) -> SimpleUploadedFile:
    image = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    buffer = io.BytesIO()
    options = {}
    if exif:
        data = Image.Exif()
        data[0x010E] = "secret description"  # ImageDescription
        data[0x013B] = "Photographer Name"  # Artist
        options["exif"] = data.tobytes()
    image.save(buffer, kind, **options)
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[kind]
    return SimpleUploadedFile(name or f"logo.{extension}", buffer.getvalue())


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    "kind,mode", [("PNG", "RGBA"), ("JPEG", "RGB"), ("WEBP", "RGBA"), ("PNG", "RGB")]
)
def test_a_logo_is_re_encoded_without_metadata_and_at_most_512_px(kind, mode):
    upload = image_file(kind, mode=mode)
    assert b"Photographer Name" in upload.read()
    cleaned = logo_clean(upload)
    data = cleaned.read()
    image = opened(data)
    assert image.format == kind and max(image.size) == 512 and image.size == (512, 341)
    assert b"Photographer Name" not in data and b"secret description" not in data
    assert not image.getexif() and "exif" not in image.info
    if kind != "JPEG":
        assert image.mode == mode  # transparency kept
    assert cleaned.name.endswith({"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}[kind])


def test_svg_other_files_and_large_files_are_refused_with_a_message():
    with pytest.raises(ValidationError, match="SVG logos are not accepted"):
        logo_clean(SimpleUploadedFile("logo.svg", SVG))
    with pytest.raises(ValidationError, match="SVG logos are not accepted"):
        logo_clean(SimpleUploadedFile("logo.png", SVG))  # whatever its name says
    with pytest.raises(ValidationError, match="not a PNG, JPEG or WebP"):
        logo_clean(SimpleUploadedFile("logo.gif", gif_bytes()))
    with pytest.raises(ValidationError, match="not a PNG, JPEG or WebP"):
        logo_clean(SimpleUploadedFile("logo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100))
    big = SimpleUploadedFile("logo.png", b"\x89PNG" + b"0" * (1024 * 1024 + 1))
    with pytest.raises(ValidationError, match="at most 1 MB"):
        logo_clean(big)


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, "GIF")
    return buffer.getvalue()


@pytest.fixture
def owner(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


def settings_data(client, **extra):
    data = form_data(client.get("/staff/settings/").content.decode(), "settings-form")
    data.update(extra)
    return data


def test_staff_upload_replace_and_remove_the_logo_on_the_settings_page(
    owner, aquakids, ana, django_capture_on_commit_callbacks
):
    refused = owner.post(
        "/staff/settings/",
        settings_data(owner, logo_file=SimpleUploadedFile("logo.svg", SVG)),
    )
    assert refused.status_code == 200
    assert (
        "SVG logos are not accepted: upload a PNG, JPEG or WebP file." in refused.content.decode()
    )
    big = SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (1024 * 1024 + 10))
    too_large = owner.post("/staff/settings/", settings_data(owner, logo_file=big))
    assert "at most 1 MB" in too_large.content.decode()
    assert not Provider.objects.get(pk=aquakids.pk).logo

    saved = owner.post(
        "/staff/settings/", settings_data(owner, logo_file=image_file("JPEG", mode="RGB"))
    )
    assert saved.status_code == 302
    provider = Provider.objects.get(pk=aquakids.pk)
    assert provider.logo.name.startswith("branding/logo") and provider.logo.name.endswith(".jpg")
    change = SettingsChange.objects.get(provider=aquakids, field="logo")
    assert change.new == provider.logo.name and change.changed_by == "staff@aquakids.test"
    # Served on the provider's host, shown in the portal's top bar.
    served = ana.get("/branding/logo")
    data = b"".join(served.streaming_content)
    assert served["Content-Type"] == "image/jpeg" and opened(data).size == (512, 341)
    assert b"Photographer Name" not in data
    assert "/branding/logo?v=" in ana.get("/").content.decode()
    # Stored with the provider's files.
    with schema_context(aquakids.schema_name):
        assert provider.logo.storage.exists(provider.logo.name)
        assert f"/{aquakids.schema_name}/branding/" in provider.logo.path

    with django_capture_on_commit_callbacks(execute=True):
        removed = owner.post("/staff/settings/", settings_data(owner, logo_remove="on"))
    assert removed.status_code == 302
    assert not Provider.objects.get(pk=aquakids.pk).logo
    assert ana.get("/branding/logo").status_code == 404
    with schema_context(aquakids.schema_name):
        assert not provider.logo.storage.exists(provider.logo.name)  # the old file is gone
    assert SettingsChange.objects.filter(provider=aquakids, field="logo").count() == 2


@pytest.fixture
def operator(db):
    connection.set_schema_to_public()
    from accounts.models import User

    client = client_for("public")
    client.force_login(User.objects.get(email="admin@portal.test"))
    return client


def test_the_platform_admin_checks_the_logo_the_same_way(operator, aquakids):
    url = f"/admin/providers/provider/{aquakids.pk}/change/"
    page = operator.get(url).content.decode()
    data = form_data(page, "provider_form")
    refused = operator.post(url, {**data, "logo_file": SimpleUploadedFile("x.svg", SVG)})
    assert refused.status_code == 200
    assert "SVG logos are not accepted" in refused.content.decode()
    big = SimpleUploadedFile("big.webp", b"RIFF" + b"0" * (1024 * 1024 + 10))
    assert "at most 1 MB" in operator.post(url, {**data, "logo_file": big}).content.decode()
    saved = operator.post(url, {**data, "logo_file": image_file("WEBP", size=(1000, 1000))})
    assert saved.status_code == 302
    provider = Provider.objects.get(pk=aquakids.pk)
    assert provider.logo.name.endswith(".webp")
    # Saved with the provider's files, not the platform's: its host serves it.
    with schema_context(aquakids.schema_name):
        assert opened(provider.logo.read()).size == (512, 512)
    change = SettingsChange.objects.get(provider=aquakids, field="logo")
    assert change.changed_by == "admin@portal.test"
    removed = operator.post(
        url, {**form_data(operator.get(url).content.decode(), "provider_form"), "logo_remove": "on"}
    )
    assert removed.status_code == 302 and not Provider.objects.get(pk=aquakids.pk).logo


# --- Websites allowed to frame the portal ------------------------------------------------


def test_origins_are_checked_and_normalised():
    assert origin_normalise("HTTPS://WWW.Example.com:443/") == "https://www.example.com"
    assert origin_normalise("http://localhost:8001") == "http://localhost:8001"
    assert origin_normalise("https://example.com/page") is None
    assert origin_normalise("example.com") is None
    assert (
        origins_clean("https://a.example\n\n  https://A.example/ \nhttp://127.0.0.1:8001")
        == "https://a.example\nhttp://127.0.0.1:8001"
    )
    with pytest.raises(ValidationError) as refused:
        origins_clean("https://ok.example\nhttp://shop.example\nwww.example.com/page")
    messages = refused.value.messages
    assert messages == [
        "Line 2, “http://shop.example”: the website must use https:// (http:// only for "
        "localhost).",
        "Line 3, “www.example.com/page”, is not a website address: write it as "
        "https://www.example.com, without a path.",
    ]


def test_staff_edit_the_allowed_websites_on_the_embed_page(owner, aquakids):
    page = owner.get("/staff/embed/").content.decode()
    assert 'name="embed_origins"' in page
    refused = owner.post("/staff/embed/", {"embed_origins": "https://ok.example\nftp://x"})
    assert refused.status_code == 200
    assert "Line 2, “ftp://x”, is not a website address" in refused.content.decode()
    assert Provider.objects.get(pk=aquakids.pk).embed_origins == "http://127.0.0.1:8001"
    saved = owner.post(
        "/staff/embed/", {"embed_origins": "http://127.0.0.1:8001\nHTTPS://Www.Aquakids.example/"}
    )
    assert saved.status_code == 302
    provider = Provider.objects.get(pk=aquakids.pk)
    assert provider.allowed_frame_origins == [
        "http://127.0.0.1:8001",
        "https://www.aquakids.example",
    ]
    change = SettingsChange.objects.get(provider=aquakids, field="embed_origins")
    assert change.changed_by == "staff@aquakids.test"
    # In effect at once.
    csp = owner.get("/accounts/login/")["Content-Security-Policy"]
    assert csp == "frame-ancestors 'self' http://127.0.0.1:8001 https://www.aquakids.example"


def test_the_settings_page_checks_the_allowed_websites_too(owner, aquakids):
    refused = owner.post(
        "/staff/settings/", settings_data(owner, embed_origins="https://fine.example\nnope")
    )
    assert "Line 2, “nope”, is not a website address" in refused.content.decode()


def framed(client, referer, path="/accounts/login/"):
    return client.get(path, HTTP_SEC_FETCH_DEST="iframe", HTTP_REFERER=referer)


def test_refused_framings_are_noted_and_staff_allow_a_site_in_one_click(owner, aquakids):
    visitor = client_for("aquakids")
    framed(visitor, "https://www.aquakids-swim.example/timetable?x=1")
    framed(visitor, "https://www.aquakids-swim.example/other")
    framed(visitor, "http://127.0.0.1:8001/")  # allowed
    framed(visitor, "http://aquakids.localhost/")  # the portal itself
    visitor.get("/accounts/login/", HTTP_REFERER="https://elsewhere.example/")  # not a frame
    framed(visitor, "https://elsewhere.example/", path="/staff/embed/")  # never framed anyway
    attempts = FramingAttempt.objects.filter(provider=aquakids)
    attempt = attempts.exclude(origin__startswith="http://127.0.0.1").get()
    assert attempt.origin == "https://www.aquakids-swim.example"
    assert attempt.count == 1  # the second within the minute is counted, not yet written
    connection.set_tenant(aquakids)  # cache keys carry the schema
    cache.delete(note_keys(aquakids.pk, attempt.origin)[1])  # a minute later
    framed(visitor, "https://www.aquakids-swim.example/")
    attempt.refresh_from_db()
    assert attempt.count == 3 and attempt.last_seen >= attempt.first_seen

    page = owner.get("/staff/embed/").content.decode()
    assert "https://www.aquakids-swim.example" in page and "Allow this site" in page
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    manager = login(client_for("aquakids"), aquakids, "manager@aquakids.test")
    assert "Allow this site" not in manager.get("/staff/embed/").content.decode()
    for refused in (desk, manager):
        assert refused.post(f"/staff/embed/allow/{attempt.pk}/").status_code == 403
        assert refused.post("/staff/embed/", {"embed_origins": ""}).status_code == 403
    assert Provider.objects.get(pk=aquakids.pk).embed_origins == "http://127.0.0.1:8001"
    assert owner.get(f"/staff/embed/allow/{attempt.pk}/").status_code == 405

    allowed = owner.post(f"/staff/embed/allow/{attempt.pk}/")
    assert allowed.status_code == 302
    provider = Provider.objects.get(pk=aquakids.pk)
    assert provider.allowed_frame_origins == [
        "http://127.0.0.1:8001",
        "https://www.aquakids-swim.example",
    ]
    assert SettingsChange.objects.filter(provider=aquakids, field="embed_origins").exists()
    assert "Allow this site" not in owner.get("/staff/embed/").content.decode()
    # Now allowed: framing it is no longer noted.
    cache.clear()
    framed(visitor, "https://www.aquakids-swim.example/")
    attempt.refresh_from_db()
    assert attempt.count == 3


def test_another_providers_refused_sites_are_not_reachable(owner, aquakids, leaps):
    framed(client_for("leaps"), "https://leaps-site.example/")
    attempt = FramingAttempt.objects.get(provider=leaps, origin="https://leaps-site.example")
    assert owner.post(f"/staff/embed/allow/{attempt.pk}/").status_code == 404
    assert "leaps-site" not in owner.get("/staff/embed/").content.decode()


def test_a_website_without_https_cannot_be_allowed(owner, aquakids):
    framed(client_for("aquakids"), "http://plain.example/page")
    attempt = FramingAttempt.objects.get(provider=aquakids, origin="http://plain.example")
    response = owner.post(f"/staff/embed/allow/{attempt.pk}/", follow=True)
    assert "the website must use https://" in response.content.decode()
    assert Provider.objects.get(pk=aquakids.pk).embed_origins == "http://127.0.0.1:8001"
