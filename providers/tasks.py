from __future__ import annotations

from portal.celery import app

from . import services


@app.task(acks_late=True)
def setup_provider(provider_id: int, link_scheme: str = "https", link_port: str = "") -> str:
    """Runs in the public schema (sent from the platform admin)."""
    return services.provider_setup(
        provider_id=provider_id, link_scheme=link_scheme, link_port=link_port
    ).status
