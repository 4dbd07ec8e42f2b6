from __future__ import annotations

from portal.celery import app
from providers.scheduling import when_ready

from . import services


@app.task
@when_ready
def lapse_waitlist_offers() -> int:
    """Sent for every provider by beat (portal.beat): offers past their time
    lapse and the places go to the next child in line."""
    return services.waitlist_offers_lapse()
