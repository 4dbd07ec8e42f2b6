from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from accounts.models import User
from conftest import client_for
from families.models import Family, Guardian, Student
from providers.models import Domain, Provider

pytestmark = pytest.mark.django_db


def test_create_provider_makes_schema_domain_and_staff_login():
    call_command(
        "create_provider",
        "splash",
        "Splash Swim Club",
        "--primary-colour=#006d77",
        "--staff-email=desk@splash.test",
        "--staff-password=long-enough-pass",
        stdout=io.StringIO(),
    )
    provider = Provider.objects.get(slug="splash")
    assert schema_exists("splash")
    assert Domain.objects.get(tenant=provider).domain == "splash.localhost"
    with schema_context("splash"):
        assert User.objects.get(email="desk@splash.test").is_staff
        assert Family.objects.count() == 0
    page = client_for("aquakids").get("/accounts/login/", HTTP_HOST="splash.localhost")
    assert b"Log in to Splash Swim Club" in page.content
    assert b"--brand:#006d77" in page.content


def test_create_provider_refuses_a_duplicate_or_bad_settings():
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_provider", "aquakids", "Again", stdout=io.StringIO())
    with pytest.raises(CommandError, match="time zone"):
        call_command(
            "create_provider", "tz-bad", "Bad", "--time-zone=Mars/Base", stdout=io.StringIO()
        )
    assert not Provider.objects.filter(slug="tz-bad").exists()
    assert not schema_exists("tz_bad")


def counts():
    result = {"providers": Provider.objects.count(), "domains": Domain.objects.count()}
    for slug in ("aquakids", "leaps"):
        with schema_context(slug):
            result[slug] = (
                User.objects.count(),
                Family.objects.count(),
                Guardian.objects.count(),
                Student.objects.count(),
            )
    return result


def test_seed_demo_is_idempotent_and_has_the_documented_people():
    before = counts()
    call_command("seed_demo", stdout=io.StringIO())
    connection.set_schema_to_public()
    assert counts() == before
    with schema_context("aquakids"):
        ana = Guardian.objects.get(user__email="ana@aquakids.test")
        sam = Guardian.objects.get(user__email="sam@aquakids.test")
        assert ana.is_primary and ana.full_name == "Ana Novak"
        assert not sam.is_primary and not sam.may_pay and sam.family_id == ana.family_id
        assert sorted(s.first_name for s in ana.family.students.all()) == ["Leo", "Mia"]
        ben = Guardian.objects.get(user__email="ben@aquakids.test")
        assert [s.full_name for s in ben.family.students.all()] == ["Noah Okafor"]
        assert User.objects.get(email="staff@aquakids.test").is_staff
    with schema_context("leaps"):
        cara = Guardian.objects.get(user__email="cara@leaps.test")
        assert sorted(s.first_name for s in cara.family.students.all()) == ["Ella", "Finn", "Zoe"]
    assert User.objects.get(email="admin@portal.test").is_superuser
    aquakids = Provider.objects.get(slug="aquakids")
    leaps = Provider.objects.get(slug="leaps")
    assert aquakids.makeup_tokens_enabled and aquakids.online_payments and aquakids.invoices_enabled
    assert leaps.makeup_requests_enabled and not leaps.online_payments
    assert aquakids.primary_colour != leaps.primary_colour


def test_new_providers_are_cloned_from_the_template_and_complete():
    from django.conf import settings as django_settings
    from django.contrib.auth.models import Permission

    from providers.services import provider_create

    template = Provider.objects.get(schema_name=django_settings.TENANT_BASE_SCHEMA)
    assert not template.domains.exists()
    assert template not in Provider.objects.real()
    provider = provider_create(
        slug="clone-test", name="Clone Test", domains=["clone-test.localhost"]
    )
    with schema_context(provider.schema_name):
        assert Permission.objects.exists()  # data made by migrations came along
        assert Family.objects.count() == 0
        User.objects.create_user("someone@clone.test", "long-enough-pass")
    with schema_context(template.schema_name):
        assert not User.objects.filter(email="someone@clone.test").exists()
