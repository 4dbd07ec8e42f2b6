"""Data at scale for the benchmarks (`manage.py bench_data`, `make bench`).

One provider ("bench") holds a small family (one child, a handful of records)
and a large one (10 children, 300 bookings, 2,000 ledger lines, 100 benefit
entries); any number of further providers ("scale-0001", ...) each hold a
small family of their own. Everything is idempotent and made with bulk
inserts, so a thousand providers take minutes, not hours.
"""

from __future__ import annotations

import multiprocessing
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from datetime import time as clock_time
from decimal import Decimal
from functools import lru_cache

from django.contrib.auth.hashers import make_password
from django.db import connections, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from providers.models import Provider
from providers.services import provider_create

PASSWORD = "bench-parent"
BENCH = "bench"
LARGE = {"children": 10, "bookings": 300, "ledger": 2000, "benefits": 100}


@lru_cache(maxsize=1)
def password_hash() -> str:
    """Hashed once: hashing is deliberately slow, and every login shares it."""
    return make_password(PASSWORD)


def scale_slug(number: int) -> str:
    return f"scale-{number:04d}"


def provider_ensure(slug: str, name: str) -> Provider:
    provider = Provider.objects.filter(slug=slug).first()
    if provider is None:
        provider = provider_create(
            slug=slug,
            name=name,
            domains=[f"{slug}.localhost"],
            online_payments=True,
            invoices_enabled=True,
            makeup_tokens_enabled=True,
            pass_redemption_enabled=True,
            drop_enabled=True,
            transfer_enabled=True,
        )
    return provider


def providers_ensure(count: int, *, jobs: int = 2, report=print) -> list[float]:
    """At least `count` scale providers, each with a small family, made by
    `jobs` processes. Returns the seconds each new provider took (schema,
    domain, timetable and family)."""
    existing = set(
        Provider.objects.filter(slug__startswith="scale-").values_list("slug", flat=True)
    )
    missing = [n for n in range(1, count + 1) if scale_slug(n) not in existing]
    if not missing:
        return []
    timings = [scale_provider_make(missing[0])]  # the first makes the template, if needed
    batches = [missing[1:][index::jobs] for index in range(jobs)]
    connections.close_all()  # each process opens its own
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        for batch_timings in pool.map(_make_batch, batches):
            timings.extend(batch_timings)
            report(f"  {len(timings)} providers made")
    return timings


def _make_batch(numbers: list[int]) -> list[float]:
    connections.close_all()
    try:
        return [scale_provider_make(number) for number in numbers]
    finally:
        connections.close_all()


def scale_provider_make(number: int) -> float:
    start = time.perf_counter()
    slug = scale_slug(number)
    provider = provider_ensure(slug, f"Scale Club {number:04d}")
    with tenant_context(provider):
        timetable_ensure(classes=2)
        family_small(f"parent@{slug}.test")
    # As providers.tasks.setup_provider: a fresh database session for each
    # schema (one that made hundreds keeps them all in its caches).
    connections.close_all()
    return time.perf_counter() - start


def bench_ensure() -> Provider:
    """The bench provider with its small and large family."""
    provider = provider_ensure(BENCH, "Benchmark Swim Club")
    with tenant_context(provider):
        timetable_ensure(classes=40)
        for email in small_emails():
            family_small(email)
        family_large("large@bench.test")
    return provider


def small_emails(count: int = 25) -> list[str]:
    """Logins of the bench provider's small families (one per parent in the
    load test); the first is small@bench.test."""
    return ["small@bench.test"] + [f"small-{n:02d}@bench.test" for n in range(2, count + 1)]


def sessions(emails: list[str]) -> list[dict]:
    """A logged-in session per login (in the current provider's schema),
    with the family's children: what the load generator sends."""
    from django.test import Client

    from families.models import Guardian

    found = []
    for email in emails:
        guardian = Guardian.objects.select_related("user", "family").get(user__email=email)
        client = Client()
        assert guardian.user is not None  # found by the login's e-mail
        client.force_login(guardian.user)
        found.append(
            {
                "email": email,
                "cookie": f"sessionid={client.cookies['sessionid'].value}",
                "children": list(guardian.family.students.values_list("pk", flat=True)),
            }
        )
    return found


def timetable_ensure(*, classes: int) -> None:
    from enrollments import services
    from enrollments.models import Class, Level, Location, Programme

    if Class.objects.exists():
        return
    day = timezone.localdate()
    term_start = day - timedelta(days=day.weekday()) - timedelta(weeks=9)
    locations = [Location.objects.create(name=f"Pool {n}") for n in range(1, 4)]
    levels = [Level.objects.create(name=f"Level {n}", order=n) for n in range(1, 5)]
    programme = Programme.objects.create(name="Swim lessons")
    with transaction.atomic():
        for n in range(classes):
            klass = Class.objects.create(
                programme=programme,
                location=locations[n % len(locations)],
                level=levels[n % len(levels)],
                weekday=n % 7,
                start_time=clock_time(9 + n % 10, 0),
                capacity=200,
                term_start=term_start,
                term_end=term_start + timedelta(weeks=20),
            )
            services.sessions_generate(klass=klass)


def guardian_ensure(email: str, family_name: str):
    from families.models import Family, Guardian

    guardian = Guardian.objects.filter(user__email=email).select_related("family").first()
    if guardian:
        return guardian, False
    user = User.objects.create(
        email=email, password=password_hash(), full_name=f"Parent {family_name}"
    )
    family = Family.objects.create(name=family_name)
    guardian = Guardian.objects.create(
        family=family,
        user=user,
        first_name="Parent",
        last_name=family_name,
        is_primary=True,
        can_pay=True,
        can_edit_students=True,
        can_manage_enrollments=True,
    )
    return guardian, True


def family_small(email: str) -> None:
    """One child in one class, two orders (one paid), one make-up token."""
    guardian, created = guardian_ensure(email, "Small")
    if created:
        with transaction.atomic():
            _fill(guardian.family, children=1, bookings=1, ledger=3, benefits=2)


def family_large(email: str) -> None:
    guardian, created = guardian_ensure(email, "Large")
    if created:
        with transaction.atomic():
            _fill(guardian.family, **LARGE)


def _fill(family, *, children: int, bookings: int, ledger: int, benefits: int) -> None:
    from benefits.models import (
        CreditGrant,
        CreditUse,
        Discount,
        MakeupToken,
        Pass,
        PassEvent,
        TokenEvent,
    )
    from billing.models import LedgerEntry, Order, OrderLine, Payment
    from enrollments.models import Attendance, Class, Enrollment, EnrollmentChange, Session
    from families.models import Student

    now = timezone.now()
    today = timezone.localdate()
    students = Student.objects.bulk_create(
        [
            Student(
                family=family,
                first_name=f"Child{n + 1}",
                last_name=family.name,
                date_of_birth=date(2014 + n % 8, 1 + n % 12, 1 + n),
            )
            for n in range(children)
        ]
    )
    classes = list(Class.objects.order_by("pk"))
    # Bookings: per child, two current classes and one waitlist place, the rest
    # finished enrolments of earlier terms and single make-up sessions.
    enrollments = []
    per_child = max(1, bookings // children)
    for index, student in enumerate(students):
        for n in range(per_child):
            klass = classes[(index * per_child + n) % len(classes)]
            if n < 2:
                status, start, end = "active", klass.term_start, None
            elif n == 2:
                status, start, end = "waitlisted", today, None
            else:
                start = klass.term_start - timedelta(weeks=20 * (1 + n // len(classes)) + n)
                status, end = "completed", start + timedelta(weeks=12)
            enrollments.append(
                Enrollment(
                    student=student, klass=klass, status=status, start_date=start, end_date=end
                )
            )
    enrollments = Enrollment.objects.bulk_create(enrollments)
    EnrollmentChange.objects.bulk_create(
        [
            EnrollmentChange(
                enrollment=e,
                action="waitlisted" if e.status == "waitlisted" else "enrolled",
                effective_date=e.start_date,
            )
            for e in enrollments
        ]
    )
    active = [e for e in enrollments if e.status == "active"]
    past_sessions: dict[int, list[Session]] = {}
    for session in Session.objects.filter(
        klass__in={e.klass_id for e in active}, starts_at__lt=now
    ):
        past_sessions.setdefault(session.klass_id, []).append(session)
    Attendance.objects.bulk_create(
        [
            Attendance(enrollment=e, session=s, status="absent" if s.pk % 7 == 0 else "present")
            for e in active
            for s in past_sessions.get(e.klass_id, [])
        ]
    )

    # Ledger: each order one charge line; paid orders one payment line.
    orders_count = (ledger + 1) // 2
    orders = Order.objects.bulk_create(
        [
            Order(family=family, student=students[n % children], title=f"Lessons, month {n + 1}")
            for n in range(orders_count)
        ]
    )
    OrderLine.objects.bulk_create(
        [
            OrderLine(order=o, kind="enrollment", description=o.title, unit_price=Decimal("42.50"))
            for o in orders
        ]
    )
    payments_count = ledger - orders_count
    paid = orders[:payments_count]
    payments = Payment.objects.bulk_create(
        [
            Payment(
                family=family,
                order=o,
                amount=Decimal("42.50"),
                method="card",
                status="succeeded",
                idempotency_key=f"bench-{secrets.token_hex(12)}",
                succeeded_at=now,
            )
            for o in paid
        ]
    )
    start = now - timedelta(days=2 * orders_count)
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                family=family,
                order=o,
                kind="charge",
                amount=Decimal("42.50"),
                description=o.title,
                at=start + timedelta(days=2 * n),
            )
            for n, o in enumerate(orders)
        ]
        + [
            LedgerEntry(
                family=family,
                order=o,
                payment=p,
                kind="payment",
                amount=Decimal("-42.50"),
                description=f"Card payment: {o.title}",
                at=start + timedelta(days=2 * n, hours=1),
            )
            for n, (p, o) in enumerate(zip(payments, paid, strict=True))
        ]
    )

    # Benefits: tokens with their events, credits with uses, passes with
    # punches, discounts; `benefits` rows in all.
    quarter = max(1, benefits // 4)
    tokens = MakeupToken.objects.bulk_create(
        [
            MakeupToken(
                student=students[n % children],
                reason="absence",
                expires_on=today + timedelta(days=30 - n),
            )
            for n in range(quarter)
        ]
    )
    TokenEvent.objects.bulk_create([TokenEvent(token=t, kind="issued") for t in tokens])
    grants = CreditGrant.objects.bulk_create(
        [
            CreditGrant(
                family=family,
                amount=Decimal("10.00"),
                source="goodwill",
                description=f"Goodwill credit {n + 1}",
                expires_on=today + timedelta(days=90),
            )
            for n in range(max(1, quarter // 2))
        ]
    )
    CreditUse.objects.bulk_create(
        [
            CreditUse(grant=g, kind="spent", amount=Decimal("4.00"), where="Lessons")
            for g in grants[: max(1, len(grants) - 1)]
        ]
    )
    remaining = benefits - len(tokens) * 2 - len(grants) * 2
    if remaining > 0:
        passes = Pass.objects.bulk_create(
            [
                Pass(
                    family=family,
                    student=students[n % children],
                    name="10-visit card",
                    kind="punch",
                    purchased_on=today - timedelta(days=10),
                    expires_on=today + timedelta(days=180),
                    amount_paid=Decimal("90.00"),
                )
                for n in range(max(1, remaining // 10))
            ]
        )
        PassEvent.objects.bulk_create(
            [PassEvent(pass_obj=p, kind="purchased", punches=10) for p in passes]
            + [
                PassEvent(pass_obj=p, kind="punch", punches=-1)
                for p in passes
                for _ in range(max(0, remaining // len(passes) - 2))
            ]
        )
        Discount.objects.bulk_create(
            [Discount(family=family, kind="sibling", description="Sibling discount", percent=10)]
        )


# Catalogues that every new schema writes to: autovacuum would get to them
# while the next figures are taken.
CATALOGS = [
    "pg_class", "pg_attribute", "pg_type", "pg_depend", "pg_constraint", "pg_index",
    "pg_namespace", "pg_trigger", "pg_attrdef", "pg_proc", "pg_sequence", "pg_description",
]  # fmt: skip


def settle(schema: str = "bench", timeout: float = 90) -> None:
    """After bulk writes: VACUUM ANALYZE the bench provider's tables, the
    shared ones and the catalogues (planner statistics as autovacuum would
    gather them in a running deployment), write a checkpoint, and wait for
    autovacuum workers to finish, so that none shares the cores with what is
    measured next."""
    import time

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
            "FROM information_schema.tables "
            "WHERE table_schema IN (%s, 'public') AND table_type = 'BASE TABLE'",
            [schema],
        )
        tables = [row[0] for row in cursor] + [f"pg_catalog.{name}" for name in CATALOGS]
        cursor.execute("VACUUM (ANALYZE) " + ", ".join(tables))
        cursor.execute("CHECKPOINT")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            if not cursor.fetchone()[0]:
                break
            time.sleep(1)
