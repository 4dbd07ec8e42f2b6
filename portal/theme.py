"""Provider colours turned into a theme that always meets WCAG 2.2 AA contrast.

A provider picks any brand colour. The portal derives from it: the text colour
to put on it (black or white, whichever contrasts more: one of them always
reaches 4.5:1) and an "ink" shade of it dark enough for links and outlines on
the white page (darkened until it reaches 4.5:1 against white).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
WHITE = "#ffffff"
BLACK = "#000000"
AA = 4.5


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    return WHITE if contrast(background, WHITE) >= contrast(background, BLACK) else BLACK


def darken_to_contrast(colour: str, against: str = WHITE, ratio: float = AA) -> str:
    """The colour, darkened in small steps until it reaches `ratio` against `against`."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    current = colour.lower()
    while contrast(current, against) < ratio and (r or g or b):
        r, g, b = (max(0, int(c * 0.92)) for c in (r, g, b))
        current = f"#{r:02x}{g:02x}{b:02x}"
    return current


def tint(colour: str, amount: float) -> str:
    """Mix the colour with white (`amount` 0..1 of white)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    r, g, b = (round(c + (255 - c) * amount) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def shade(colour: str, amount: float) -> str:
    """Mix the colour with black (`amount` 0..1 of black)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    r, g, b = (round(c * (1 - amount)) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


# The platform's own pages (no provider): a quiet slate.
NEUTRAL = "#475569"


@dataclass(frozen=True)
class Theme:
    primary: str
    on_primary: str
    primary_ink: str
    primary_soft: str
    accent: str
    on_accent: str
    accent_ink: str

    @classmethod
    def from_colours(cls, primary: str, accent: str) -> Theme:
        primary = primary if HEX.match(primary or "") else "#1f5fbf"
        accent = accent if HEX.match(accent or "") else primary
        return cls(
            primary=primary,
            on_primary=text_on(primary),
            primary_ink=darken_to_contrast(primary),
            primary_soft=tint(primary, 0.9),
            accent=accent,
            on_accent=text_on(accent),
            accent_ink=darken_to_contrast(accent),
        )

    def scale(self) -> dict[str, str]:
        """The brand colour as the 50..950 scale the admin's stylesheet uses
        (django-unfold's "primary"). Its buttons put white text on 600 and its
        links are 600 on white: 600 is the ink, so both reach AA."""
        ink = self.primary_ink
        return {
            "50": tint(self.primary, 0.95),
            "100": tint(self.primary, 0.9),
            "200": tint(self.primary, 0.75),
            "300": tint(self.primary, 0.55),
            "400": tint(self.primary, 0.3),
            "500": self.primary,
            "600": ink,
            "700": shade(ink, 0.15),
            "800": shade(ink, 0.3),
            "900": shade(ink, 0.45),
            "950": shade(ink, 0.6),
        }

    def scale_css(self) -> str:
        return "".join(f"--brand-{weight}:{value};" for weight, value in self.scale().items())

    def css(self) -> str:
        return (
            f"--brand:{self.primary};--on-brand:{self.on_primary};"
            f"--brand-ink:{self.primary_ink};--brand-soft:{self.primary_soft};"
            f"--accent:{self.accent};--on-accent:{self.on_accent};--accent-ink:{self.accent_ink};"
        )
