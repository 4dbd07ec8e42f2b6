"""The hourly upkeep: expiries recorded incrementally (what lapsed or changed
since the last run, never the whole history) and expiry reminders recorded
only once their e-mails are queued."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benefits import services, tasks
from benefits.models import (
    CreditUse,
    ExpiryCheckpoint,
    MakeupToken,
    Pass,
    ReminderSent,
    TokenEvent,
)
from enrollments.tests.factories import StudentFactory
from families.models import Student
from portal import clock
from portal.clock import today
from providers.models import Provider

from .factories import family_with_child

pytestmark = pytest.mark.django_db


def old_expired_tokens(count: int) -> list[int]:
    """Tokens issued months ago that lapsed weeks ago: history."""
    student: Student = StudentFactory.create()
    long_ago = clock.now() - timedelta(days=120)
    tokens = MakeupToken.objects.bulk_create(
        MakeupToken(
            student=student,
            reason="goodwill",
            expires_on=today() - timedelta(days=30),
            issued_at=long_ago,
        )
        for _ in range(count)
    )
    TokenEvent.objects.bulk_create(
        TokenEvent(token=token, kind="issued", at=long_ago) for token in tokens
    )
    return [token.pk for token in tokens]


def test_a_second_run_after_a_thousand_old_expiries_touches_none_of_them(in_aquakids):
    clock.advance(timedelta(days=1))  # the demo's fresh rows are a day old too
    ids = old_expired_tokens(1000)
    assert services.expire_lapsed()["tokens"] >= 1000  # the first run records the history
    clock.advance(timedelta(hours=1))
    with CaptureQueriesContext(connection) as queries:
        counts = services.expire_lapsed()
    assert counts == {"tokens": 0, "passes": 0, "credits": 0}
    sql = [q["sql"] for q in queries.captured_queries]
    # Where it left off, what lapsed or changed since (two queries per kind of
    # benefit), where it leaves off: the same with ten tokens of history or ten million.
    assert len(sql) == 8, sql
    assert not any("FOR UPDATE" in s for s in sql), sql  # nothing locked: nothing to record
    assert TokenEvent.objects.filter(token_id__in=ids, kind="expired").count() == 1000
    # The whole hourly task too: no more queries for the history.
    with CaptureQueriesContext(connection) as whole:
        tasks.daily_upkeep()
    assert len(whole) <= 20, [q["sql"] for q in whole.captured_queries]


def test_only_what_lapsed_or_changed_since_the_last_run_is_looked_at_and_nothing_is_missed(
    in_aquakids,
):
    family, guardian, student, home = family_with_child()
    services.expire_lapsed()  # the checkpoint
    assert ExpiryCheckpoint.objects.get().day == today()
    # Lapses tonight: recorded by a run tomorrow (its day is in the window).
    tonight = services.token_issue(student=student, reason="goodwill", expires_on=today())
    grant = services.credit_grant(
        family=family,
        amount=Decimal("5"),
        source="goodwill",
        description="Tonight",
        expires_on=today(),
    )
    card = services.pass_create(family=family, kind=Pass.Kind.PUNCH, name="Ten", punches=3)
    Pass.objects.filter(pk=card.pk).update(expires_on=today())
    # Issued already lapsed after the last run (an event since): recorded.
    lapsed = services.token_issue(
        student=student, reason="goodwill", expires_on=today() - timedelta(days=3)
    )
    # Used on a make-up long ago, given back after it lapsed (the office
    # cancelled that booking): recorded then.
    booked = MakeupToken.objects.create(
        student=student, reason="goodwill", expires_on=today() - timedelta(days=20)
    )
    long_ago = clock.now() - timedelta(days=40)
    TokenEvent.objects.bulk_create(
        [
            TokenEvent(token=booked, kind="issued", at=long_ago),
            TokenEvent(token=booked, kind="applied", at=long_ago),
        ]
    )
    assert services.expire_lapsed()["tokens"] == 1  # `lapsed` only
    clock.advance(timedelta(days=2))
    counts = services.expire_lapsed()
    assert counts == {"tokens": 1, "passes": 1, "credits": 1}  # tonight's three
    TokenEvent.objects.create(token=booked, kind="returned")
    clock.advance(timedelta(hours=1))
    assert services.expire_lapsed()["tokens"] == 1
    for token in (tonight, lapsed, booked):
        assert [e.kind for e in token.events.all()][-1] == "expired", token
    assert CreditUse.objects.get(grant=grant).kind == "expired"
    assert [e.kind for e in card.events.all()][-1] == "expired"
    assert services.expire_lapsed() == {"tokens": 0, "passes": 0, "credits": 0}


@pytest.fixture
def reminding(in_aquakids):
    """Reminders a week ahead; the demo's own reminders sent already."""
    Provider.objects.filter(pk=in_aquakids.pk).update(expiry_reminder_days=7)
    connection.set_tenant(Provider.objects.get(pk=in_aquakids.pk))
    tasks.send_expiry_reminders()
    mail.outbox.clear()


def _expiring_soon(days: int = 3):
    family, guardian, student, home = family_with_child(
        login=f"remind-{MakeupToken.objects.count()}@upkeep.test"
    )
    token = services.token_issue(
        student=student, reason="goodwill", expires_on=today() + timedelta(days=days)
    )
    grant = services.credit_grant(
        family=family,
        amount=Decimal("5"),
        source="goodwill",
        description="Soon",
        expires_on=today() + timedelta(days=days),
    )
    return token, grant


def test_a_reminder_is_recorded_only_once_queued_and_a_failed_send_is_tried_again(
    reminding, monkeypatch
):
    token, grant = _expiring_soon()
    real = tasks.queue_email_now
    failures = []

    def fails_once(**kwargs):
        if "make-up token" in kwargs["subject"] and not failures:
            failures.append(kwargs["subject"])
            raise ConnectionError("the broker went away")
        return real(**kwargs)

    monkeypatch.setattr(tasks, "queue_email_now", fails_once)
    assert tasks.send_expiry_reminders() == 1  # the credit's; the token's failed
    assert failures
    assert not ReminderSent.objects.filter(kind="token", object_id=token.pk).exists()
    assert ReminderSent.objects.filter(kind="credit", object_id=grant.pk).exists()
    assert [m.subject for m in mail.outbox] == [
        f"Use it before it expires: Credit of 5,00\xa0€ (Soon) expires on {_day(grant.expires_on)}."
    ]
    # The next run sends the token's, once; the credit's is not sent again.
    assert tasks.send_expiry_reminders() == 1
    assert ReminderSent.objects.filter(kind="token", object_id=token.pk).exists()
    assert len(mail.outbox) == 2 and "make-up token" in mail.outbox[1].subject
    assert tasks.send_expiry_reminders() == 0 and len(mail.outbox) == 2


def test_reminder_runs_read_only_what_is_still_to_be_reminded_of(reminding):
    _expiring_soon()
    assert tasks.send_expiry_reminders() == 2
    for n in range(5):
        _expiring_soon(days=2 + n % 3)
    tasks.send_expiry_reminders()
    with CaptureQueriesContext(connection) as queries:
        assert tasks.send_expiry_reminders() == 0
    # One query per kind of benefit (and the provider's settings), none per item.
    assert len(queries) <= 4, [q["sql"] for q in queries.captured_queries]


def _day(value):
    from portal import formatting

    return formatting.day(value)
