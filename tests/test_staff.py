"""Staff see what a family sees (read-only, audited); problem reports."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.db import connection
from PIL import Image

from conftest import client_for, login
from families.models import Family, ProblemReport, StaffView

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(aquakids):
    return login(client_for("aquakids"), aquakids, "staff@aquakids.test")


def novak(aquakids):
    connection.set_tenant(aquakids)
    return Family.objects.get(name="Novak")


def test_view_as_family_is_read_only_and_recorded(staff, aquakids):
    family = novak(aquakids)
    listing = staff.get("/admin/families/family/").content.decode()
    assert f"/staff/view-as/{family.pk}/" in listing
    assert b"This view is recorded" in staff.get(f"/staff/view-as/{family.pk}/").content
    staff.post(f"/staff/view-as/{family.pk}/")
    html = staff.get("/").content.decode()
    assert "Staff view: you see the portal as the Novak family. Read-only." in html
    assert "The Novak family" in html and "Autumn term: Swim Level 2" in html
    # Every unsafe method is refused, whatever the page.
    for url in [
        "/account/students/add/",
        "/billing/orders/2/apply-credit/",
        "/calendar/reset/",
        "/benefits/redeem/",
        "/account/guardians/add/",
    ]:
        for method in ("post", "put", "patch", "delete"):
            assert getattr(staff, method)(url).status_code == 403, (method, url)
    connection.set_tenant(aquakids)
    assert StaffView.objects.filter(family=family, staff__email="staff@aquakids.test").count() == 1
    assert "Office owner" in staff.get("/admin/families/staffview/").content.decode()
    stop = staff.post("/staff/view-as/stop/")
    assert (
        stop.status_code == 302
        and f"/admin/families/family/{family.pk}/change/" in stop["Location"]
    )
    assert "This account has no family yet" in staff.get("/").content.decode()


def test_parents_cannot_view_as_and_staff_of_another_provider_cannot_reach_these_families(
    ana, aquakids, leaps
):
    family = novak(aquakids)
    assert ana.get(f"/staff/view-as/{family.pk}/").status_code == 404
    leaps_staff = login(client_for("leaps"), leaps, "staff@leaps.test")
    connection.set_tenant(leaps)
    missing = max(Family.objects.values_list("pk", flat=True)) + 1000
    assert leaps_staff.get(f"/staff/view-as/{missing}/").status_code == 404
    # Leaps staff on the Aqua Kids host are not logged in there at all.
    at_aquakids = client_for("aquakids")
    at_aquakids.cookies = leaps_staff.cookies
    assert at_aquakids.get(f"/staff/view-as/{family.pk}/").status_code in (302, 404)
    connection.set_tenant(aquakids)
    assert not StaffView.objects.exists()


def test_problem_report_round_trip(ana, aquakids, staff, django_capture_on_commit_callbacks):
    page = ana.get("/report-a-problem/?page=/billing/&child=1")
    assert b"/billing/" in page.content
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "#b3261e").save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "screen.png"
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post(
            "/report-a-problem/",
            {
                "page": "/billing/",
                "child": "1",
                "clicked": "Pressed Pay",
                "expected": "A card form",
                "screenshot": buffer,
            },
            HTTP_USER_AGENT="TestBrowser/1.0",
        )
    assert response.status_code == 302 and response["Location"] == "/billing/"
    connection.set_tenant(aquakids)
    report = ProblemReport.objects.get()
    assert report.family.name == "Novak" and report.user_agent == "TestBrowser/1.0"
    assert report.focused_child.first_name == "Mia" and report.status == "new"
    assert mail.outbox[-1].to == ["hello@aquakids.test"] and "Pressed Pay" in mail.outbox[-1].body
    admin_page = staff.get(f"/admin/families/problemreport/{report.pk}/change/").content.decode()
    assert "Pressed Pay" in admin_page and f"/staff/reports/{report.pk}/screenshot" in admin_page
    assert staff.get(f"/staff/reports/{report.pk}/screenshot").status_code == 200
    assert ana.get(f"/staff/reports/{report.pk}/screenshot").status_code == 404
    # Every page offers the link.
    assert "/report-a-problem/?page=" in ana.get("/account/").content.decode()


def test_view_as_hides_the_familys_secret_links(staff, aquakids, ana):
    """Calendar feed links and pay hand-off links are the family's secrets:
    staff viewing as the family see neither, and no feed is made for them."""
    from enrollments.models import CalendarFeed

    # The parent herself has the feed; a pay hand-off is minted only when she clicks Pay.
    assert "webcal://" in ana.get("/calendar/").content.decode()
    assert "/billing/continue/" not in ana.get("/").content.decode()
    family = novak(aquakids)
    feeds_before = CalendarFeed.objects.count()
    staff.post(f"/staff/view-as/{family.pk}/")
    calendar = staff.get("/calendar/").content.decode()
    assert "private calendar links are not shown" in calendar
    assert ".ics" not in calendar and "webcal://" not in calendar
    dashboard = staff.get("/").content.decode()
    assert "/billing/continue/" not in dashboard
    order = family.orders.filter(title="Autumn term: Swim Level 2").first()
    assert staff.post(f"/billing/orders/{order.pk}/pay-in-a-tab/").status_code == 403
    connection.set_tenant(aquakids)
    assert CalendarFeed.objects.count() == feeds_before
