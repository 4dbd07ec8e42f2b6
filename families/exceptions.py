from __future__ import annotations

from portal.exceptions import PortalError


class NotAllowed(PortalError):
    """The guardian may not do this in their family."""


class InvitationInvalid(PortalError):
    """The invitation link cannot be used (expired, revoked, used, tampered)."""

    def __init__(self, message, *, reason: str):
        super().__init__(message)
        self.reason = reason
