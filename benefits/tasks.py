from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from families import changes
from families.selectors import family_login_emails
from portal import formatting
from portal.celery import app
from portal.clock import today
from portal.tasks import queue_email_now
from portal.tenancy import current_provider, provider_language
from providers.scheduling import when_ready

from . import rules, selectors, services
from .models import ZERO, CreditGrant, MakeupToken, Pass, ReminderSent

log = logging.getLogger(__name__)


@app.task
@when_ready
def daily_upkeep() -> dict:
    """Runs in every provider's schema (beat): record expiries, send reminders."""
    counts = services.expire_lapsed()
    counts["reminders"] = send_expiry_reminders()
    counts["change_records_pruned"] = changes.prune()
    return counts


def _reminded(kind: str) -> Exists:
    return Exists(ReminderSent.objects.filter(kind=kind, object_id=OuterRef("pk")))


@provider_language()
def send_expiry_reminders() -> int:
    provider = current_provider()
    days = provider.expiry_reminder_days
    if not days:
        return 0
    day = today()
    horizon = day + timedelta(days=days)
    items = []  # (family_id, kind, id, text)
    # What was reminded of already is left out by the query: a run reads only
    # what is still to be reminded of, however often it runs.
    tokens = (
        MakeupToken.objects.filter(expires_on__gte=day, expires_on__lte=horizon)
        .exclude(_reminded("token"))
        .select_related("student")
        .prefetch_related("events__enrollment__session")
    )
    for token in tokens:
        if rules.token_state(token) == rules.AVAILABLE:
            items.append(
                (
                    token.student.family_id,
                    "token",
                    token.pk,
                    _("A make-up token for %(name)s expires on %(date)s.")
                    % {"name": token.student.first_name, "date": formatting.day(token.expires_on)},
                )
            )
    for pass_obj in (
        Pass.objects.filter(expires_on__gte=day, expires_on__lte=horizon)
        .exclude(_reminded("pass"))
        .prefetch_related("events")
    ):
        if rules.pass_is_usable(pass_obj):
            items.append(
                (
                    pass_obj.family_id,
                    "pass",
                    pass_obj.pk,
                    _("Your pass “%(name)s” expires on %(date)s.")
                    % {"name": pass_obj.name, "date": formatting.day(pass_obj.expires_on)},
                )
            )
    expiring = CreditGrant.objects.filter(expires_on__gte=day, expires_on__lte=horizon).exclude(
        _reminded("credit")
    )
    for grant in selectors.with_credit_left(expiring).filter(left__gt=ZERO):
        items.append(
            (
                grant.family_id,
                "credit",
                grant.pk,
                _("Credit of %(amount)s (%(what)s) expires on %(date)s.")
                % {
                    "amount": formatting.money(grant.left),
                    "what": grant.description,
                    "date": formatting.day(grant.expires_on),
                },
            )
        )
    sent = 0
    for family_id, kind, object_id, text in items:
        if _remind(provider, family_id, kind, object_id, text):
            sent += 1
    return sent


def _remind(provider, family_id: int, kind: str, object_id: int, text: str) -> bool:
    """E-mail the family's logins and record the reminder, in one transaction:
    it is recorded only once its e-mails are queued, so one that could not be
    queued is tried again on the next run. A run doing the same at once waits
    for this one's record and then leaves it."""
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    ReminderSent.objects.create(kind=kind, object_id=object_id)
            except IntegrityError:
                return False  # sent by another run meanwhile
            for email in family_login_emails(family_id):
                queue_email_now(
                    subject=_("Use it before it expires: %(text)s") % {"text": text},
                    body=render_to_string(
                        "benefits/email/expiry_reminder.txt", {"text": text, "provider": provider}
                    ),
                    to=[email],
                )
    except Exception:  # the others still go; this one is tried again next run
        log.exception("expiry reminder for %s %s not queued", kind, object_id)
        return False
    return True
