from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benefits.models import MakeupRequest, MakeupToken, Pass, Voucher
from conftest import client_for, login
from families.models import Student
from providers.models import Provider

pytestmark = pytest.mark.django_db


def student(provider, first, last):
    connection.set_tenant(provider)
    return Student.objects.get(first_name=first, last_name=last)


def switch(provider, **settings):
    Provider.objects.filter(pk=provider.pk).update(**settings)


def test_dashboard_benefits_follow_the_focus_and_explain_family_level(aquakids, ana):
    mia = student(aquakids, "Mia", "Novak")
    leo = student(aquakids, "Leo", "Novak")
    whole = ana.get("/sections/benefits/").content.decode()
    assert "Make-up token" in whole and "Mia" in whole and "Leo" in whole
    assert "10-visit family swim card" in whole and "8 visits left" in whole
    assert "€32.50" in whole or "32,50" in whole  # 15 + (30 − 12.50)
    assert "Sibling discount" in whole and "Spring promotion" not in whole
    focused = ana.get(f"/sections/benefits/?child={leo.pk}").content.decode()
    assert "Credit belongs to the whole family." in focused
    tokens = focused.split('id="b-makeups"')[1].split("</section>")[0]
    assert "Leo" not in tokens or "Mia" not in tokens
    assert f"/benefits/makeups/{MakeupToken.objects.filter(student=mia).first().pk}/" not in tokens


def test_makeup_page_groups_tokens_and_shows_where_they_went(aquakids, ana):
    from enrollments.models import Location

    tivoli = Location.objects.get(name="Tivoli Pool")
    ana.post("/location/", {"location": tivoli.pk, "next": "/benefits/makeups/"})
    html = ana.get("/benefits/makeups/").content.decode()
    assert "Available at Tivoli Pool" in html
    elsewhere = html.split("Usable at other locations")[1].split("</section>")[0]
    assert "Leo" in elsewhere and "Kodeljevo Pool" in elsewhere
    for heading in ("Available", "Usable at other locations", "Pending", "Used", "Expired"):
        assert heading in html, heading
    used = html.split("<h3>Used</h3>")[1].split("</ul>")[0]
    assert "Used on" in used and "Swim Level 2" in used
    assert "History" in html and "Issued" in html


def test_book_a_makeup_and_why_not(aquakids, ana):
    mia = student(aquakids, "Mia", "Novak")
    token = MakeupToken.objects.get(student=mia, reason="absence")
    page = ana.get(f"/benefits/makeups/{token.pk}/book/").content.decode()
    assert "Why can’t I book these?" in page
    assert "This token is for Tivoli Pool; the session is at Kodeljevo Pool." in page
    session_id = re.search(r'name="session" value="(\d+)"', page).group(1)
    response = ana.post(f"/benefits/makeups/{token.pk}/book/", {"session": session_id}, follow=True)
    assert "The token is now pending" in response.content.decode()
    again = ana.post(f"/benefits/makeups/{token.pk}/book/", {"session": session_id}, follow=True)
    assert "This token was used already." in again.content.decode()


def test_makeups_switched_off_are_hidden_and_refuse(aquakids, ana):
    token = MakeupToken.objects.filter(student__first_name="Mia").first()
    switch(aquakids, makeup_tokens_enabled=False, makeup_requests_enabled=False)
    assert 'id="b-makeups"' not in ana.get("/").content.decode()
    assert ana.get("/benefits/makeups/").status_code == 404
    assert ana.get(f"/benefits/makeups/{token.pk}/book/").status_code == 404


def test_request_mode_at_leaps(leaps, cara):
    finn = student(leaps, "Finn", "Lindqvist")
    html = cara.get("/benefits/makeups/").content.decode()
    assert "Request a make-up" in html and "Waiting for the office" in html
    page = cara.get(f"/benefits/makeups/request/{finn.pk}/").content.decode()
    choices = re.findall(r'name="session" value="(\d+)"', page)
    assert choices
    response = cara.post(
        f"/benefits/makeups/request/{finn.pk}/", {"session": choices[-1], "note": "Trip"}
    )
    assert response.status_code == 302
    assert MakeupRequest.objects.filter(student=finn, status="pending").count() == 2
    # The token pages do not exist in request mode.
    assert cara.get("/benefits/makeups/1/book/").status_code == 404


def test_staff_approve_a_request_which_books_the_place(leaps, django_capture_on_commit_callbacks):
    from django.core import mail

    staff = login(client_for("leaps"), leaps, "desk@leaps.test")
    request = MakeupRequest.objects.get(status="pending")
    chosen = {"action": "approve", "_selected_action": [request.pk]}
    form = staff.post("/admin/benefits/makeuprequest/", chosen).content.decode()
    assert 'name="answer"' in form
    with django_capture_on_commit_callbacks(execute=True):
        done = staff.post(
            "/admin/benefits/makeuprequest/",
            {**chosen, "answer": "See you on Saturday, bring a towel.", "apply": "1"},
            follow=True,
        ).content.decode()
    assert "Approved; the family is e-mailed" in done  # the new status, not the old one
    request.refresh_from_db()
    assert request.status == "approved" and request.enrollment.kind == "makeup"
    assert request.decision_note == "See you on Saturday, bring a towel."
    assert any("bring a towel" in m.body for m in mail.outbox)


def test_passes_page_and_booking_a_visit(aquakids, ana):
    html = ana.get("/benefits/passes/").content.decode()
    assert "2 used, 8 left" in html and "Summer splash entry" in html
    card = Pass.objects.get(name="10-visit family swim card")
    leo = student(aquakids, "Leo", "Novak")
    page = ana.get(f"/benefits/passes/{card.pk}/book/?student={leo.pk}").content.decode()
    session_id = re.search(r'name="session" value="(\d+)"', page).group(1)
    ana.post(f"/benefits/passes/{card.pk}/book/", {"session": session_id, "student": leo.pk})
    assert "3 used, 7 left" in ana.get("/benefits/passes/").content.decode()
    switch(aquakids, pass_redemption_enabled=False)
    assert "Book a visit" not in ana.get("/benefits/passes/").content.decode()
    assert ana.get(f"/benefits/passes/{card.pk}/book/").status_code == 404


def test_credits_and_discounts_pages(ana):
    credits = ana.get("/benefits/credits/").content.decode()
    assert "Recently used credits" in credits and "Swim cap and goggles" in credits
    assert "Referral thank-you" in credits and "Expired" in credits
    discounts = ana.get("/benefits/discounts/").content.decode()
    assert "Spring promotion" in discounts.split("Expired")[1]


def test_redeem_codes_with_messages_next_to_the_field(aquakids, ana):
    bad = ana.post("/benefits/redeem/", {"code": "NOPE"}).content.decode()
    assert "We do not know that code" in bad and 'value="NOPE"' in bad
    assert ana.post("/benefits/redeem/", {"code": "gift25"}).status_code == 302
    used = ana.post("/benefits/redeem/", {"code": "GIFT25"}).content.decode()
    assert "used this code already" in used
    assert Voucher.objects.get(code="GIFT25").redemptions.count() == 1


def test_benefit_pages_queries_do_not_grow(aquakids, ana):
    from benefits import services
    from families.models import Guardian

    def count(url):
        with CaptureQueriesContext(connection) as queries:
            assert ana.get(url).status_code == 200
        return len(queries)

    urls = [
        "/",
        "/benefits/makeups/",
        "/benefits/passes/",
        "/benefits/credits/",
        "/benefits/discounts/",
    ]
    before = {u: count(u) for u in urls}
    connection.set_tenant(aquakids)
    family = Guardian.objects.get(user__email="ana@aquakids.test").family
    mia = student(aquakids, "Mia", "Novak")
    for n in range(6):
        services.token_issue(student=mia, reason="goodwill")
        services.pass_create(family=family, kind="punch", name=f"P{n}", punches=3)
        services.credit_grant(family=family, amount=5, source="goodwill", description=f"G{n}")
        services.credit_spend(family=family, amount=1, where="x", reference=f"q{n}")
    assert {u: count(u) for u in urls} == before
    assert before["/"] == 16  # portal/tests/test_dashboard.py DASHBOARD_QUERIES


def test_every_benefit_url_is_not_found_for_another_family(aquakids, ben):
    from django.urls import resolve

    from benefits.urls import urlpatterns
    from enrollments.models import Enrollment

    mia = student(aquakids, "Mia", "Novak")
    token = MakeupToken.objects.filter(student=mia).first()
    card = Pass.objects.get(name="10-visit family swim card")
    makeup = Enrollment.objects.filter(student=mia, kind="makeup").first()
    urls = [
        f"/benefits/makeups/{token.pk}/book/",
        f"/benefits/passes/{card.pk}/book/",
        f"/benefits/bookings/{makeup.pk}/cancel/",
        f"/benefits/passes/{card.pk}/book/?student={mia.pk}",
    ]
    switch(aquakids, makeup_requests_enabled=True, makeup_tokens_enabled=False)
    urls.append(f"/benefits/makeups/request/{mia.pk}/")
    mine = MakeupRequest.objects.create(
        student=mia, session=Enrollment.objects.filter(student=mia).first().klass.sessions.last()
    )
    urls.append(f"/benefits/makeups/requests/{mine.pk}/withdraw/")
    with_ids = {p.name for p in urlpatterns if "<int:" in str(p.pattern)}
    walked = {resolve(u.split("?")[0], urlconf="portal.urls").url_name for u in urls}
    assert with_ids <= walked, with_ids - walked
    for url in urls:
        statuses = {
            "get": ben.get(url).status_code,
            "post": ben.post(url, {"session": 1}).status_code,
        }
        assert set(statuses.values()) <= {404, 405} and 404 in statuses.values(), (url, statuses)
    # Ben's own pages never show the Novaks' benefits.
    switch(aquakids, makeup_tokens_enabled=True, makeup_requests_enabled=False)
    for url in (
        "/benefits/makeups/",
        "/benefits/passes/",
        "/benefits/credits/",
        "/benefits/discounts/",
    ):
        html = ben.get(url).content.decode()
        assert "Mia" not in html and "family swim card" not in html and "Sibling" not in html
    assert MakeupRequest.objects.get(pk=mine.pk).status == "pending"
