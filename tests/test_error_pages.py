"""The error pages: branded, say what happened and what to do, lead back to
the dashboard; the 500 and 503 pages need neither the database nor the cache
and never raise."""

from __future__ import annotations

import re

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import translation

from billing.tests.helpers import new_order
from conftest import client_for, login
from families.models import Family
from portal import errors
from portal.theme import NEUTRAL, Theme, contrast
from portal.views import server_error

AQUA_BLUE = "#0b63ce"
UNREACHABLE_CACHE = {
    name: {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
    for name in ("default", "hosts")
}


def accessible(html: str) -> None:
    """A language, a viewport for phones, one main heading, a way back."""
    assert re.search(r'<html lang="[a-z-]+">', html)
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert html.count("<h1>") == 1
    assert 'href="/"' in html and "Back to the dashboard" in html


def test_a_guardian_who_may_not_pay_is_told_why_and_whom_to_ask(aquakids):
    from portal.tenancy import use_provider

    use_provider(aquakids)
    order = new_order(family=Family.objects.get(name="Novak"))
    sam = login(client_for("aquakids"), aquakids, "sam@aquakids.test")

    response = sam.get(f"/billing/orders/{order.pk}/pay/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "Only a guardian who may pay can pay. Ask Ana Novak, the primary guardian." in html
    assert "Aqua Kids Swim School" in html and AQUA_BLUE in html
    accessible(html)


def test_a_secondary_guardian_is_told_whom_to_ask_to_book(aquakids):
    from benefits.models import MakeupToken
    from portal.tenancy import use_provider

    use_provider(aquakids)
    token = MakeupToken.objects.filter(student__family__name="Novak").first()
    if token is None:
        pytest.skip("the demo family has no token")
    sam = login(client_for("aquakids"), aquakids, "sam@aquakids.test")
    response = sam.get(f"/benefits/makeups/{token.pk}/book/")
    assert response.status_code == 403
    assert (
        "Only a guardian who may manage enrolments can do this. Ask Ana Novak, the primary "
        "guardian." in response.content.decode()
    )


@pytest.mark.parametrize("path", ["/no-such-page/", "/staff/no-such-page/", "/billing/orders/0/"])
def test_a_missing_page_explains_and_leads_back(ana, path):
    response = ana.get(path)
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page does not exist" in html
    assert "Aqua Kids Swim School" in html and AQUA_BLUE in html
    accessible(html)


def test_a_missing_page_on_the_bare_host_is_neutral(db):
    response = client_for("public").get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page does not exist" in html
    assert Theme.from_colours(NEUTRAL, NEUTRAL).css() in html
    accessible(html)


def test_the_server_error_page_needs_neither_database_nor_cache(rf, aquakids, django_db_blocker):
    request = rf.get("/billing/", HTTP_HOST="aquakids.localhost")
    request.tenant = aquakids  # as the host lookup left it on the request
    aquakids.theme  # noqa: B018 - computed from the row already in memory
    with django_db_blocker.block(), override_settings(CACHES=UNREACHABLE_CACHE):
        try:
            raise ValueError("a bug")
        except ValueError:
            failed = server_error(request)
        try:
            raise OperationalError("connection to server failed")
        except OperationalError:
            restarting = server_error(request)

    assert failed.status_code == 500
    html = failed.content.decode()
    assert "Something went wrong on our side" in html
    assert "Aqua Kids Swim School" in html and AQUA_BLUE in html
    accessible(html)
    assert restarting.status_code == 503 and restarting["Retry-After"] == "5"
    assert "Please try again in a moment" in restarting.content.decode()
    assert AQUA_BLUE in restarting.content.decode()


class Broken:
    """A provider whose every attribute fails."""

    is_public = False

    def __getattr__(self, name):
        raise RuntimeError("broken")


class BrokenTheme:
    is_public = False

    def __init__(self):
        self.name = "Odd Club"

    @property
    def theme(self):
        raise RuntimeError("no theme")


@pytest.mark.parametrize(
    "make_request",
    [
        lambda rf: None,
        lambda rf: object(),
        lambda rf: type("R", (), {"tenant": Broken()})(),
        lambda rf: type("R", (), {"tenant": BrokenTheme()})(),
        lambda rf: type("R", (), {"tenant": "not a provider"})(),
    ],
    ids=["none", "bare-object", "broken-provider", "broken-theme", "string-tenant"],
)
def test_the_500_and_503_pages_never_raise(rf, make_request, django_db_blocker):
    request = make_request(rf)
    with django_db_blocker.block(), override_settings(CACHES=UNREACHABLE_CACHE):
        try:
            raise ValueError("a bug")
        except ValueError:
            failed = server_error(request)
        unavailable = errors.unavailable(request)
    assert failed.status_code == 500 and "Something went wrong" in failed.content.decode()
    assert unavailable.status_code == 503
    assert "Please try again in a moment" in unavailable.content.decode()
    accessible(failed.content.decode())


def test_a_broken_template_falls_back_to_a_plain_page(rf, settings):
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [], "APP_DIRS": False, "OPTIONS": {"builtins": []}}
    ]
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and 'href="/"' in html


def test_the_pages_speak_the_providers_language(rf, aquakids):
    request = rf.get("/")
    request.tenant = aquakids
    with translation.override("de"):
        html = errors.page_not_found(request).content.decode()
    assert '<html lang="de">' in html


def test_the_error_pages_text_colours_reach_aa_on_every_brand():
    """The button's text on the brand and the links' ink on white."""
    for colour in ("#ffff00", "#00ff00", "#0b63ce", "#8e24aa", "#ffffff", "#000000"):
        theme = Theme.from_colours(colour, colour)
        assert contrast(theme.primary, theme.on_primary) >= 4.5
        assert contrast(theme.primary_ink, "#ffffff") >= 4.5


def test_a_provider_being_set_up_answers_the_branded_503(rf, aquakids):
    from portal.middleware import ProviderReadyMiddleware

    request = rf.get("/")
    request.tenant = aquakids
    aquakids.status = "creating"
    response = ProviderReadyMiddleware(lambda r: None)(request)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    html = response.content.decode()
    assert "This portal is being set up" in html and AQUA_BLUE in html


def test_a_form_without_its_security_token_says_what_to_do(aquakids):
    from django.test import Client

    from conftest import HOSTS

    client = login(
        Client(enforce_csrf_checks=True, HTTP_HOST=HOSTS["aquakids"]),
        aquakids,
        "ana@aquakids.test",
    )
    response = client.post("/location/", {"location": "1"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired or was sent from another page. Reload the page" in html
    assert "Aqua Kids Swim School" in html
    accessible(html)
