"""Money and dates are formatted in one place (portal.formatting): in the
active language, the provider's country, currency and time zone; nothing else
in the code or templates formats them by hand."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.template import Context, Template
from django.utils import translation

from portal import formatting

ROOT = Path(__file__).resolve().parents[2]
NBSP = "\xa0"
APPS = ["portal", "providers", "accounts", "families", "enrollments", "benefits", "billing", "desk"]


def plain(text: str) -> str:
    return text.replace(NBSP, " ")


@pytest.mark.django_db
def test_aqua_kids_reads_euros_and_day_first_dates(in_aquakids):
    assert plain(formatting.money(Decimal("25"))) == "25,00 €"
    assert plain(formatting.money("1234.5")) == "1.234,50 €"
    assert plain(formatting.money(Decimal("-30"))) == "-30,00 €"
    assert plain(formatting.money(Decimal("12"), "GBP")) == "12,00 £"  # an invoice's own currency
    assert formatting.day(date(2026, 11, 28)) == "28 Nov 2026"
    assert formatting.day(date(2026, 11, 28), "long") == "28 November 2026"
    assert formatting.day("2026-11-28", "day_month") == "28 Nov"  # as snapshots keep dates
    # A moment is read in the provider's zone (Ljubljana is UTC+1 in November).
    moment = datetime(2026, 11, 28, 16, 5, tzinfo=UTC)
    assert formatting.moment(moment) == "28 Nov 2026, 17:05"
    assert formatting.timeofday(moment) == "17:05"
    assert formatting.day(datetime(2026, 11, 28, 23, 30, tzinfo=UTC)) == "29 Nov 2026"
    assert formatting.percent(Decimal("9.50")) == "9,5%"
    assert formatting.percent(Decimal("22.00")) == "22%"
    # Another active language (a staff login's own) keeps the provider's country and currency.
    with translation.override("sl"):
        assert plain(formatting.money(Decimal("25"))) == "25,00 €"
        assert formatting.day(date(2026, 11, 28)) == "28. nov. 2026"
        assert plain(formatting.percent(Decimal("9.50"))) == "9,5 %"
    with translation.override("de"):
        assert formatting.day(date(2026, 11, 28), "long") == "28. November 2026"


@pytest.mark.django_db
def test_leaps_reads_pounds_in_british_english(in_leaps):
    with translation.override("en-gb"):
        assert formatting.money(Decimal("1234.5")) == "£1,234.50"
        assert formatting.day(date(2026, 11, 28)) == "28 Nov 2026"
        assert formatting.moment(datetime(2026, 7, 1, 16, 5, tzinfo=UTC)) == (
            "1 Jul 2026, 17:05"  # London in summer
        )


@pytest.mark.django_db
def test_the_template_filters_are_the_module(in_aquakids):
    template = Template(
        "{% load portal %}{{ a|money }}|{{ d|day }}|{{ d|day:'weekday' }}|{{ m|moment }}"
        "|{{ m|timeofday }}|{{ d|iso }}|{{ none|day }}|{{ none|money }}"
    )
    out = template.render(
        Context(
            {
                "a": Decimal("25"),
                "d": date(2026, 11, 28),
                "m": datetime(2026, 11, 28, 16, 5, tzinfo=UTC),
                "none": None,
            }
        )
    )
    assert plain(out) == "25,00 €|28 Nov 2026|Sat, 28 Nov|28 Nov 2026, 17:05|17:05|2026-11-28||"


@pytest.mark.django_db
def test_e_mails_go_out_under_the_providers_name(in_aquakids, django_capture_on_commit_callbacks):
    from portal.tasks import queue_email

    with django_capture_on_commit_callbacks(execute=True):
        queue_email(subject="Hello", body="Body", to=["parent@example.com"])
    assert mail.outbox[-1].from_email == "Aqua Kids Swim School <no-reply@portal.test>"


@pytest.mark.django_db
def test_a_receipt_is_from_the_provider_with_its_amount_and_date_formatted(
    in_aquakids, django_capture_on_commit_callbacks
):
    from billing import services
    from billing.tests.helpers import card, new_order, payer

    order = new_order(amount="25.00")
    guardian = payer(order.family, email="receipt@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_start(
            order=order, payer=guardian, stripe_payment_method_id=card(), attempt_key="r1"
        )
    receipt = mail.outbox[-1]
    assert receipt.from_email == "Aqua Kids Swim School <no-reply@portal.test>"
    assert plain(receipt.subject) == "Receipt: 25,00 € to Aqua Kids Swim School"
    assert "25,00 €" in plain(receipt.body) and "25.00" not in receipt.body
    assert re.search(r"Paid on \d{1,2} \w+ \d{4}, \d\d:\d\d\.", receipt.body), receipt.body


# --- Nothing formats money or dates by hand -------------------------------------------------


def _sources(pattern: str) -> list[Path]:
    found = []
    for app in [*APPS, "templates"]:
        for path in (ROOT / app).glob(pattern):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts:
                continue
            found.append(path)
    return found


def _templates() -> list[Path]:
    return [p for p in _sources("**/*") if p.suffix in (".html", ".txt", ".css") and p.is_file()]


def test_no_hand_made_date_or_money_formats_in_the_code():
    allowed = {ROOT / "portal" / "formatting.py", ROOT / "portal" / "money.py"}
    stray = []
    hand_made = re.compile(
        r"strftime\(|date_format\(|formats\.localize|number_format\(|format_currency\("
        r"|babel\.dates|\{[^}\n]*:%[a-zA-Z]"
    )
    for path in _sources("**/*.py"):
        if path in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if hand_made.search(line):
                stray.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not stray, "format with portal.formatting:\n" + "\n".join(stray)


def test_no_hand_made_date_formats_in_the_templates():
    stray = []
    for path in _templates():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\|(date|time)\b|\|localize\b|\{% *localize", line):
                stray.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not stray, "use |day, |moment, |timeofday or |iso:\n" + "\n".join(stray)


MONEY_NAMES = (
    r"amount|amount_paid|unit_price|price|owed|charged|total|net|vat|gross|balance"
    r"|outstanding|credit|credit_amount|left|due|paid|refunded|before|after|running"
)
NOT_MONEY = {"pass.left", "p.left"}  # visits left on a pass


def test_no_raw_amounts_in_the_templates():
    """Every amount printed in a page, e-mail or PDF goes through |money."""
    stray = []
    expression = re.compile(r"{{\s*([\w.]+)\s*((?:\|[^}]*)?)}}")
    translated = re.compile(r"{%\s*blocktrans(?:late)?\b(.*?)%}(.*?){%\s*endblocktrans", re.S)
    for path in _templates():
        text = path.read_text()
        printed = [(m.group(1), m.group(2)) for m in expression.finditer(translated.sub("", text))]
        for block in translated.finditer(text):  # `with amount=order.owed|money`
            printed += re.findall(r"\w+=([\w.]+)((?:\|[\w:\"'.-]+)*)", block.group(1))
        for name, filters in printed:
            last = name.split(".")[-1]
            if re.fullmatch(MONEY_NAMES, last) and "money" not in filters and name not in NOT_MONEY:
                stray.append(f"{path.relative_to(ROOT)}: {name}{filters}")
    assert not stray, "format amounts with |money:\n" + "\n".join(stray)


def test_no_raw_amounts_or_dates_in_messages():
    """Messages (`_("...") % {...}`) format amounts and dates through portal.formatting."""
    money_keys = {"amount", "left", "total", "owed", "due", "paid", "price", "balance", "credit"}
    date_keys = {"date", "day", "until", "when", "start", "end", "expires"}
    stray = []
    for path in _sources("**/*.py"):
        text = path.read_text()
        for message in re.finditer(r"_\(\s*(?:\"[^\"]*\"\s*)+\)\s*%\s*\{(.*?)\}", text, re.S):
            for key, value in re.findall(r"\"(\w+)\":\s*([^,\n]+)", message.group(1)):
                value = value.strip()
                if key in money_keys and not re.match(r"(formatting\.)?money\(", value):
                    stray.append(f"{path.relative_to(ROOT)}: {key}={value}")
                if key in date_keys and not re.match(r"(formatting\.)?(day|moment)\(", value):
                    stray.append(f"{path.relative_to(ROOT)}: {key}={value}")
    assert not stray, "\n".join(stray)


def test_without_a_provider_english_is_the_portals_international_english(db):
    """On the platform's host (or a bare schema context) there is no country:
    day first and a 24-hour clock, as the portal's "en" (portal/formats/en)."""
    with translation.override("en"):
        assert formatting.day(date(2026, 11, 28)) == "28 Nov 2026"
        assert formatting.timeofday(datetime(2026, 11, 28, 17, 5).time()) == "17:05"
