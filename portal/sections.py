"""The one mechanism through which apps put sections on the family dashboard.

Each app registers its sections (in its AppConfig.ready) with a level:
child-level sections filter by the focused child; family-level sections stay
the same and say so while a child is focused. The dashboard, the quick menu
and the per-section URL (HTMX refresh or full-page load) all read this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.http import HttpRequest

    from families.models import Family, Guardian, Student
    from providers.models import Provider


class Level(Enum):
    CHILD = "child"
    FAMILY = "family"


@dataclass(frozen=True)
class Viewer:
    """Who is looking, already scoped: every section builds its querysets from this."""

    request: HttpRequest
    provider: Provider
    guardian: Guardian
    family: Family
    students: list[Student]
    focus: Student | None
    # Results several sections share, computed once per request (see `memo`).
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def focused_students(self) -> list[Student]:
        """The students a child-level section shows: the focused one, or all."""
        return [self.focus] if self.focus else self.students


@dataclass(frozen=True)
class Section:
    key: str
    title: Any
    level: Level
    template: str  # "app/sections.html#partial"
    order: int
    context: Callable[[Viewer], dict]
    enabled: Callable[[Provider], bool] = field(default=lambda provider: True)
    # Shown on a family-level section while a child is focused.
    family_note: Any = _("Shared by the whole family: this does not change when you pick a child.")
    # Fetch the section again when the parent comes back to the page (e.g.
    # from paying in another tab).
    refresh_on_return: bool = False

    @property
    def is_child_level(self) -> bool:
        return self.level is Level.CHILD


_registry: dict[str, Section] = {}


def register(section: Section) -> Section:
    if section.key in _registry:
        raise ValueError(f"dashboard section {section.key!r} registered twice")
    _registry[section.key] = section
    return section


def sections_for(provider: Provider) -> list[Section]:
    return sorted(
        (s for s in _registry.values() if s.enabled(provider)), key=lambda s: (s.order, s.key)
    )


def get_section(provider: Provider, key: str) -> Section | None:
    section = _registry.get(key)
    return section if section and section.enabled(provider) else None


@dataclass(frozen=True)
class RenderedSection:
    section: Section
    context: dict

    @property
    def key(self) -> str:
        return self.section.key


def render_sections(viewer: Viewer, sections: list[Section]) -> list[RenderedSection]:
    return [RenderedSection(section, section.context(viewer)) for section in sections]
