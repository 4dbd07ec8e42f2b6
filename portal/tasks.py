from __future__ import annotations

import smtplib

from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction

from portal.celery import app


@app.task(
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=True,
    max_retries=6,
)
def send_email(
    *,
    subject: str,
    body: str,
    to: list[str],
    html: str | None = None,
    reply_to: list[str] | None = None,
) -> None:
    message = EmailMultiAlternatives(subject, body, to=to, reply_to=reply_to or None)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def queue_email(**kwargs) -> None:
    """Send after the surrounding transaction commits, in the provider's schema."""
    transaction.on_commit(lambda: send_email.delay(**kwargs))


@app.task
def current_schema() -> str:
    """Which schema a task runs in: the worker check of the test suite uses it."""
    return connection.schema_name
