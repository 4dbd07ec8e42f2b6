"""What the admin walk (`tests/test_admin_walk.py`) submits for each
registered admin, declared beside the admin itself so that a new admin is
covered by being registered: the test fails for an admin without one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

Values = Callable[[], dict[str, Any]]
ActionValues = Callable[[Any], dict[str, Any]]  # given the object the action runs on


@dataclass(frozen=True)
class AdminSample:
    """`add`: values for the add form, over what the page already holds
    (None: the admin adds nothing and its add page must refuse). `actions`:
    values for each action's own form, where it has one; every action of the
    admin is run on the first object of its list. `make`: for records the
    demo data has none of, makes one as the product would (a service, or
    what a parent's or Stripe's request leaves), so its pages can be opened."""

    add: Values | None = None
    actions: Mapping[str, ActionValues] = field(default_factory=dict)
    make: Callable[[], object] | None = None


def first_pk(model: type[Model], **filters: Any) -> Any:
    """The primary key of the first such object, for a sample's choice field."""
    return model._default_manager.filter(**filters).order_by("pk").values_list("pk", flat=True)[0]
