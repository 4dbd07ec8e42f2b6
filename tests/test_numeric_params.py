"""Numbers in query strings and forms: anything that is not a plain whole
number answers a 400 page saying which parameter was wrong, never a 500.
(`"²".isdigit()` is true; `int("²")` and the database are not so kind.)"""

from __future__ import annotations

import pytest
from django.test import Client

from conftest import HOSTS, login
from portal.params import BadParameter, parse_int
from portal.tenancy import use_provider

BAD = ["²", "٣", "-1", "1e3", "99999999999999999999999", " 7", "0x1", "1.0", "0"]


@pytest.mark.parametrize("raw", BAD)
def test_the_helper_refuses_anything_but_a_whole_number(raw):
    with pytest.raises(BadParameter, match="“location” must be a whole number"):
        parse_int(raw, "location")


def test_the_helper_reads_a_number_and_lets_an_absent_one_be():
    assert parse_int("42", "location") == 42
    assert parse_int("", "location") is None and parse_int(None, "location") is None
    assert parse_int("0", "wait", minimum=0) == 0


def logged_in(provider, email: str) -> Client:
    """A login whose server errors come back as 500 answers, not exceptions."""
    return login(
        Client(raise_request_exception=False, HTTP_HOST=HOSTS[provider.slug]), provider, email
    )


@pytest.fixture
def endpoints(aquakids, leaps):
    """(client name, method, path, parameter, other data) for every endpoint that
    turns a parameter into a number."""
    from benefits.models import MakeupToken, Pass
    from billing.models import Payment
    from enrollments.models import Class, Enrollment
    from families.models import Family

    use_provider(aquakids)
    novak = Family.objects.get(name="Novak")
    enrollment = Enrollment.objects.filter(
        student__family=novak, status="active", kind="regular"
    ).first()
    token = MakeupToken.objects.filter(student__family=novak).first()
    pass_obj = Pass.objects.filter(family=novak).first()
    payment = Payment.objects.filter(family=novak).first()
    klass = Class.objects.first()
    found = {
        "enrollment": enrollment,
        "token": token,
        "pass": pass_obj,
        "payment": payment,
        "class": klass,
    }
    missing = [name for name, value in found.items() if value is None]
    assert not missing, f"the demo data lacks {missing}"
    use_provider(leaps)
    from families.models import Student

    ella = Student.objects.get(first_name="Ella")
    use_provider(aquakids)
    return [
        ("ana", "post", "/location/", "location", {}),
        ("ana", "get", f"/enrolments/{enrollment.pk}/transfer/", "to", {}),
        ("ana", "post", "/calendar/reset/", "student", {}),
        ("ana", "post", f"/benefits/makeups/{token.pk}/book/", "session", {}),
        ("ana", "get", f"/benefits/passes/{pass_obj.pk}/book/", "student", {}),
        ("ana", "post", f"/benefits/passes/{pass_obj.pk}/book/", "session", {}),
        ("ana", "post", "/billing/apply-credit/", "order", {}),
        ("ana", "get", f"/billing/payments/{payment.pk}/", "wait", {}),
        ("ana", "get", "/account/contacts/email/add/", "guardian", {}),
        ("ana", "get", "/report-a-problem/", "child", {}),
        ("ana", "get", "/", "child", {}),
        ("staff", "get", "/admin/billing/order/add/", "family", {}),
        ("staff", "get", f"/staff/classes/{klass.pk}/skills/", "session", {}),
        ("staff", "post", f"/staff/classes/{klass.pk}/skills/", "student", {"skill": "1"}),
        ("cara", "post", f"/benefits/makeups/request/{ella.pk}/", "session", {"note": "x"}),
    ]


# `?child=` on the dashboard names one of the family's children: anything else is not found.
NOT_FOUND = {("/", "child")}


@pytest.mark.parametrize("raw", ["²", "-1", "1e3", "99999999999999999999999"])
def test_every_numeric_parameter_answers_400_with_a_message(aquakids, leaps, endpoints, raw):
    clients = {
        "ana": logged_in(aquakids, "ana@aquakids.test"),
        "staff": logged_in(aquakids, "staff@aquakids.test"),
        "cara": logged_in(leaps, "cara@leaps.test"),
    }
    for who, method, path, name, extra in endpoints:
        client = clients[who]
        data = {name: raw, **extra}
        response = getattr(client, method)(path, data)
        if (path, name) in NOT_FOUND:
            assert response.status_code == 404, (path, name, raw, response.status_code)
            continue
        assert response.status_code == 400, (path, name, raw, response.status_code)
        html = response.content.decode()
        assert f"“{name}” must be a whole number" in html, (path, name)
        assert 'href="/"' in html


def test_an_empty_number_is_as_if_absent(aquakids, endpoints):
    ana = logged_in(aquakids, "ana@aquakids.test")
    for who, method, path, name, extra in endpoints:
        if who != "ana":
            continue
        response = getattr(ana, method)(path, {name: "", **extra})
        assert response.status_code < 500, (path, name, response.status_code)
