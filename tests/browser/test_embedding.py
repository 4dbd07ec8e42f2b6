"""The portal inside a provider's website: a host page on another origin
frames it, the parent logs in and pays there; other sites cannot frame it."""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from billing.models import LedgerEntry, Payment
from providers.models import FramingAttempt, Provider

from .conftest import ROOT, SCREENSHOTS, committed

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def host_site(tmp_path, portal_server):
    """A provider website on http://127.0.0.1:<port>/ embedding aquakids."""
    html = (ROOT / "demo" / "host.html").read_text()
    Path(tmp_path, "index.html").write_text(
        html.replace("__PORTAL__", portal_server.url("aquakids", "/"))
    )
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def allowed(host_site):
    """Let the host site frame aquakids for this test."""
    before = committed(lambda: Provider.objects.get(slug="aquakids").embed_origins)
    committed(lambda: Provider.objects.filter(slug="aquakids").update(embed_origins=host_site))
    yield host_site
    committed(lambda: Provider.objects.filter(slug="aquakids").update(embed_origins=before))


@pytest.fixture
def undo_payments():
    before = committed(_payments)
    yield

    def undo():
        with schema_context("aquakids"):
            new = Payment.objects.exclude(pk__in=before)
            LedgerEntry.objects.filter(payment__in=new).delete()
            new.delete()

    committed(undo)


def _payments():
    with schema_context("aquakids"):
        return set(Payment.objects.values_list("pk", flat=True))


def portal_frame(page):
    page.wait_for_selector("iframe")
    return page.frame_locator("iframe")


def test_log_in_and_pay_inside_the_frame(allowed, page, undo_payments):
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(allowed + "/")
    frame = portal_frame(page)
    frame.get_by_label("E-mail address").fill("ana@aquakids.test")
    frame.get_by_label("Password").fill("portal-demo")
    frame.get_by_role("button", name="Log in").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("The Novak family")
    # The frame grew to its content (postMessage from the portal).
    page.wait_for_function("document.querySelector('iframe').offsetHeight > 1200")
    page.screenshot(path=str(SCREENSHOTS / "embedded.png"))
    # The parent's place inside the portal survives a reload of the provider's page.
    frame.get_by_role("navigation", name="Family members").get_by_role(
        "link", name="Leo", exact=True
    ).click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("Leo’s dashboard", timeout=15_000)
    page.wait_for_timeout(300)
    page.reload()
    frame = portal_frame(page)
    expect(frame.get_by_role("heading", level=1)).to_have_text("Leo’s dashboard")
    frame.get_by_role("navigation", name="Family members").get_by_role(
        "link", name="Whole family"
    ).click()
    expect(frame.get_by_role("heading", level=1)).to_have_text("The Novak family")

    row = frame.locator("#payments .order-row", has_text="Autumn term: Swim Level 2")
    with page.context.expect_page() as opened:
        row.get_by_role("link", name=re.compile("Pay")).click()
    pay = opened.value  # our own payment page, top-level in a new tab
    # It opens on the click and goes to the single-use link minted for it.
    pay.wait_for_url(re.compile(r"^http://aquakids\.localhost:\d+/billing/continue/"))
    expect(pay.locator("main")).to_contain_text("Autumn term: Swim Level 2")
    expect(pay.locator("main")).to_contain_text("180,00")
    pay.get_by_role("button", name="Continue").click()  # "Continue as Ana Novak?"
    card = pay.locator("#card-element")
    card.locator('input[placeholder="number"]').fill("4242424242424242")
    card.locator('input[placeholder="exp_month"]').fill("12")
    card.locator('input[placeholder="exp_year"]').fill("31")
    card.locator('input[placeholder="cvc"]').fill("123")
    card.locator('input[placeholder="postal_code"]').fill("1000")
    pay.get_by_role("button", name=re.compile("Pay")).click()
    expect(pay.locator("#payment-status")).to_contain_text("Paid, thank you", timeout=20_000)
    # The way back is the provider's site the parent came from.
    back = pay.get_by_role("link", name="Back to where you were")
    assert back.get_attribute("href").startswith(allowed)
    pay.close()
    page.bring_to_front()
    # Back on the provider's page, the frame shows the new status by itself.
    expect(frame.locator("#payments .order-row.is-unpaid", has_text="Swim Level 2")).to_have_count(
        0, timeout=15_000
    )


def test_deep_link_opens_a_section(allowed, page, tmp_path):
    html = (
        Path(tmp_path, "index.html")
        .read_text()
        .replace(
            'data-title="Aqua Kids family portal"',
            'data-title="Aqua Kids family portal" data-section="benefits"',
        )
    )
    Path(tmp_path, "index.html").write_text(html)
    page.goto(allowed + "/")
    frame = portal_frame(page)
    frame.get_by_label("E-mail address").fill("ana@aquakids.test")
    frame.get_by_label("Password").fill("portal-demo")
    frame.get_by_role("button", name="Log in").click()
    expect(frame.locator("#benefits")).to_be_visible()
    assert page.evaluate("document.querySelector('iframe').src").endswith("#benefits")


def test_a_site_that_is_not_allowed_cannot_frame_the_portal(host_site, page):
    page.goto(host_site + "/")
    page.wait_for_selector("iframe")
    page.wait_for_timeout(1500)  # the same page on an allowed origin shows the login (test above)
    assert page.frame_locator("iframe").get_by_label("Password").count() == 0
    # The refusal is noted for the provider's staff (the embed page), then removed here.
    attempts = FramingAttempt.objects.filter(provider__slug="aquakids", origin=host_site)
    assert committed(lambda: attempts.count()) == 1
    committed(lambda: attempts.delete())


def test_cookies_refused_in_the_frame_offers_a_new_tab(allowed, page, settings):
    settings.PARTITIONED_COOKIES = []  # the browser then drops them in a third-party frame
    page.goto(allowed + "/")
    frame = portal_frame(page)
    notice = frame.locator("#cookie-notice")
    expect(notice).to_be_visible()
    expect(notice.get_by_role("link", name="Open the portal in a new tab")).to_have_attribute(
        "target", "_blank"
    )
