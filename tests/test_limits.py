"""portal.limits: one mechanism for every limit (counted in Redis, per
provider), a message with when to try again, and failing open (with a log)
while the cache is unreachable."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import connection

from conftest import client_for
from portal import limits

pytestmark = pytest.mark.django_db

DEAD = "redis://127.0.0.1:9/0"  # nothing listens there


@pytest.fixture
def dead_cache(settings):
    settings.CACHES = {alias: {**conf, "LOCATION": DEAD} for alias, conf in settings.CACHES.items()}


def test_wait_text_rounds_up_and_picks_the_unit():
    assert limits.wait_text(1) == "1 second"
    assert limits.wait_text(40) == "40 seconds"
    assert limits.wait_text(61) == "2 minutes"
    assert limits.wait_text(15 * 60) == "15 minutes"
    assert limits.wait_text(3600) == "60 minutes"
    assert limits.wait_text(24 * 3600) == "24 hours"


def test_take_refuses_past_the_limit_with_the_time_left(aquakids):
    connection.set_tenant(aquakids)
    for _ in range(limits.VOUCHER.allowed):
        limits.take(limits.VOUCHER, "family-1", field="code")
    with pytest.raises(limits.LimitReached, match=r"Too many tries\. Try again in 15 minutes\."):
        limits.take(limits.VOUCHER, "family-1", field="code")
    limits.take(limits.VOUCHER, "family-2")  # another key has its own budget
    with pytest.raises(limits.LimitReached) as refused:
        limits.check(limits.VOUCHER, "family-1")
    assert 14 * 60 < refused.value.retry_after <= 15 * 60


def test_each_provider_counts_on_its_own(aquakids, leaps):
    connection.set_tenant(aquakids)
    for _ in range(limits.PDF.allowed):
        limits.take(limits.PDF, 1)
    with pytest.raises(limits.LimitReached):
        limits.take(limits.PDF, 1)
    connection.set_tenant(leaps)
    limits.take(limits.PDF, 1)


def test_concurrent_tries_never_pass_the_limit(aquakids):
    connection.set_tenant(aquakids)
    passed: list[int] = []
    refused: list[int] = []

    def try_once(n):
        connection.set_tenant(aquakids)
        try:
            limits.take(limits.PROBLEM_REPORT, "racer")
        except limits.LimitReached:
            refused.append(n)
        else:
            passed.append(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=try_once, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == limits.PROBLEM_REPORT.allowed and len(refused) == 20 - len(passed)


def test_every_limit_fails_open_and_logs_while_the_cache_is_unreachable(
    aquakids, dead_cache, caplog
):
    caplog.set_level(logging.WARNING, logger="portal.limits")
    connection.set_tenant(aquakids)
    for limit in [
        limits.LOGIN_EMAIL,
        limits.LOGIN_ADDRESS,
        limits.VOUCHER,
        limits.RESET_EMAIL,
        limits.RESET_ADDRESS,
        limits.INVITATION,
        limits.PDF,
        limits.PROBLEM_REPORT,
    ]:
        for _ in range(limit.allowed + 2):
            limits.take(limit, "someone")
            limits.check(limit, "someone")
        limits.clear(limit, "someone")
    logged = [r for r in caplog.records if r.name == "portal.limits"]
    assert any("limit voucher: cache unavailable" in r.getMessage() for r in logged)
    assert all(r.levelno == logging.WARNING for r in logged)


def test_parents_are_not_refused_anything_while_the_cache_is_down(
    aquakids, dead_cache, django_capture_on_commit_callbacks
):
    from django.core import mail

    client = client_for("aquakids")
    for _ in range(limits.RESET_EMAIL.allowed + 2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/accounts/password/reset/", {"email": "ana@aquakids.test"})
        assert response.status_code == 302
    assert len(mail.outbox) == limits.RESET_EMAIL.allowed + 2


def test_a_burst_of_logins_checks_no_more_passwords_than_the_limit(aquakids, rf):
    """Wrong passwords sent all at once: each attempt is counted before its
    password is checked, so only the limit's number are checked at all."""
    from accounts.forms import LoginForm

    connection.set_tenant(aquakids)
    codes: list[str] = []
    start = threading.Barrier(12)

    def try_once():
        connection.set_tenant(aquakids)
        request = rf.post("/accounts/login/")
        form = LoginForm(request, data={"username": "burst@aquakids.test", "password": "guess"})
        start.wait()
        try:
            form.is_valid()
            codes.extend(e.code or "" for e in form.non_field_errors().as_data())
        finally:
            connection.close()

    threads = [threading.Thread(target=try_once) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == ["invalid_login"] * limits.LOGIN_EMAIL.allowed + ["throttled"] * 7


def test_a_successful_login_gives_its_try_back_to_the_client_address(aquakids, rf):
    """Only failures stay counted: a school's shared address is not used up
    by parents logging in."""
    from django.core.cache import cache

    from accounts.forms import LoginForm
    from accounts.models import User

    connection.set_tenant(aquakids)
    user = User.objects.create_user("welcome@aquakids.test", "long-enough-pass")
    for _ in range(3):
        form = LoginForm(
            rf.post("/accounts/login/"),
            data={"username": user.email, "password": "long-enough-pass"},
        )
        assert form.is_valid(), form.errors
    wrong = LoginForm(
        rf.post("/accounts/login/"), data={"username": user.email, "password": "nope"}
    )
    assert not wrong.is_valid()
    assert cache.get(limits.LOGIN_ADDRESS.key("127.0.0.1")) == 1
    assert cache.get(limits.LOGIN_EMAIL.key(user.email)) == 1
