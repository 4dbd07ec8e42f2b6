"""Browser tests: Debian's Chromium driven by Playwright against a live server
in a thread, on the committed demo data. axe-core checks every page visited.

What a browser test does is committed (the live server writes on its own
connection), and history is never deleted (PostgreSQL refuses). So tests that
change things work in a copy of Aqua Kids made once for the session (`COPY`,
the same people and logins): the demo providers every other test reads stay
as seeded, and each test acts on rows of its own there."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / ".data" / "screenshots"
COPY = "aquakids-browser"  # the copy of the Aqua Kids demo browser tests change


@pytest.fixture(scope="session")
def demo_copy(django_db_setup, django_db_blocker):
    """A provider with Aqua Kids' settings and demo data (families, logins,
    classes, benefits, orders), made once for the session at <COPY>.localhost."""
    import copy
    import importlib
    import io

    from django_tenants.utils import tenant_context

    from devtools.management.commands import seed_demo
    from portal.tenancy import use_public_schema
    from providers.models import Provider

    with django_db_blocker.unblock():
        existing = Provider.objects.filter(slug=COPY).first()
        if existing is not None:
            return existing
        spec = dict(next(s for s in seed_demo.PROVIDERS if s["slug"] == "aquakids"), slug=COPY)
        provider = seed_demo.Command(stdout=io.StringIO()).ensure_provider(spec)
        as_aquakids = copy.copy(provider)
        as_aquakids.slug = "aquakids"  # the demo modules choose their data by slug
        for app in seed_demo.DEMO_APPS:
            module = importlib.import_module(f"{app}.demo")
            with tenant_context(provider), transaction.atomic():
                module.seed(as_aquakids, password=seed_demo.DEMO_PASSWORD)
        use_public_schema()
    return provider


def in_copy(fn: Callable[[], Any]) -> Any:
    """`committed(fn)` in the copy's schema (the copy as the current provider)."""
    from django_tenants.utils import tenant_context

    from providers.models import Provider

    def run():
        with tenant_context(Provider.objects.get(slug=COPY)):
            return fn()

    return committed(run)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A phone-sized page (360 px wide)."""
    context = browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def assert_accessible(page) -> None:
    """No serious or critical axe-core violation (WCAG 2.2 AA, colour contrast included)."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make test` installs it (npm ci).")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"""
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:5]}"
        for v in bad
    )


def committed(fn: Callable[[], Any]) -> Any:
    """Run `fn` on a database connection of its own, committed at once: browser
    tests hold the test transaction, so clean-up done there would roll back."""
    outcome: list = []

    def target():
        try:
            outcome.append(fn())
        except BaseException as error:  # re-raised in the test's thread
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if outcome and isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0] if outcome else None


def log_in(page, portal_server, slug: str, email: str, password: str = "portal-demo") -> None:
    page.goto(portal_server.url(slug, "/accounts/login/"))
    assert_accessible(page)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(portal_server.url(slug, "/"))
