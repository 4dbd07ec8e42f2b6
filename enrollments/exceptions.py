from __future__ import annotations

from portal.exceptions import PortalError


class EnrollmentError(PortalError):
    """An enrolment action is not possible (full class, wrong state, too late)."""


class ClassFull(EnrollmentError):
    pass


class FeatureOff(EnrollmentError):
    """The provider has switched this feature off."""
