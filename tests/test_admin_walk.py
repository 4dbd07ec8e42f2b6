"""Every admin page of both sites, as staff with every permission would use
it: each changelist, add page and change page opens, each admin's sample is
submitted on its add form, each change form is saved as shown, and each
action runs. No page answers 500; an admin without a sample fails."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client

from conftest import client_for, login
from portal.adminsample import AdminSample
from providers.admin import platform_site
from tests.htmlforms import form_data

pytestmark = pytest.mark.django_db


def sample_of(model_admin) -> AdminSample:
    sample = getattr(model_admin, "sample", None)
    assert isinstance(sample, AdminSample), (
        f"{type(model_admin).__name__} declares no AdminSample (portal/adminsample.py)"
    )
    return sample


def errors_in(html: str) -> str:
    import re

    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    found += re.findall(r'<div class="errornote[^"]*"[^>]*>(.*?)</div>', html, re.S)
    return " | ".join(re.sub(r"<[^>]+>", "", e).strip() for e in found)


def walk(client: Client, site, enter) -> list[str]:
    """Problems found, one line each."""
    problems = []

    def check(what, response, allowed=(200, 302)):
        if response.status_code not in allowed:
            problems.append(f"{what}: {response.status_code}")
        return response

    for model, model_admin in list(site._registry.items()):
        enter()
        sample = sample_of(model_admin)
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        check(f"{base} list", client.get(base), (200,))
        page = client.get(base + "add/")
        if sample.add is None:
            check(f"{base} add (declared none)", page, (403,))
        else:
            check(f"{base} add", page, (200,))
            if page.status_code == 200:
                enter()
                data = form_data(page.content.decode(), f"{model._meta.model_name}_form")
                data.update({k: v if isinstance(v, list) else [v] for k, v in sample.add().items()})
                saved = client.post(base + "add/", data)
                check(f"{base} add sample", saved, (302,))
                if saved.status_code == 200:
                    problems.append(
                        f"{base} add sample refused: {errors_in(saved.content.decode())}"
                    )
        enter()
        queryset = model_admin.get_queryset(_request(client, site)).order_by("pk")
        if not queryset.exists() and sample.make is not None:
            sample.make()
        obj = queryset.first()
        if obj is None:
            problems.append(f"{base}: no object to open (the demo data should have one)")
            continue
        change = check(f"{base} change", client.get(f"{base}{obj.pk}/change/"), (200,))
        html = change.content.decode()
        if change.status_code == 200 and 'name="_save"' in html:  # the form offers Save
            data = form_data(html, f"{model._meta.model_name}_form")
            saved = check(
                f"{base} change saved as shown",
                client.post(f"{base}{obj.pk}/change/", data),
                (302,),
            )
            if saved.status_code == 200:
                problems.append(
                    f"{base} change refused as shown: {errors_in(saved.content.decode())}"
                )
        enter()
        for name in model_admin.get_actions(_request(client, site)):
            values = sample.actions.get(name, lambda obj: {})(obj)
            enter()
            response = client.post(
                base, {"action": name, "_selected_action": [obj.pk], "index": 0, **values}
            )
            # A sample that applies an action's form must get through it.
            check(f"{base} action {name}", response, (302,) if "apply" in values else (200, 302))
            if "apply" in values and response.status_code == 200:
                problems.append(
                    f"{base} action {name} refused: {errors_in(response.content.decode())}"
                )
    return problems


def _request(client, site):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    from accounts.models import User

    request.user = User.objects.get(pk=client.session["_auth_user_id"])
    return request


def test_every_provider_admin_page_and_sample(aquakids):
    client = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    client.raise_request_exception = False
    problems = walk(client, admin.site, lambda: connection.set_tenant(aquakids))
    assert not problems, "\n".join(problems)


def test_every_platform_admin_page_and_sample(db):
    from accounts.models import User

    client = client_for("public")
    client.raise_request_exception = False
    connection.set_schema_to_public()
    client.force_login(User.objects.get(email="admin@portal.test"))
    problems = walk(client, platform_site, connection.set_schema_to_public)
    assert not problems, "\n".join(problems)


def test_a_platform_login_can_be_deleted_and_the_platform_login_needs_no_next(db):
    """Deleting follows only the public schema's relations (a provider's
    staff views live in the provider's schema); logging in without ?next
    lands on the platform's pages."""
    from accounts.models import User

    connection.set_schema_to_public()
    gone = User.objects.create_user(email="leaving@portal.test", password="Sample-pass-4821")
    User.objects.filter(pk=gone.pk).update(is_staff=True)
    client = client_for("public")
    client.force_login(User.objects.get(email="admin@portal.test"))
    url = f"/admin/accounts/user/{gone.pk}/delete/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=gone.pk).exists()

    fresh = client_for("public")
    operator = User.objects.get(email="admin@portal.test")
    operator.set_password("Sample-pass-4821")
    operator.save()
    response = fresh.post(
        "/admin/login/", {"username": "admin@portal.test", "password": "Sample-pass-4821"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
