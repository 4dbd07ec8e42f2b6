"""One spelling of a login e-mail address, used wherever an address is
stored or looked up (login, its throttle, password reset, invitations, staff
logins).

Compatibility normalisation (NFKC) and then case folding, as Unicode
recommends for caseless matching: `ſ` (long s) becomes `s`, the Kelvin sign
`K` becomes `k`, `ß` becomes `ss`. Dotless `ı` stays `ı`: it is another
letter, not a spelling of `i`. Addresses are stored normalised and compared
exactly, never with PostgreSQL's `UPPER()`/`LOWER()` (`iexact`), whose fold
differs from Python's (PostgreSQL upper-cases `ſ` to `S` and `ı` to `I`, so
`iexact` found an account Python counted as another address)."""

from __future__ import annotations

import unicodedata


def normalise(email: str | None) -> str:
    """The address as stored and compared: stripped, NFKC, case-folded (and
    NFKC again, since folding can leave a string that is not in NFKC)."""
    text = unicodedata.normalize("NFKC", (email or "").strip())
    return unicodedata.normalize("NFKC", text.casefold())
