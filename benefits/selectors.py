"""Reads for benefit pages: what is left and where the rest went. Constant
query counts: histories are prefetched, balances summed in the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from enrollments.models import Enrollment, Session
from enrollments.selectors import session_places
from families.models import Family, Student
from portal import clock
from portal.clock import today

from . import rules
from .models import (
    ZERO,
    CreditGrant,
    CreditUse,
    Discount,
    MakeupRequest,
    MakeupToken,
    Pass,
    PassEvent,
    TokenEvent,
)


class LastEvent(TypedDict):
    last_kind: str | None  # tokens_with_state: the kind of the token's newest event
    last_starts: datetime | None  # and the start of the session it booked


class CreditLeft(TypedDict):
    left: Decimal  # with_credit_left


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    TokenWithState: TypeAlias = WithAnnotations[MakeupToken, LastEvent]
    GrantWithLeft: TypeAlias = WithAnnotations[CreditGrant, CreditLeft]

EVENTS = Prefetch(
    "events",
    queryset=TokenEvent.objects.select_related(
        "enrollment__session__klass__location", "enrollment__session__klass__programme"
    ).order_by("at", "pk"),
)


# --- Tokens ------------------------------------------------------------------------------


@dataclass
class TokenGroups:
    # available at the current location (or anywhere)
    here: list[MakeupToken] = field(default_factory=list)
    elsewhere: list[MakeupToken] = field(default_factory=list)  # available at other locations
    pending: list[MakeupToken] = field(default_factory=list)
    expired: list[MakeupToken] = field(default_factory=list)
    spent: list[MakeupToken] = field(default_factory=list)

    @property
    def available(self) -> list[MakeupToken]:
        return self.here + self.elsewhere

    @property
    def history(self) -> list[MakeupToken]:
        return self.pending + self.spent + self.expired


def tokens_with_state(queryset: QuerySet[MakeupToken]) -> QuerySet[TokenWithState]:
    """Tokens annotated with their newest event: state in the same query."""
    last = TokenEvent.objects.filter(token=OuterRef("pk")).order_by("-at", "-pk")
    return queryset.annotate(
        last_kind=Subquery(last.values("kind")[:1]),
        last_starts=Subquery(last.values("enrollment__session__starts_at")[:1]),
    )


def token_groups(
    students: Iterable[Student], location_id: int | None = None, *, with_history: bool = True
) -> TokenGroups:
    """Tokens by state. Without history: one query (the dashboard)."""
    groups = TokenGroups()
    tokens = tokens_with_state(
        MakeupToken.objects.filter(student__in=students)
        .select_related("student", "location", "source_session__klass__programme")
        .order_by("expires_on", "pk")
    )
    if with_history:
        tokens = tokens.prefetch_related(EVENTS)
    for token in tokens:
        token.state = rules.token_state(token)
        token.applied = rules.applied_event(token) if with_history else None
        if token.state == rules.AVAILABLE:
            if location_id is None or token.location_id in (None, location_id):
                groups.here.append(token)
            else:
                groups.elsewhere.append(token)
        elif token.state == rules.PENDING:
            groups.pending.append(token)
        elif token.state == rules.SPENT:
            groups.spent.append(token)
        else:
            groups.expired.append(token)
    return groups


ADVICE_WEEKS_AT_MOST = 26  # sessions looked at for a token's advice


def token_advice(tokens: list[MakeupToken]) -> None:
    """Set `advice` on each available token (rules.token_advice: what to do
    when it cannot be used anywhere or expires soon). Five queries however
    many tokens: the students' classes, the upcoming sessions of their levels
    and programmes until the last token expires, and their places."""
    for token in tokens:
        token.advice = ""
    if not tokens:
        return
    students = list({token.student_id: token.student for token in tokens}.values())
    enrolled = rules.students_levels_and_programmes(students)
    levels = set().union(*(found[0] for found in enrolled.values()))
    programmes = set().union(*(found[1] for found in enrolled.values()))
    now = clock.now()
    last = max(token.expires_on for token in tokens) + timedelta(days=1)
    until = min(
        datetime.combine(last, datetime.min.time(), tzinfo=clock.provider_zone()),
        now + timedelta(weeks=ADVICE_WEEKS_AT_MOST),
    )
    sessions = list(
        Session.objects.filter(starts_at__gt=now, starts_at__lt=until, klass__is_active=True)
        .exclude(status=Session.Status.CANCELLED)
        .filter(Q(klass__programme_id__in=programmes) | Q(klass__level_id__in=levels))
        .select_related("klass__location")
        .order_by("starts_at")
    )
    places = session_places(sessions)
    for token in tokens:
        token_levels, token_programmes, own_classes = enrolled[token.student_id]
        offers = [
            (session, places[session.pk].free, token.student_id in places[session.pk].booked)
            for session in sessions
            if session.klass_id not in own_classes
        ]
        token.advice = rules.token_advice(token, offers, token_levels, token_programmes)


def token_in_family(family: Family, pk: int | str) -> MakeupToken:
    token = get_object_or_404(
        MakeupToken.objects.select_related("student", "location").prefetch_related(EVENTS),
        pk=pk,
        student__family=family,
    )
    token.state = rules.token_state(token)
    return token


def makeup_offers(
    token: MakeupToken, *, weeks: int = rules.MAKEUP_WEEKS_AHEAD
) -> list[rules.Offer]:
    """Sessions a token could be used for, each with the reasons it cannot
    (the same rules the booking enforces)."""
    levels, programmes, own_classes = rules.student_levels_and_programmes(token.student)
    now = clock.now()
    sessions = list(
        Session.objects.filter(starts_at__gt=now, starts_at__lt=now + timedelta(weeks=weeks))
        .filter(Q(klass__programme_id__in=programmes) | Q(klass__level_id__in=levels))
        .exclude(klass_id__in=own_classes)
        .filter(klass__is_active=True)
        .select_related("klass__location", "klass__programme", "klass__level", "klass__instructor")
        .order_by("starts_at")
    )
    places = session_places(sessions)
    offers: list[rules.Offer] = []
    for session in sessions:
        here = places[session.pk]
        offers.append(
            rules.Offer(
                session,
                here.free,
                rules.session_reasons(
                    session=session,
                    free=here.free,
                    student_booked=token.student_id in here.booked,
                    levels=levels,
                    programmes=programmes,
                    token=token,
                ),
            )
        )
    return offers


MAKEUP_REQUEST_WEEKS = rules.MAKEUP_WEEKS_AHEAD  # how far ahead a make-up may be asked for


def _request_offers(student: Student, sessions: list[Session]) -> list[rules.Offer]:
    """Each session with the reasons a make-up request for it is refused
    (empty: it may be asked for). The page lists these; the service
    `makeup_request` refuses with the very same reasons."""
    levels, programmes, own_classes = rules.student_levels_and_programmes(student)
    horizon = clock.now() + timedelta(weeks=MAKEUP_REQUEST_WEEKS)
    places = session_places(sessions)
    offers = []
    for s in sessions:
        reasons = rules.session_reasons(
            session=s,
            free=places[s.pk].free,
            student_booked=student.pk in places[s.pk].booked,
            levels=levels,
        )
        if s.klass_id in own_classes:
            reasons.append(_("This is %(name)s's own class.") % {"name": student.first_name})
        elif s.klass.programme_id not in programmes and s.klass.level_id not in levels:
            reasons.append(_("Make-ups are in your child's own programme."))
        if s.starts_at >= horizon:
            reasons.append(
                _("Requests are for sessions in the next %(weeks)d weeks.")
                % {"weeks": MAKEUP_REQUEST_WEEKS}
            )
        offers.append(rules.Offer(s, places[s.pk].free, reasons))
    return offers


def makeup_request_sessions(student: Student) -> list[rules.Offer]:
    """Sessions of the child's programme or level in the next weeks (not
    the child's own classes), each with why it cannot be asked for."""
    levels, programmes, own_classes = rules.student_levels_and_programmes(student)
    now = clock.now()
    sessions = list(
        Session.objects.filter(
            starts_at__gt=now, starts_at__lt=now + timedelta(weeks=MAKEUP_REQUEST_WEEKS)
        )
        .filter(Q(klass__programme_id__in=programmes) | Q(klass__level_id__in=levels))
        .exclude(klass_id__in=own_classes)
        .select_related("klass__location", "klass__programme", "klass__level")
        .order_by("starts_at")
    )
    return _request_offers(student, sessions)


def makeup_request_offer(student: Student, session: Session) -> rules.Offer:
    """One session a family asks for, judged by the rules of the list above."""
    session = Session.objects.select_related(
        "klass__location", "klass__programme", "klass__level"
    ).get(pk=session.pk)
    return _request_offers(student, [session])[0]


def makeup_requests(students: Iterable[Student], *, status: str = "") -> list[MakeupRequest]:
    requests = MakeupRequest.objects.filter(student__in=students)
    if status:
        requests = requests.filter(status=status)
    return list(
        requests.select_related(
            "student",
            "session__klass__programme",
            "session__klass__location",
            "missed_session",
        ).order_by("-requested_at")
    )


def pending_makeup_requests(*, limit: int = 20) -> list[MakeupRequest]:
    """Requests waiting for the office, the soonest session first."""
    return list(
        MakeupRequest.objects.filter(status=MakeupRequest.Status.PENDING)
        .select_related(
            "student__family",
            "session__klass__programme",
            "session__klass__location",
            "missed_session__klass__programme",
        )
        .order_by("session__starts_at", "pk")[:limit]
    )


def _makeups(students: Iterable[Student]) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(
        student__in=students, kind=Enrollment.Kind.MAKEUP
    ).select_related("student", "session__klass__programme", "session__klass__location")


def past_makeups(students: Iterable[Student]) -> list[Enrollment]:
    """Make-ups whose session has started (newest first)."""
    return list(
        _makeups(students)
        .filter(session__starts_at__lte=clock.now())
        .order_by("-session__starts_at", "-pk")
    )


def upcoming_makeups(students: Iterable[Student]) -> list[Enrollment]:
    """Make-up places still to come (soonest first)."""
    return list(
        _makeups(students)
        .filter(session__starts_at__gt=clock.now())
        .order_by("session__starts_at", "pk")
    )


# --- Passes ------------------------------------------------------------------------------


@dataclass
class PassGroups:
    available: list[Pass] = field(default_factory=list)
    unavailable: list[Pass] = field(default_factory=list)  # used up or revoked
    expired: list[Pass] = field(default_factory=list)


def pass_groups(
    family: Family, students: Iterable[Student], *, with_history: bool = True
) -> PassGroups:
    """Passes by availability; punches left and visits used summed in the query."""
    groups = PassGroups()
    passes = (
        Pass.objects.filter(family=family)
        .filter(Q(student__isnull=True) | Q(student__in=students))
        .select_related("student", "programme")
        .annotate(
            punches_sum=Coalesce(Sum("events__punches"), 0),
            visits=Count("events", filter=Q(events__kind="punch"))
            - Count("events", filter=Q(events__kind="returned")),
            ended=Exists(
                PassEvent.objects.filter(pass_obj=OuterRef("pk"), kind__in=["expired", "revoked"])
            ),
        )
    )
    if with_history:
        passes = passes.prefetch_related(
            Prefetch(
                "events",
                queryset=PassEvent.objects.select_related(
                    "enrollment__session__klass__programme", "enrollment__student"
                ).order_by("at", "pk"),
            )
        )
    day = today()
    for pass_obj in passes:
        pass_obj.left = rules.pass_punches_left(pass_obj)
        pass_obj.used = pass_obj.visits
        pass_obj.usable = rules.pass_is_usable(pass_obj)
        if pass_obj.usable:
            groups.available.append(pass_obj)
        elif pass_obj.expires_on and pass_obj.expires_on < day:
            groups.expired.append(pass_obj)
        else:
            groups.unavailable.append(pass_obj)
    return groups


def pass_in_family(family: Family, pk: int | str) -> Pass:
    return get_object_or_404(Pass.objects.prefetch_related("events"), pk=pk, family=family)


def dropin_offers(pass_obj: Pass, student: Student, *, weeks: int = 4) -> list[rules.Offer]:
    now = clock.now()
    upcoming = Session.objects.filter(
        starts_at__gt=now, starts_at__lt=now + timedelta(weeks=weeks), klass__is_active=True
    )
    if pass_obj.programme_id:
        upcoming = upcoming.filter(klass__programme_id=pass_obj.programme_id)
    sessions = list(
        upcoming.select_related("klass__location", "klass__programme", "klass__level").order_by(
            "starts_at"
        )
    )
    places = session_places(sessions)
    offers: list[rules.Offer] = []
    for s in sessions:
        offers.append(
            rules.Offer(
                s,
                places[s.pk].free,
                rules.session_reasons(
                    session=s,
                    free=places[s.pk].free,
                    student_booked=student.pk in places[s.pk].booked,
                    levels=set(),
                    pass_obj=pass_obj,
                ),
            )
        )
    return offers


# --- Credits -----------------------------------------------------------------------------


def with_credit_left(grants: QuerySet[CreditGrant]) -> QuerySet[GrantWithLeft]:
    """Grants annotated with `left`: the amount less every use (spent,
    withdrawn, expired), summed in the same query. The one definition of what
    is left of a grant."""
    used = (
        CreditUse.objects.filter(grant=OuterRef("pk"))
        .order_by()
        .values("grant")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return grants.annotate(left=F("amount") - Coalesce(Subquery(used), ZERO))


def spendable_credit(family: Family) -> QuerySet[GrantWithLeft]:
    """The family's grants with credit left that has not expired, the
    earliest-expiring first (the order credit is spent in)."""
    return (
        with_credit_left(CreditGrant.objects.filter(family=family))
        .filter(left__gt=ZERO)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today()))
        .order_by(F("expires_on").asc(nulls_last=True), "pk")
    )


def family_credit_balance(family: Family) -> Decimal:
    """What the family can spend, in one query: the one definition of a
    family's credit balance (dashboard, benefits, billing, spending)."""
    total: Decimal = spendable_credit(family).aggregate(total=Coalesce(Sum("left"), ZERO))["total"]
    return total


@dataclass
class CreditSummary:
    balance: Decimal
    recently_used: list[GrantWithLeft]
    other: list[GrantWithLeft]


def credit_summary(family: Family, *, recent_days: int = 30) -> CreditSummary:
    """Grants, each with what is left and where the rest went; grouped as
    recently used and other credits."""
    grants = list(
        with_credit_left(CreditGrant.objects.filter(family=family))
        .prefetch_related(Prefetch("uses", queryset=CreditUse.objects.order_by("-at", "-pk")))
        .order_by("-granted_at", "-pk")
    )
    day = today()
    since = clock.now() - timedelta(days=recent_days)
    recent: list[GrantWithLeft] = []
    other: list[GrantWithLeft] = []
    for grant in grants:
        grant.expired = bool(grant.expires_on and grant.expires_on < day)
        spent_lately = any(u.at >= since and u.kind == "spent" for u in grant.uses.all())
        (recent if spent_lately else other).append(grant)
    return CreditSummary(balance=family_credit_balance(family), recently_used=recent, other=other)


# --- Discounts ---------------------------------------------------------------------------


@dataclass
class DiscountGroups:
    available: list[Discount] = field(default_factory=list)
    used: list[Discount] = field(default_factory=list)
    expired: list[Discount] = field(default_factory=list)


def discount_groups(
    family: Family, students: Iterable[Student], *, with_history: bool = True
) -> DiscountGroups:
    groups = DiscountGroups()
    day = today()
    discounts = (
        Discount.objects.filter(family=family)
        .filter(Q(student__isnull=True) | Q(student__in=students))
        .select_related("student")
        .annotate(times_used=Count("uses"))
    )
    if with_history:
        discounts = discounts.prefetch_related("uses")
    for discount in discounts:
        if discount.revoked_at or (discount.valid_until and discount.valid_until < day):
            groups.expired.append(discount)
        elif discount.max_uses is not None and discount.times_used >= discount.max_uses:
            groups.used.append(discount)
        else:
            groups.available.append(discount)
    return groups


def usable_discounts(discounts: QuerySet[Discount]) -> QuerySet[Discount]:
    """Those that can still reduce an order: not revoked, not expired, with
    uses left (`times_used` counted in the same query). The one definition
    of a usable discount."""
    day = today()
    return (
        discounts.filter(revoked_at__isnull=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=day))
        .annotate(times_used=Count("uses"))
        .filter(Q(max_uses__isnull=True) | Q(times_used__lt=F("max_uses")))
    )


def discounts_to_apply(family: Family) -> list[Discount]:
    """The family's discounts a new order gets (billing.services.order_create):
    sibling and multi-class ones, and the promotions it holds, oldest first."""
    return list(
        usable_discounts(Discount.objects.filter(family=family))
        .select_related("voucher")
        .order_by("pk")
    )
