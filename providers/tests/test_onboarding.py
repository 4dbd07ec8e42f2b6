"""Creating providers from the platform admin (schema made by a Celery task,
nothing half-made on failure) and staff editing their settings."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_exists

from conftest import client_for, login
from providers.models import Domain, Provider, SettingsChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    connection.set_schema_to_public()
    from accounts.models import User

    client = client_for("public")
    client.force_login(User.objects.get(email="admin@portal.test"))
    return client


def add_provider(operator, slug, name):
    return operator.post(
        "/admin/providers/provider/add/",
        {
            "name": name,
            "slug": slug,
            "kind": "swim",
            "currency": "EUR",
            "time_zone": "Europe/Vienna",
            "language": "de",
            "country": "AT",
            "primary_colour": "#006d77",
            "accent_colour": "#ffb703",
            "makeup_token_days": 60,
            "makeup_notice_hours": 24,
            "makeup_booking_window_hours": 2,
            "expiry_reminder_days": 7,
            "cancel_waitlist_enabled": "on",
            "future_absences_enabled": "on",
            "invoices_enabled": "on",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "0",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-domain": f"{slug}.localhost",
            "domains-0-is_primary": "on",
        },
        follow=True,
    )


def test_operator_creates_a_provider_ready_to_log_in(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = add_provider(operator, "wellen", "Wellen Schwimmschule")
    assert "is being set up" in response.content.decode()
    provider = Provider.objects.get(slug="wellen")
    assert provider.status == "ready" and schema_exists("wellen")
    page = client_for("public").get("/accounts/login/", HTTP_HOST="wellen.localhost")
    assert page.status_code == 200 and b"--brand:#006d77" in page.content


def test_a_failed_setup_leaves_nothing_reachable_and_keeps_what_was_there(
    operator, django_capture_on_commit_callbacks
):
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "clash"; CREATE TABLE "clash".keep_me (id int)')
    with django_capture_on_commit_callbacks(execute=True):
        add_provider(operator, "clash", "Clash Club")
    provider = Provider.objects.get(slug="clash")
    assert provider.status == "failed" and "exists already" in provider.setup_error
    assert not Domain.objects.filter(tenant=provider).exists()
    assert client_for("public").get("/", HTTP_HOST="clash.localhost").status_code == 404
    with connection.cursor() as cursor:  # someone else's schema is untouched
        cursor.execute("SELECT to_regclass('clash.keep_me')")
        assert cursor.fetchone()[0] is not None
    listing = operator.get("/admin/providers/provider/").content.decode()
    assert "Set-up failed" in listing


def test_a_provider_being_set_up_shows_a_plain_page(db):
    provider = Provider.objects.get(slug="leaps")
    Provider.objects.filter(pk=provider.pk).update(status="creating")
    response = client_for("leaps").get("/accounts/login/")
    assert response.status_code == 503 and b"being set up" in response.content


def test_staff_change_settings_with_preview_and_a_record(aquakids, ana):
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    page = staff.get("/staff/settings/").content.decode()
    assert "Live preview" in page and 'type="color"' in page
    preview = staff.post(
        "/staff/settings/preview/", {"primary_colour": "#ffff00", "accent_colour": "#000000"}
    )
    assert "--on-brand:#000000" in preview.content.decode()  # dark text on yellow
    data = {
        f: getattr(aquakids, f) for f in __import__("providers.services").services.SETTINGS_FIELDS
    }
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data.update({"primary_colour": "#2e7d32", "drop_enabled": None})
    data = {k: v for k, v in data.items() if v is not None}
    response = staff.post("/staff/settings/", data)
    assert response.status_code == 302
    changes = {c.field: c for c in SettingsChange.objects.filter(provider=aquakids)}
    assert set(changes) == {"primary_colour", "drop_enabled"}
    assert changes["primary_colour"].changed_by == "staff@aquakids.test"
    assert changes["drop_enabled"].old == "True" and changes["drop_enabled"].new == "False"
    # In effect at once: the colour, and the switched-off feature refuses.
    assert "--brand:#2e7d32" in ana.get("/").content.decode()
    connection.set_tenant(aquakids)
    from enrollments.models import Enrollment

    enrollment = Enrollment.objects.filter(student__first_name="Mia", kind="regular").first()
    assert ana.get(f"/enrolments/{enrollment.pk}/drop/").status_code == 404
    assert ana.get("/staff/settings/").status_code == 404


def test_a_provider_without_a_host_name_gets_its_default_and_its_owner_an_invitation(
    operator, django_capture_on_commit_callbacks
):
    """The platform operator gives a name, a slug and the owner's e-mail:
    the provider answers on <slug>.<PORTAL_BASE_DOMAIN>, and the owner
    chooses a password from the e-mail and reaches the provider's admin."""
    import re

    from django.core import mail

    data = {
        "name": "Delfin Club",
        "slug": "delfin",
        "kind": "swim",
        "currency": "EUR",
        "time_zone": "Europe/Vienna",
        "language": "en",
        "country": "AT",
        "primary_colour": "#006d77",
        "accent_colour": "#ffb703",
        "makeup_token_days": 60,
        "makeup_notice_hours": 24,
        "makeup_booking_window_hours": 2,
        "expiry_reminder_days": 7,
        "first_owner_email": "Olga@Delfin.test",
        "domains-TOTAL_FORMS": "0",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
    }
    with django_capture_on_commit_callbacks(execute=True):
        operator.post("/admin/providers/provider/add/", data, follow=True)
    provider = Provider.objects.get(slug="delfin")
    assert provider.status == "ready", provider.setup_error
    assert list(provider.domains.values_list("domain", "is_primary")) == [
        ("delfin.localhost", True)
    ]
    invitation = next(m for m in mail.outbox if m.to == ["olga@delfin.test"])
    assert "Delfin Club" in invitation.subject
    link = re.search(r"http://delfin\.localhost(/accounts/password/reset/\S+/)", invitation.body)
    assert link, invitation.body

    owner = client_for("public")
    form = owner.get(link.group(1), HTTP_HOST="delfin.localhost", follow=True)
    owner.post(
        form.redirect_chain[-1][0],
        {"new_password1": "Owner-pass-31337", "new_password2": "Owner-pass-31337"},
        HTTP_HOST="delfin.localhost",
    )
    desk = client_for("public")
    logged = desk.post(
        "/admin/login/?next=/admin/",
        {"username": "olga@delfin.test", "password": "Owner-pass-31337"},
        HTTP_HOST="delfin.localhost",
    )
    assert logged.status_code == 302
    assert desk.get("/admin/accounts/user/add/", HTTP_HOST="delfin.localhost").status_code == 200
    # The operator's login means nothing at the provider, and the owner's
    # nothing on the platform.
    assert operator.get("/admin/", HTTP_HOST="delfin.localhost").status_code == 302
    assert desk.get("/admin/providers/provider/").status_code == 302


def test_the_command_line_invites_the_first_owner(db, django_capture_on_commit_callbacks):
    import io

    from django.core import mail
    from django.core.management import call_command

    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "create_provider", "orca", "Orca Swim", "--owner-email", "kim@orca.test",
            stdout=io.StringIO(),
        )  # fmt: skip
    assert Provider.objects.get(slug="orca").domains.get().domain == "orca.localhost"
    invitation = next(m for m in mail.outbox if m.to == ["kim@orca.test"])
    assert "https://orca.localhost/accounts/password/reset/" in invitation.body


def test_a_text_area_sent_back_unchanged_records_no_change(aquakids):
    """Browsers send a text area's lines ending in CRLF; the stored text ends
    them in LF. Saving the page untouched changes nothing."""
    from providers.services import provider_settings_update

    provider_settings_update(
        provider=aquakids, changes={"legal_address": "Street 1\n1000 Town"}, changed_by="a"
    )
    again = provider_settings_update(
        provider=aquakids, changes={"legal_address": "Street 1\r\n1000 Town"}, changed_by="a"
    )
    assert again == []
    assert SettingsChange.objects.filter(provider=aquakids, field="legal_address").count() == 1
