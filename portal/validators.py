"""Checks for what people type, shared by models and forms.

- Names must not carry invisible characters that change how text around
  them is shown: bidirectional overrides and isolates (a name that reads
  "Ana" on screen but "anA" in a list, or reverses the rest of an e-mail)
  and zero-width characters (two names that look the same but differ).
- Country codes are ISO 3166-1 alpha-2 codes (pycountry's list).
"""

from __future__ import annotations

import unicodedata

import pycountry
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

# Bidirectional embeddings, overrides, isolates and marks; zero-width and
# other invisible formatting characters; the byte-order mark.
INVISIBLE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c"
    "\u206d\u206e\u206f\ufeff\u180e\u00ad"
)


def hidden_characters(value: str) -> list[str]:
    """The invisible or direction-changing characters in `value`, as U+ codes."""
    found = []
    for char in value:
        if char in INVISIBLE or (unicodedata.category(char) in ("Cc", "Cf") and char != "\t"):
            code = f"U+{ord(char):04X}"
            if code not in found:
                found.append(code)
    return found


@deconstructible
class PlainNameValidator:
    """A name without invisible or direction-changing characters."""

    message = _(
        "Remove the invisible characters (%(codes)s) from this name: they change how "
        "it is shown. Type the name again without copying it from elsewhere."
    )
    code = "hidden_characters"

    def __call__(self, value: str) -> None:
        found = hidden_characters(str(value or ""))
        if found:
            raise ValidationError(self.message, code=self.code, params={"codes": ", ".join(found)})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainNameValidator)

    def __hash__(self) -> int:
        return hash(self.code)


validate_plain_name = PlainNameValidator()

COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


@deconstructible
class CountryCodeValidator:
    """An ISO 3166-1 alpha-2 country code (upper case: SI, GB, DE)."""

    message = _("“%(value)s” is not a country code: use the two-letter ISO code, e.g. SI or GB.")
    code = "country"

    def __call__(self, value: str) -> None:
        if value and str(value) not in COUNTRY_CODES:
            raise ValidationError(self.message, code=self.code, params={"value": value})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CountryCodeValidator)

    def __hash__(self) -> int:
        return hash(self.code)


validate_country_code = CountryCodeValidator()
