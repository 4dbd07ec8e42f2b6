from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from families import changes
from families.selectors import family_login_emails
from portal import formatting
from portal.celery import app
from portal.clock import today
from portal.tasks import queue_email
from portal.tenancy import current_provider, provider_language

from . import rules, selectors, services
from .models import ZERO, CreditGrant, MakeupToken, Pass, ReminderSent


@app.task
def daily_upkeep() -> dict:
    """Runs in every provider's schema (beat): record expiries, send reminders."""
    counts = services.expire_lapsed()
    counts["reminders"] = send_expiry_reminders()
    counts["change_records_pruned"] = changes.prune()
    return counts


def _remind_once(kind: str, object_id: int) -> bool:
    try:
        with transaction.atomic():
            ReminderSent.objects.create(kind=kind, object_id=object_id)
    except IntegrityError:
        return False
    return True


@provider_language()
def send_expiry_reminders() -> int:
    provider = current_provider()
    days = provider.expiry_reminder_days
    if not days:
        return 0
    day = today()
    horizon = day + timedelta(days=days)
    items = []  # (family_id, kind, id, text)
    tokens = (
        MakeupToken.objects.filter(expires_on__gte=day, expires_on__lte=horizon)
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
    for pass_obj in Pass.objects.filter(
        expires_on__gte=day, expires_on__lte=horizon
    ).prefetch_related("events"):
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
    expiring = CreditGrant.objects.filter(expires_on__gte=day, expires_on__lte=horizon)
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
        if not _remind_once(kind, object_id):
            continue
        for email in family_login_emails(family_id):
            queue_email(
                subject=_("Use it before it expires: %(text)s") % {"text": text},
                body=render_to_string(
                    "benefits/email/expiry_reminder.txt", {"text": text, "provider": provider}
                ),
                to=[email],
            )
        sent += 1
    return sent
