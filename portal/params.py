"""Numbers from the query string and forms, read in one place.

`str.isdigit()` is true for "²" and "٣", which `int()` or the database then
refuse with a 500. Here a number is ASCII digits only, within what a database
id can hold; anything else is a 400 page saying which parameter was wrong.
"""

from __future__ import annotations

import re

from django.core.exceptions import BadRequest
from django.utils.translation import gettext as _

DIGITS = re.compile(r"[0-9]{1,18}")  # below 2**63: a bigint id
BIGINT_MAX = 2**63 - 1


class BadParameter(BadRequest):
    """A parameter that is not what the page expects: answered with a 400 page
    (portal.errors.bad_request) that shows this message."""


def parse_int(raw: object, name: str, *, minimum: int = 1, maximum: int = BIGINT_MAX) -> int | None:
    """`raw` as a whole number between `minimum` and `maximum`; None when it is
    missing or empty; BadParameter for anything else ("²", "-1", "1e3", " 7",
    a number too large)."""
    if raw is None:
        return None
    text = str(raw)
    if text == "":
        return None
    if DIGITS.fullmatch(text):
        value = int(text)
        if minimum <= value <= maximum:
            return value
    shown = text if len(text) <= 20 else text[:20] + "…"
    raise BadParameter(
        _(
            "“%(name)s” must be a whole number between %(minimum)d and %(maximum)d; “%(value)s” "
            "is not. Go back and use the page’s own links and buttons."
        )
        % {"name": name, "minimum": minimum, "maximum": maximum, "value": shown}
    )


def int_param(
    request, name: str, *, minimum: int = 1, maximum: int = BIGINT_MAX, source: str = "any"
) -> int | None:
    """The number in the request's `name` parameter (the form's first, then the
    query string's, unless `source` is "GET" or "POST"); None when absent."""
    raw: str | None = None
    if source in ("any", "POST") and request.method == "POST":
        raw = request.POST.get(name)
    if not raw and source in ("any", "GET"):
        raw = request.GET.get(name)
    return parse_int(raw, name, minimum=minimum, maximum=maximum)
