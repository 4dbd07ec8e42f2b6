from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portal.money import format_money, from_minor_units, to_minor_units
from portal.theme import WHITE, Theme, contrast

colours = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


@given(colours, colours)
def test_any_brand_colours_give_a_theme_that_meets_wcag_aa(primary, accent):
    theme = Theme.from_colours(primary, accent)
    assert contrast(theme.primary, theme.on_primary) >= 4.5
    assert contrast(theme.accent, theme.on_accent) >= 4.5
    assert contrast(theme.primary_ink, WHITE) >= 4.5
    assert contrast(theme.accent_ink, WHITE) >= 4.5
    # The "soft" tint carries body text (near black).
    assert contrast(theme.primary_soft, "#1b1f24") >= 4.5


def test_a_bad_colour_falls_back_to_the_default():
    assert Theme.from_colours("blue", "").primary == "#1f5fbf"


def test_minor_units_round_trip_per_currency():
    assert to_minor_units(Decimal("12.34"), "EUR") == 1234
    assert to_minor_units(Decimal("1200"), "JPY") == 1200
    assert from_minor_units(1234, "eur") == Decimal("12.34")


def test_money_is_formatted_for_the_providers_locale():
    assert format_money(Decimal("1234.5"), "EUR", "sl_SI") == "1.234,50\xa0€"
    assert format_money(Decimal("1234.5"), "GBP", "en_GB") == "£1,234.50"
