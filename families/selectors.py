"""Reads for family pages, scoped to the logged-in guardian's family."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from accounts.emails import normalise

from . import rules
from .models import (
    ContactEmail,
    ContactPhone,
    Family,
    FamilyNote,
    Guardian,
    Invitation,
    MailingAddress,
    ProblemReport,
    Student,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django_stubs_ext import StrPromise

    from accounts.models import User

Contact = TypeVar("Contact", ContactEmail, ContactPhone, MailingAddress)


def guardian_for_user(user: User | AnonymousUser) -> Guardian | None:
    if not user.is_authenticated:
        return None
    try:
        # Joined when the user was loaded (families.backends): no query then.
        return user.guardian
    except Guardian.DoesNotExist:
        return None


def guardian_for_request(request: HttpRequest) -> Guardian | None:
    """The guardian behind this request, looked up once per request (kept in
    the request's __dict__; families.staff drops it). Staff viewing as a
    family (read-only) see it through its primary guardian."""
    if "_portal_guardian" not in request.__dict__:
        family_id = getattr(request, "session", {}).get("view_as_family")
        user = request.user
        if family_id and user.is_authenticated and user.has_perm("families.view_as_family"):
            request.__dict__["_portal_guardian"] = (
                Guardian.objects.select_related("family", "user")
                .filter(family_id=family_id, is_primary=True)
                .first()
            )
        else:
            request.__dict__["_portal_guardian"] = guardian_for_user(request.user)
    guardian: Guardian | None = request.__dict__["_portal_guardian"]
    return guardian


def family_students(family: Family) -> list[Student]:
    return list(Student.objects.filter(family=family))


def focused_student(students: list[Student], raw: str | None) -> Student | None:
    """The child named by `?child=`, which must belong to this family (else 404)."""
    if not raw:
        return None
    for student in students:
        if str(student.pk) == raw:
            return student
    raise Http404("No such child in this family.")


@dataclass
class GuardianColumn:
    """One column of the contact details: a guardian (or Unassigned) and their values."""

    guardian: Guardian | None
    emails: list[ContactEmail] = field(default_factory=list)
    phones: list[ContactPhone] = field(default_factory=list)
    addresses: list[MailingAddress] = field(default_factory=list)
    editable: bool = False
    access: str = ""

    @property
    def access_label(self) -> StrPromise | str:
        return rules.ACCESS_LABELS.get(self.access, "")

    @property
    def key(self) -> str:
        return str(self.guardian.pk) if self.guardian else "unassigned"


def family_login_emails(family_id: int) -> list[str]:
    """The addresses of the family's guardians who can log in: where e-mails
    about the family go (one query)."""
    return sorted(
        Guardian.objects.filter(family_id=family_id, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )


def family_guardians(family: Family) -> list[Guardian]:
    return list(
        Guardian.objects.filter(family=family)
        .select_related("user")
        .prefetch_related(
            Prefetch("invitations", queryset=Invitation.objects.order_by("-created_at", "-pk"))
        )
    )


def contact_columns(viewer: Guardian, guardians: list[Guardian]) -> list[GuardianColumn]:
    """A column per guardian plus Unassigned, in a constant number of queries."""
    family = viewer.family
    by_id = {g.pk: g for g in guardians}
    columns = {
        g.pk: GuardianColumn(
            guardian=g,
            editable=rules.may_edit_details_of(viewer, g),
            access=rules.access_state(g),
        )
        for g in guardians
    }
    unassigned = GuardianColumn(guardian=None, editable=rules.may_edit_details_of(viewer, None))
    for attr, model in (
        ("emails", ContactEmail),
        ("phones", ContactPhone),
        ("addresses", MailingAddress),
    ):
        for value in model.objects.filter(family=family):
            owner = by_id.get(value.guardian_id) if value.guardian_id else None
            if value.guardian_id:
                value.guardian = owner  # reuse, no query per row (None: not of this family)
            getattr(columns.get(owner.pk, unassigned) if owner else unassigned, attr).append(value)
    result = list(columns.values())
    if unassigned.emails or unassigned.phones or unassigned.addresses or unassigned.editable:
        result.append(unassigned)
    return result


def guardian_in_family(family: Family, pk: int | str) -> Guardian:
    return get_object_or_404(
        Guardian.objects.select_related("user").prefetch_related(
            Prefetch("invitations", queryset=Invitation.objects.order_by("-created_at", "-pk"))
        ),
        pk=pk,
        family=family,
    )


def student_in_family(family: Family, pk: int | str) -> Student:
    return get_object_or_404(Student, pk=pk, family=family)


def family_problem_reports(family: Family) -> list[ProblemReport]:
    """The family's problem reports with the office's answers, newest first."""
    return list(ProblemReport.objects.filter(family=family).order_by("-created_at", "-pk"))


def problem_report_in_family(family: Family, pk: int | str) -> ProblemReport:
    return get_object_or_404(ProblemReport, pk=pk, family=family)


def contact_in_family(model: type[Contact], family: Family, pk: int | str) -> Contact:
    return get_object_or_404(model.objects.select_related("guardian__user"), pk=pk, family=family)


# --- Staff search ---------------------------------------------------------------------------


@dataclass
class FamilyHit:
    family: Family
    matched: list[str] = field(default_factory=list)  # what matched, for the result list


def _phone_query(query: str, region: str) -> Q | None:
    """A phone typed in any format: local ("041 555 123"), international
    ("+386 41 555 123", "00386..."), or a run of its digits ("555123")."""
    import phonenumbers

    digits = re.sub(r"\D", "", query)
    if len(digits) < 4 or re.search(r"[^\d\s()+./-]", query):
        return None
    # A run of digits matches inside stored numbers (+38641555123) without
    # its trunk or international zeros; short runs would match too many.
    national = digits.lstrip("0")
    found = Q(number__contains=national) if len(national) >= 5 else Q(pk__in=[])
    try:
        parsed = phonenumbers.parse(query, region or None)
    except phonenumbers.NumberParseException:
        return found
    if phonenumbers.is_possible_number(parsed):
        found |= Q(number=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return found


def families_by_phone(query: str, *, region: str = "") -> QuerySet[ContactPhone, int] | None:
    """Ids of the families with a phone matching what was typed (None when
    it does not look like a phone number): a subquery."""
    phones = _phone_query(query, region)
    if phones is None:
        return None
    return ContactPhone.objects.filter(phones).values_list("family_id", flat=True)


def _names(words: list[str], *fields: str) -> Q:
    """Every word in one of the fields (a first name and a surname, in any order)."""
    query = Q()
    for word in words:
        any_field = Q()
        for name in fields:
            any_field |= Q(**{f"{name}__icontains": word})
        query &= any_field
    return query


def family_search(query: str, *, region: str = "", limit: int = 25) -> list[FamilyHit]:
    """Families found by a child's or guardian's name, the family's name, an
    e-mail address or a phone number in any format: a fixed number of
    queries, each match named."""
    query = " ".join(query.split())
    if len(query) < 2:
        return []
    hits: dict[int, FamilyHit] = {}

    def add(family: Family, matched: str) -> None:
        hit = hits.setdefault(family.pk, FamilyHit(family))
        if matched not in hit.matched:
            hit.matched.append(matched)

    phones = _phone_query(query, region)
    if phones is not None:
        for phone in ContactPhone.objects.filter(phones).select_related("family")[:limit]:
            add(phone.family, str(phone.number))
    else:
        words = query.split()
        if "@" in query:
            for email in ContactEmail.objects.filter(email__iexact=query).select_related("family")[
                :limit
            ]:
                add(email.family, email.email)
            for guardian in Guardian.objects.filter(user__email=normalise(query)).select_related(
                "family", "user"
            )[:limit]:
                add(guardian.family, guardian.user.email if guardian.user else query)
        for family in Family.objects.filter(_names(words, "name"))[:limit]:
            add(family, _("family"))
        for student in Student.objects.filter(
            _names(words, "first_name", "last_name")
        ).select_related("family")[:limit]:
            add(student.family, f"{student.first_name} {student.last_name} ({_('child')})")
        for guardian in Guardian.objects.filter(
            _names(words, "first_name", "last_name")
        ).select_related("family")[:limit]:
            add(guardian.family, f"{guardian.first_name} {guardian.last_name} ({_('guardian')})")
    return sorted(hits.values(), key=lambda h: (h.family.name.lower(), h.family.pk))[:limit]


def new_problem_reports(*, limit: int = 10) -> list[ProblemReport]:
    return list(
        ProblemReport.objects.filter(status=ProblemReport.Status.NEW)
        .select_related("family")
        .order_by("-created_at")[:limit]
    )


def family_notes(family: Family, *, limit: int = 20) -> list[FamilyNote]:
    return list(FamilyNote.objects.filter(family=family)[:limit])


@dataclass
class FamilyContacts:
    guardians: list[Guardian]  # each with its login, e-mails and phones
    emails: list[ContactEmail]  # the family's, belonging to no guardian
    phones: list[ContactPhone]


def family_contacts(family: Family) -> FamilyContacts:
    """The family's guardians with their login, e-mail addresses and phones,
    and the contacts that belong to no guardian (a home phone): five queries
    however many."""
    guardians = list(
        Guardian.objects.filter(family=family)
        .select_related("user")
        .prefetch_related(
            Prefetch("emails", queryset=ContactEmail.objects.order_by("pk")),
            Prefetch("phones", queryset=ContactPhone.objects.order_by("pk")),
        )
    )
    return FamilyContacts(
        guardians=guardians,
        emails=list(ContactEmail.objects.filter(family=family, guardian__isnull=True)),
        phones=list(ContactPhone.objects.filter(family=family, guardian__isnull=True)),
    )
