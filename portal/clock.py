"""The project clock: the one "now" of all domain code.

Every service, selector, task and page reads the time here, never from
`timezone.now()`. Tests and the demo may move the clock (`travel_to`,
`moved_to`), so that histories are dated as they would have happened and
periods (expiries, due dates, reconciliation windows) pass in seconds. Moving
it is refused in production (neither DEBUG nor TESTING).

Dates and times are in the provider's time zone, whatever zone is active.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, tzinfo

from django.conf import settings
from django.utils import timezone

from portal.tenancy import current_provider

# One offset for the whole process (threads of a test see the same time).
_lock = threading.Lock()
_offset = timedelta(0)


class ClockLocked(RuntimeError):
    """The clock cannot be moved here (production)."""


def now() -> datetime:
    return timezone.now() + _offset


def provider_zone() -> tzinfo:
    return getattr(current_provider(), "zone", None) or timezone.get_current_timezone()


def today() -> date:
    return timezone.localdate(now(), timezone=provider_zone())


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment, provider_zone())


def offset() -> timedelta:
    return _offset


def can_move() -> bool:
    """Whether the clock may be moved here (development and tests)."""
    return bool(settings.DEBUG or settings.TESTING)


def _movable() -> None:
    if not can_move():
        raise ClockLocked("The project clock cannot be moved in production.")


def travel_to(moment: datetime | date) -> None:
    """Move the clock so that now() reads `moment` (a date: its midday in
    the active provider's zone). Stays moved until `reset()`."""
    global _offset
    _movable()
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(12), tzinfo=provider_zone())
    elif timezone.is_naive(moment):
        moment = timezone.make_aware(moment, provider_zone())
    with _lock:
        _offset = moment - timezone.now()


def advance(by: timedelta) -> None:
    """Move the clock forward (or back) by `by`."""
    global _offset
    _movable()
    with _lock:
        _offset += by


def reset() -> None:
    global _offset
    with _lock:
        _offset = timedelta(0)


@contextmanager
def moved_to(moment: datetime | date) -> Iterator[None]:
    """The clock reads `moment` inside the block, then what it read before."""
    global _offset
    before = _offset
    travel_to(moment)
    try:
        yield
    finally:
        with _lock:
            _offset = before
