"""A staff login without permissions reaches nothing: every staff URL (read
from the URL conf) and every admin page and action (read from the registry)
answers 403. A parent gets 404 on staff URLs."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import User
from conftest import client_for, login
from enrollments.models import Class, Session
from families.models import Family, ProblemReport

pytestmark = pytest.mark.django_db


def staff_urls() -> list[tuple[str, object]]:
    """Every route under staff/, included URL confs too."""
    found: list[tuple[str, object]] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("staff/"):
                found.append((route, pattern.callback))

    walk(get_resolver("portal.urls").url_patterns, "")
    return found


def concrete(route: str) -> str:
    """A URL for the route: ids of real objects, so only permissions refuse."""
    if "<int:pk>" in route:
        if "reports" in route:
            pk = ProblemReport.objects.create(family=Family.objects.first(), page="/").pk
        elif "sessions" in route:
            pk = Session.objects.order_by("pk")[0].pk
        elif "classes" in route:
            pk = Class.objects.order_by("pk")[0].pk
        elif "make-up-requests" in route:
            pk = 1  # refused before it is looked up
        else:
            pk = Family.objects.order_by("pk")[0].pk
        route = route.replace("<int:pk>", str(pk))
    return "/" + route


@pytest.fixture
def bare_staff(aquakids):
    connection.set_tenant(aquakids)
    user = User.objects.create_user(email="bare@aquakids.test", password="Sample-pass-4821")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    return login(client_for("aquakids"), aquakids, "bare@aquakids.test")


def test_every_staff_url_names_its_permission_and_refuses_staff_without_it(bare_staff, aquakids):
    routes = staff_urls()
    assert len(routes) >= 5
    for route, view in routes:
        assert getattr(view, "staff_permission", None), f"/{route} checks no named permission"
        connection.set_tenant(aquakids)
        url = concrete(route)
        for method in ("get", "post"):
            status = getattr(bare_staff, method)(url).status_code
            assert status in (403, 405), (method, url, status)
        assert 403 in {bare_staff.get(url).status_code, bare_staff.post(url).status_code}


def test_parents_get_404_on_staff_urls(ana, aquakids):
    """Not even a 405: nothing tells a parent that a staff page exists."""
    for route, _view in staff_urls():
        connection.set_tenant(aquakids)
        url = concrete(route)
        assert ana.get(url).status_code == 404, url
        assert ana.post(url).status_code == 404, url


def test_every_admin_page_and_action_refuses_staff_without_permissions(bare_staff, aquakids):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    connection.set_tenant(aquakids)
    request.user = User.objects.get(email="staff@aquakids.test")  # the owner
    for model, model_admin in admin.site._registry.items():
        connection.set_tenant(aquakids)
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        obj = model._default_manager.order_by("pk").first()
        assert bare_staff.get(base).status_code == 403, base
        assert bare_staff.get(base + "add/").status_code == 403, base
        if obj is not None:
            assert bare_staff.get(f"{base}{obj.pk}/change/").status_code == 403, base
            for name in model_admin.get_actions(request):
                response = bare_staff.post(base, {"action": name, "_selected_action": [obj.pk]})
                assert response.status_code == 403, (base, name)
