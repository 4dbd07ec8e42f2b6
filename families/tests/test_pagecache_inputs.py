"""Every input that shapes a cached family page is in its key: each page
found through the URL resolver is rendered with each of its inputs (query
parameters, choices kept in the session, the HTMX variant) in two sessions of
the same login, and the cached answer must equal an uncached render."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.db import connection
from django.http import QueryDict
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from conftest import client_for, login
from enrollments.models import Location
from families.models import Student
from families.pagecache import family_page
from portal.sections import sections_for
from portal.tenancy import use_provider

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": )"[^"]+"')


def family_pages() -> list[tuple[str, URLPattern]]:
    """(route, pattern) of every URL whose view is a cached family page."""
    found: list[tuple[str, URLPattern]] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif getattr(pattern.callback, "family_page", False):
                found.append((prefix + str(pattern.pattern), pattern))

    walk(get_resolver().url_patterns, "/")
    return found


@dataclass
class Variant:
    query: dict[str, str] = field(default_factory=dict)
    session: dict[str, object] = field(default_factory=dict)
    htmx: bool = False


def samples(aquakids) -> dict[str, dict]:
    """Values to try for each input a family page reads; a page reading an
    input not listed here fails the test until its values are added."""
    use_provider(aquakids)
    mia = Student.objects.get(first_name="Mia", last_name="Novak")
    leo = Student.objects.get(first_name="Leo", last_name="Novak")
    locations = list(Location.objects.filter(is_active=True).values_list("pk", flat=True))
    assert len(locations) >= 2
    return {
        "path": {"key": [s.key for s in sections_for(aquakids)]},
        "query": {
            "child": [str(mia.pk), str(leo.pk)],
            "tab": ["charges", "payments"],
            "page": ["2"],
            "part": ["history", "invoices"],
            "invoices": ["2"],
        },
        "session": {"location_id": locations, "pay_only": [987654]},
    }


def urls_for(route: str, path_samples: dict[str, list[str]]) -> list[str]:
    names = re.findall(r"<(?:\w+:)?(\w+)>", route)
    assert all(name in path_samples for name in names), f"no sample values for {route}"
    urls = [route]
    for name in names:
        urls = [
            re.sub(rf"<(?:\w+:)?{name}>", str(value), url)
            for url in urls
            for value in path_samples[name]
        ]
    return urls


def query_params_read(client, url: str, monkeypatch) -> set[str]:
    """The query parameters a page reads, whatever the value."""
    read: set[str] = set()
    original_get, original_getitem = QueryDict.get, QueryDict.__getitem__

    def get(self, key, default=None):
        read.add(key)
        return original_get(self, key, default)

    def getitem(self, key):
        read.add(key)
        return original_getitem(self, key)

    def getlist(self, key, default=None):
        read.add(key)
        return []

    with monkeypatch.context() as patch:
        patch.setattr(QueryDict, "get", get)
        patch.setattr(QueryDict, "__getitem__", getitem)
        patch.setattr(QueryDict, "getlist", getlist)
        with override_settings(PAGE_CACHE=False):
            client.get(url)
            client.get(url, HTTP_HX_REQUEST="true")
    return read


def set_session(client, values: dict[str, object], inputs: tuple[str, ...]) -> None:
    session = client.session
    for name in inputs:
        session.pop(name, None)
    session.update(values)
    session.save()


def fetch(client, url: str, variant: Variant):
    query = "&".join(f"{k}={v}" for k, v in variant.query.items())
    headers = {"HTTP_HX_REQUEST": "true"} if variant.htmx else {}
    return client.get(f"{url}?{query}" if query else url, **headers)


def body(response) -> bytes:
    return CSRF.sub(b"", response.content)


def test_the_page_cache_key_holds_every_input_of_every_family_page(aquakids, monkeypatch):
    values = samples(aquakids)
    first, second = (login(client_for("aquakids"), aquakids, "ana@aquakids.test") for _ in range(2))
    pages = family_pages()
    assert {"/", "/benefits/makeups/", "/billing/"} <= {route for route, _ in pages}
    checked = 0
    for route, pattern in pages:
        inputs = pattern.callback.session_inputs
        assert all(name in values["session"] for name in inputs), route
        for url in urls_for(route, values["path"]):
            params = sorted(query_params_read(first, url, monkeypatch))
            unknown = [p for p in params if p not in values["query"]]
            assert not unknown, f"{url} reads {unknown}: add sample values"
            variants = [Variant(), Variant(htmx=True)]
            variants += [Variant(query={p: v}) for p in params for v in values["query"][p]]
            variants += [Variant(session={n: v}) for n in inputs for v in values["session"][n]]
            for index, mine in enumerate(variants):
                theirs = variants[(index + 1) % len(variants)]
                cache.clear()
                set_session(first, mine.session, inputs)
                set_session(second, theirs.session, inputs)
                answers = [fetch(c, url, v) for c, v in [(first, mine), (second, theirs)] * 2]
                with override_settings(PAGE_CACHE=False):
                    fresh = [fetch(first, url, mine), fetch(second, url, theirs)]
                for answer, expected in zip(answers, fresh * 2, strict=True):
                    assert answer.status_code == expected.status_code, (url, mine, theirs)
                    assert body(answer) == body(expected), (url, mine, theirs)
                if fresh[0].status_code == 200:
                    assert answers[2]["X-Page-Cache"] == "hit", (url, mine)  # cached at all
                checked += 1
    assert checked > 40


def test_the_location_choice_shows_at_once_and_stays_in_its_own_session(aquakids):
    """The make-ups page groups tokens by the location chosen in this browser."""
    connection.set_tenant(aquakids)
    tivoli = Location.objects.get(name="Tivoli Pool")
    phone, laptop = (login(client_for("aquakids"), aquakids, "ana@aquakids.test") for _ in range(2))
    assert b"Available at" not in phone.get("/benefits/makeups/").content
    laptop.get("/benefits/makeups/")
    chosen = phone.post("/location/", {"location": tivoli.pk, "next": "/benefits/makeups/"})
    assert chosen.status_code == 302
    page = phone.get("/benefits/makeups/").content.decode()
    assert "Available at Tivoli Pool" in page
    assert "Usable at other locations" in page
    other = laptop.get("/benefits/makeups/")
    assert other["X-Page-Cache"] == "hit"
    assert b"Available at" not in other.content


def test_a_page_reading_a_session_choice_it_did_not_declare_is_not_cached(
    aquakids, monkeypatch, caplog
):
    """A forgotten declaration costs speed, never a wrong page."""
    pattern = dict(family_pages())["/benefits/makeups/"]
    undeclared = family_page(pattern.callback.__wrapped__)  # no session_inputs
    monkeypatch.setattr(pattern, "callback", undeclared)
    connection.set_tenant(aquakids)
    tivoli = Location.objects.get(name="Tivoli Pool")
    phone, laptop = (login(client_for("aquakids"), aquakids, "ana@aquakids.test") for _ in range(2))
    set_session(phone, {"location_id": tivoli.pk}, ("location_id",))
    answers = [phone.get("/benefits/makeups/"), laptop.get("/benefits/makeups/")]
    assert [a["X-Page-Cache"] for a in answers] == ["miss", "miss"]
    assert b"Available at Tivoli Pool" in answers[0].content
    assert b"Available at" not in answers[1].content
    assert "read location_id from the session without declaring it" in caplog.text


def test_the_same_query_in_another_order_is_the_same_page(aquakids, ana):
    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", last_name="Novak")
    first = ana.get(f"/billing/?tab=charges&child={mia.pk}")
    again = ana.get(f"/billing/?child={mia.pk}&tab=charges")
    assert [first["X-Page-Cache"], again["X-Page-Cache"]] == ["miss", "hit"]
    other = ana.get(f"/billing/?child={mia.pk}&tab=payments")
    assert other["X-Page-Cache"] == "miss"
