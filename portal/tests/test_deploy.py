"""`manage.py check --deploy` with the production settings of docker-compose.yml."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_reports_nothing():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "PORTAL_TESTING", "EMAIL_BACKEND", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        {
            "SECRET_KEY": secrets.token_urlsafe(60),
            "ALLOWED_HOSTS": ".portal.example",
            "BEHIND_PROXY": "1",
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "SECURE_HSTS_PRELOAD": "1",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _check(**overrides: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "PORTAL_TESTING", "EMAIL_BACKEND", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update({"SECRET_KEY": secrets.token_urlsafe(60)} | overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_an_empty_webhook_secret_stops_the_start_when_payments_can_be_on():
    for empty in ("", "   "):
        result = _check(STRIPE_SECRET_KEY="sk_live_example", STRIPE_WEBHOOK_SECRET=empty)
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr
        assert "STRIPE_WEBHOOK_SECRET is empty while STRIPE_SECRET_KEY is set" in result.stderr


def test_without_stripe_or_in_development_the_webhook_secret_may_be_unset():
    without_stripe = _check(STRIPE_SECRET_KEY="", STRIPE_WEBHOOK_SECRET="")
    assert without_stripe.returncode == 0, without_stripe.stderr
    development = _check(DEBUG="1", STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="")
    assert development.returncode == 0, development.stderr
