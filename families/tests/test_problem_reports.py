"""Problem reports close the loop: the office's e-mail links to the report in
the admin, staff answer there, the parent is e-mailed and finds the answer
in their account; another family finds nothing."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection

from conftest import client_for, login
from families.models import ProblemReport
from tests.htmlforms import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(aquakids):
    return login(client_for("aquakids"), aquakids, "desk@aquakids.test")


def report_from_ana(ana, aquakids, capture):
    with capture(execute=True):
        response = ana.post(
            "/report-a-problem/",
            {"page": "/billing/", "clicked": "Pressed Pay", "expected": "A card form"},
        )
    assert response.status_code == 302
    connection.set_tenant(aquakids)
    return ProblemReport.objects.get()


def answer_in_admin(client, report, **changes):
    url = f"/admin/families/problemreport/{report.pk}/change/"
    data = form_data(client.get(url).content.decode(), "problemreport_form")
    data.update(changes)
    return client.post(url, data)


def test_the_office_email_links_to_the_report_in_the_admin(
    ana, aquakids, django_capture_on_commit_callbacks
):
    report = report_from_ana(ana, aquakids, django_capture_on_commit_callbacks)
    office = mail.outbox[-1]
    assert office.to == ["hello@aquakids.test"]
    link = f"://aquakids.localhost/admin/families/problemreport/{report.pk}/change/"
    assert link in office.body and "Pressed Pay" in office.body


def test_staff_answer_in_the_admin_and_the_parent_is_told_and_sees_it(
    ana, ben, aquakids, desk, django_capture_on_commit_callbacks
):
    report = report_from_ana(ana, aquakids, django_capture_on_commit_callbacks)
    assert "No answer yet" in ana.get("/account/problem-reports/").content.decode()
    page = desk.get(f"/admin/families/problemreport/{report.pk}/change/").content.decode()
    assert 'name="answer"' in page and 'name="staff_note"' in page
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        saved = answer_in_admin(
            desk,
            report,
            answer="Card payments were down for an hour; please try again.",
            staff_note="Stripe incident 42",
        )
    assert saved.status_code == 302
    connection.set_tenant(aquakids)
    report.refresh_from_db()
    assert report.status == ProblemReport.Status.ANSWERED  # a new report with an answer
    assert report.answered_by_name == "Front desk" and report.answered_at is not None
    assert report.staff_note == "Stripe incident 42"
    [sent] = mail.outbox
    assert sent.to == ["ana@aquakids.test"]
    assert "Card payments were down for an hour" in sent.body
    assert f"://aquakids.localhost/account/problem-reports/{report.pk}/" in sent.body
    assert "Stripe incident" not in sent.body

    # The parent's pages: the list (linked from the account page) and the report.
    assert "/account/problem-reports/" in ana.get("/account/").content.decode()
    listing = ana.get("/account/problem-reports/").content.decode()
    assert "Card payments were down for an hour" in listing and "Answered" in listing
    assert "Stripe incident" not in listing
    single = ana.get(f"/account/problem-reports/{report.pk}/").content.decode()
    assert "Card payments were down for an hour" in single and "Pressed Pay" in single

    # Another family: not found, and not listed.
    assert ben.get(f"/account/problem-reports/{report.pk}/").status_code == 404
    assert "Pressed Pay" not in ben.get("/account/problem-reports/").content.decode()
    staff = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    assert staff.get(f"/account/problem-reports/{report.pk}/").status_code == 404  # no family

    # Closing it without a new answer e-mails nobody; the answer stays.
    with django_capture_on_commit_callbacks(execute=True):
        closed = answer_in_admin(desk, report, status="closed")
    assert closed.status_code == 302 and len(mail.outbox) == 1
    connection.set_tenant(aquakids)
    report.refresh_from_db()
    assert report.status == "closed" and report.answer.startswith("Card payments")
    assert "Closed" in ana.get(f"/account/problem-reports/{report.pk}/").content.decode()


def test_another_providers_family_cannot_reach_the_report(
    ana, cara, aquakids, django_capture_on_commit_callbacks
):
    report = report_from_ana(ana, aquakids, django_capture_on_commit_callbacks)
    assert cara.get(f"/account/problem-reports/{report.pk}/").status_code == 404


def test_a_report_names_the_child_of_the_page_it_was_sent_from(aquakids, ana, ben):
    """The link sends the page the parent is on (rewritten when clicked, after
    in-page navigation); the child comes from that page's address, looked up
    in the family only."""
    from families.models import Student

    connection.set_tenant(aquakids)
    mia = Student.objects.get(first_name="Mia", family__name="Novak")
    leo = Student.objects.get(first_name="Leo", family__name="Novak")
    for page, child in [
        (f"/students/{mia.pk}/attendance/", mia),
        (f"/?child={leo.pk}", leo),
        (f"/sections/upcoming/?child={leo.pk}&x=1", leo),
    ]:
        form = ana.get("/report-a-problem/", {"page": page}).content.decode()
        assert f'name="child" value="{child.pk}"' in form and f"Child: {child.first_name}" in form
    # Another family's child, or nonsense, names no child.
    for page in [f"/students/{mia.pk}/attendance/", "/?child=%C2%B2", "/students/x/"]:
        form = ben.get("/report-a-problem/", {"page": page}).content.decode()
        assert 'name="child"' not in form


def test_the_report_link_is_marked_for_rewriting_to_the_current_page(ana):
    page = ana.get("/").content.decode()
    assert "data-report-problem" in page
