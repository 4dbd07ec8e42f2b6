"""The staff admin and the platform admin: throttled logins, never framed."""

from __future__ import annotations

import pytest
from django.conf import settings

from conftest import client_for

pytestmark = pytest.mark.django_db
DEMO = "portal-demo"


def admin_login(client, email, password):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


@pytest.mark.parametrize(
    ("slug", "email"), [("aquakids", "staff@aquakids.test"), ("public", "admin@portal.test")]
)
def test_admin_login_is_throttled_like_the_portals(slug, email, aquakids):
    client = client_for(slug)
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        refused = admin_login(client, email, "wrong")
        assert refused.status_code == 200
        assert "Too many failed attempts" not in refused.content.decode()
    locked = admin_login(client, email, DEMO)
    assert locked.status_code == 200
    assert "Too many failed attempts" in locked.content.decode()
    # Someone else at the same desk is not locked out by these attempts.
    other = "ben@aquakids.test" if slug == "aquakids" else "nobody@portal.test"
    assert (
        "Too many failed attempts"
        not in admin_login(client_for(slug), other, "wrong").content.decode()
    )


def test_the_right_password_logs_staff_in_before_the_limit(aquakids):
    client = client_for("aquakids")
    admin_login(client, "staff@aquakids.test", "wrong")
    assert admin_login(client, "staff@aquakids.test", DEMO).status_code == 302


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/staff/settings/", "/staff/embed/"])
def test_admin_and_staff_pages_refuse_every_frame(path, aquakids):
    response = client_for("aquakids").get(path)
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert client_for("public").get("/admin/login/")["Content-Security-Policy"] == (
        "frame-ancestors 'none'"
    )
    # The parent's pages still name the provider's website.
    portal = client_for("aquakids").get("/accounts/login/")["Content-Security-Policy"]
    assert portal == "frame-ancestors 'self' http://127.0.0.1:8001"


def test_staff_logging_in_at_the_admin_land_in_the_admin(aquakids):
    from conftest import client_for

    client = client_for("aquakids")
    form = client.get("/admin/login/").content.decode()
    assert 'action="/admin/login/?next=%2Fadmin%2F"' in form
    done = client.post(
        "/admin/login/?next=%2Fadmin%2F",
        {"username": "desk@aquakids.test", "password": "portal-demo"},
    )
    assert done.status_code == 302 and done.url == "/admin/"
