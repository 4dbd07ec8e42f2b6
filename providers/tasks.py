from __future__ import annotations

from portal.celery import app

from . import services


@app.task(acks_late=True)
def setup_provider(provider_id: int) -> str:
    """Runs in the public schema (sent from the platform admin)."""
    return services.provider_setup(provider_id=provider_id).status
