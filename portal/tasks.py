from __future__ import annotations

import logging
import smtplib
from email.utils import formataddr, parseaddr

from celery import Task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from portal import tenancy
from portal.celery import app

log = logging.getLogger(__name__)
BROKER_DOWN = (OperationalError, RedisError, ConnectionError, OSError)


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
    from_email: str | None = None,
) -> None:
    message = EmailMultiAlternatives(
        subject, body, from_email=from_email, to=to, reply_to=reply_to or None
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def dispatch(task: Task | str, *args, **kwargs):
    """Queue a task; if the broker is down, do the work here and now instead
    (slower for this one request, but nothing is lost and no error page).

    Services name their tasks by dotted path ("billing.tasks.render_document"):
    a tasks module imports its app's services, never the other way round."""
    job: Task = import_string(task) if isinstance(task, str) else task
    try:
        return job.delay(*args, **kwargs)
    except BROKER_DOWN:
        log.warning("broker unavailable: running %s in the web process", job.name)
        return job.apply(args=args, kwargs=kwargs)


def sender() -> str:
    """Families get e-mail from their provider: "Aqua Kids Swim School
    <no-reply@...>", the provider's name with the portal's sending address
    (the platform's name on the bare host)."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    provider = tenancy.current_provider()
    if getattr(provider, "name", "") and not getattr(provider, "is_public", True):
        name = provider.name
    return formataddr((name, address)) if name else address


def queue_email(**kwargs) -> None:
    """Send after the surrounding transaction commits, in the provider's
    schema, under the provider's name."""
    kwargs.setdefault("from_email", sender())
    transaction.on_commit(lambda: dispatch(send_email, **kwargs))


class EmailNotQueued(Exception):
    """Neither queued nor sent: the broker was down and sending here failed too."""


def queue_email_now(**kwargs) -> None:
    """Queue now, not after the surrounding transaction commits: for a caller
    that records an e-mail as sent, in that transaction, only once it is
    queued (so a failure leaves it to be tried again). Raises when the
    e-mail was neither queued nor, with the broker down, sent here."""
    from celery.result import EagerResult

    kwargs.setdefault("from_email", sender())
    result = dispatch(send_email, **kwargs)
    if isinstance(result, EagerResult) and result.failed():
        raise EmailNotQueued(str(result.result))


@app.task(ignore_result=False)
def current_schema() -> str:
    """Which schema a task runs in: the worker check of the test suite uses it."""
    return tenancy.current_schema()
