"""Error pages: a database outage asks to try again (503), anything else is
a plain server error (500)."""

from __future__ import annotations

from django.db import OperationalError

from portal.views import server_error


def test_a_database_outage_answers_try_again(rf):
    try:
        raise OperationalError("connection to server failed")
    except OperationalError:
        response = server_error(rf.get("/"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"try again" in response.content


def test_other_errors_answer_a_server_error(rf):
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(rf.get("/"))
    assert response.status_code == 500
