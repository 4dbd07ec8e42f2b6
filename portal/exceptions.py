from __future__ import annotations


class PortalError(Exception):
    """A business rule said no. The message is safe to show to the user
    (translatable); `field` names the form field it belongs to, if any."""

    def __init__(self, message, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return str(self.message)
