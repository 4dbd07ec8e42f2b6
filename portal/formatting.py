"""Money and dates as people read them, in one place.

Everything a family or staff member reads (pages, e-mails, messages, PDFs)
formats amounts and dates here, through these functions or the template
filters of the same names (`portal.templatetags.portal`: `|money`, `|day`,
`|moment`, `|timeofday`, `|iso`):

- the language is the active one (the provider's on parents' pages, e-mails
  and documents; a staff login's own on the admin and the desk), the region
  the provider's country: Aqua Kids' "en" in Slovenia reads "25,00 €" and
  "28 Nov 2026";
- amounts are in the provider's currency unless another is given (an
  invoice keeps the currency it was issued in);
- times are in the provider's time zone (`portal.clock.local`).

Nothing else calls `strftime`, Django's `|date` or Babel for display
(`portal/tests/test_formatting.py` greps the code and templates for strays).
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time, get_datetime_format
from babel.numbers import format_percent
from django.conf import settings
from django.utils import translation

from portal import clock
from portal.money import format_money
from portal.tenancy import current_provider

# Named date styles: a CLDR length, or a skeleton the locale lays out its own way.
DATE_STYLES: dict[str, str] = {
    "medium": "medium",  # 28 Nov 2026
    "long": "long",  # 28 November 2026
    "full": "full",  # Saturday, 28 November 2026
    "day_month": "skeleton:dMMM",  # 28 Nov
    "weekday": "skeleton:MMMEd",  # Sat, 28 Nov
    "weekday_year": "skeleton:yMMMEd",  # Sat, 28 Nov 2026
    "weekday_long": "full",  # Saturday, 28 November 2026 (e-mails: nothing to misread)
    "near": "",  # 28 Nov this year, 28 Nov 2027 in another
}


def _provider_attr(name: str, default: str) -> str:
    value = getattr(current_provider(), name, None)
    return str(value) if value else default


def language() -> str:
    """The active language; the provider's where none is active."""
    return translation.get_language() or _provider_attr("language", settings.LANGUAGE_CODE)


# Without a provider's country: the portal's "en" is international English
# (day first, a 24-hour clock; portal/formats/en), not Babel's American "en".
DEFAULT_REGIONS = {"en": "150"}


@lru_cache(maxsize=128)
def _locale_for(language_code: str, country: str) -> str:
    lang, _sep, region = language_code.replace("_", "-").partition("-")
    candidates = [f"{lang}_{region.upper()}"] if region else []
    if country:
        candidates.append(f"{lang}_{country.upper()}")
    if lang in DEFAULT_REGIONS:
        candidates.append(f"{lang}_{DEFAULT_REGIONS[lang]}")
    candidates.append(lang)
    for candidate in candidates:
        try:
            return str(Locale.parse(candidate))
        except (ValueError, UnknownLocaleError):
            continue
    return "en"


def locale() -> str:
    """Babel's locale: the active language in the provider's country."""
    return _locale_for(language(), _provider_attr("country", ""))


def currency() -> str:
    return _provider_attr("currency", "EUR").upper()


def money(amount: Decimal | str | int | None, currency_code: str | None = None) -> str:
    """25,00 € (in the provider's currency unless another is given)."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    return format_money(value, (currency_code or currency()).upper(), locale())


def percent(rate: Decimal | str | int | None) -> str:
    """A percentage given as one (22.00): 22%, 9.5% (22 % in Slovenian)."""
    if rate is None or rate == "":
        return ""
    fraction = (Decimal(str(rate)) / 100).normalize()
    return format_percent(fraction, locale=locale(), decimal_quantization=False)


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, str):  # ISO, as snapshots keep dates
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return clock.local(value).date() if value.tzinfo else value.date()
    return value


def day(value: date | datetime | str | None, style: str = "medium") -> str:
    """A date (a moment's date in the provider's zone): 28 Nov 2026."""
    if value is None or value == "":
        return ""
    pattern = DATE_STYLES.get(style, style)
    the_day = _as_date(value)
    if style == "near":
        pattern = DATE_STYLES["day_month" if the_day.year == clock.today().year else "medium"]
    if pattern.startswith("skeleton:"):
        return format_skeleton(pattern.removeprefix("skeleton:"), the_day, locale=locale())
    return format_date(the_day, pattern, locale=locale())


def timeofday(value: datetime | time | None) -> str:
    """The time of a moment in the provider's zone: 17:05."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime) and value.tzinfo:
        value = clock.local(value)
    return format_time(value, "short", locale=locale())


def moment(value: datetime | None, style: str = "medium") -> str:
    """A date and time in the provider's zone: 28 Nov 2026, 17:05."""
    if value is None or value == "":
        return ""
    pattern = get_datetime_format("medium", locale=locale())
    return str(pattern).replace("{1}", day(value, style)).replace("{0}", timeofday(value))


def day_range(start: date | datetime | None, end: date | datetime | None) -> str:
    """1 Sep 2026 – 30 Nov 2026."""
    return f"{day(start)} – {day(end)}"


def iso(value: date | datetime | None) -> str:
    """For machines (form values, datetime attributes), never for reading."""
    return value.isoformat() if value else ""
