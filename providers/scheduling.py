"""Beat's jobs run only for providers whose set-up is complete: one being
created or whose set-up failed may have no schema, or half of one.
`portal.beat.ProvidersScheduler` sends them only to ready providers, and
each scheduled task checks again where it runs (a provider's status can
change between the sending and the running)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from portal.tenancy import current_provider

from .models import Provider

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def is_ready(provider: Provider) -> bool:
    return getattr(provider, "status", None) == Provider.Status.READY


def when_ready(task: F) -> F:
    """For a task beat sends to every provider: in a provider that is not
    ready it does nothing (and returns None)."""

    @wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        provider = current_provider()
        if not is_ready(provider):
            log.info(
                "%s skipped: %s is not set up", task.__name__, getattr(provider, "schema_name", "?")
            )
            return None
        return task(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
