"""Redis (the Celery broker) down: e-mails and PDFs still get done."""

from __future__ import annotations

import pytest
from django.core import mail
from kombu import pools as kombu_pools

from billing.models import Document
from conftest import client_for
from portal.celery import app

pytestmark = pytest.mark.django_db


def reset_pool():
    """Forget broker connections so the next call uses the current broker URL."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    kombu_pools.reset()


@pytest.fixture
def broker_down():
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # nothing listens there
    app.conf.broker_connection_retry = False
    app.conf.broker_connection_max_retries = 0
    app.conf.broker_transport_options = {"max_retries": 0}
    reset_pool()
    yield
    from django.conf import settings

    app.conf.task_always_eager = True
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.conf.broker_connection_retry = True
    app.conf.broker_transport_options = {}
    reset_pool()


def test_password_reset_mail_is_sent_while_the_broker_is_down(
    aquakids, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("aquakids").post(
            "/accounts/password/reset/", {"email": "ana@aquakids.test"}
        )
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["ana@aquakids.test"]]


def test_a_statement_is_made_while_the_broker_is_down(
    aquakids, ana, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = ana.post("/billing/documents/", {"kind": "statement"})
    assert response.status_code == 302
    assert Document.objects.latest("created_at").status == "done"
