"""Providers are separate worlds: routing by host, branding, logins, sessions,
cache keys and response headers never cross from one provider to another."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection

from conftest import client_for, login

pytestmark = pytest.mark.django_db


def test_each_host_routes_to_its_provider_with_its_branding(aquakids, leaps):
    for slug, provider in (("aquakids", aquakids), ("leaps", leaps)):
        page = client_for(slug).get("/accounts/login/")
        html = page.content.decode()
        assert page.status_code == 200
        assert f"Log in to {provider.name}" in html
        assert f"--brand:{provider.primary_colour}" in html
        other = leaps if provider == aquakids else aquakids
        assert other.name not in html
        assert other.primary_colour not in html


def test_unknown_host_is_not_found(db):
    assert client_for("aquakids").get("/", HTTP_HOST="nobody.localhost").status_code == 404


def test_bare_host_serves_the_platform_not_a_provider(db):
    client = client_for("public")
    home = client.get("/")
    assert home.status_code == 200
    assert b"Platform admin" in home.content
    admin = client.get("/admin/", follow=True)
    assert b"Family portal: platform" in admin.content


def test_pages_redirect_to_login_when_logged_out(aquakids_client):
    for url in ["/", "/sections/children/", "/accounts/password/change/"]:
        response = aquakids_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_a_login_of_one_provider_does_not_exist_at_another(aquakids, leaps):
    response = client_for("leaps").post(
        "/accounts/login/", {"username": "ana@aquakids.test", "password": "portal-demo"}
    )
    assert response.status_code == 200
    assert "do not match an account here" in response.content.decode()
    at_home = client_for("aquakids").post(
        "/accounts/login/", {"username": "ana@aquakids.test", "password": "portal-demo"}
    )
    assert at_home.status_code == 302
    assert at_home["Location"] == "/"


def test_a_session_cookie_from_one_provider_means_nothing_at_another(aquakids, leaps):
    at_aquakids = login(client_for("aquakids"), aquakids, "ana@aquakids.test")
    assert at_aquakids.get("/").status_code == 200
    stolen = at_aquakids.cookies["sessionid"].value

    at_leaps = client_for("leaps")
    at_leaps.cookies["sessionid"] = stolen
    response = at_leaps.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_cache_keys_carry_the_provider(aquakids, leaps):
    connection.set_tenant(aquakids)
    cache.set("family-summary", "aquakids data")
    connection.set_tenant(leaps)
    assert cache.get("family-summary") is None
    connection.set_tenant(aquakids)
    assert cache.get("family-summary") == "aquakids data"


def test_frame_ancestors_name_exactly_the_providers_websites(aquakids, leaps):
    aquakids_csp = client_for("aquakids").get("/accounts/login/")["Content-Security-Policy"]
    assert aquakids_csp == "frame-ancestors 'self' http://127.0.0.1:8001"
    leaps_csp = client_for("leaps").get("/accounts/login/")["Content-Security-Policy"]
    assert leaps_csp == "frame-ancestors 'self'"


def test_session_and_csrf_cookies_work_in_a_third_party_iframe(aquakids):
    client = client_for("aquakids")
    page = client.get("/accounts/login/")
    csrf = page.cookies["csrftoken"].OutputString()
    response = client.post(
        "/accounts/login/", {"username": "ana@aquakids.test", "password": "portal-demo"}
    )
    session = response.cookies["sessionid"].OutputString()
    for header in (csrf, session):
        assert re.search(r"; Partitioned", header), header
        assert "SameSite=None" in header and "Secure" in header
    assert "HttpOnly" in session
