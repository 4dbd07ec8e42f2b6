"""Demo classes: a term that started nine weeks ago, so there are past sessions
with attendance and evaluations, and future ones (one cancelled, with a
livestream instead). Idempotent; dates are relative to the day it runs."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from typing import Any

from families.models import Family, Student
from portal import clock
from portal.clock import today

from . import services
from .models import (
    Attendance,
    Class,
    Enrollment,
    Evaluation,
    Instructor,
    Level,
    Location,
    Programme,
    Session,
    Skill,
)

SPECS: dict[str, dict[str, Any]] = {
    "aquakids": {
        "locations": [
            ("Tivoli Pool", "Celovška cesta 25, Ljubljana"),
            ("Kodeljevo Pool", "Kodeljevo 1, Ljubljana"),
        ],
        "levels": [
            (
                "Level 1 · Water confidence",
                1,
                [
                    "Blows bubbles",
                    "Floats on front with a noodle",
                    "Kicks with a board for 5 m",
                    "Gets in and out safely",
                ],
            ),
            (
                "Level 2 · Front crawl basics",
                2,
                [
                    "Front float without help",
                    "Streamline glide 3 m",
                    "Front crawl arms 10 m",
                    "Back float 10 seconds",
                    "Treads water 20 seconds",
                ],
            ),
        ],
        "instructors": ["Marta Kovač", "Luka Zupan", "Irena Horvat"],
        # programme, level, location, weekday, start, capacity, instructor
        "classes": [
            ("Swim Level 2", 1, 0, 0, time(17, 0), 6, 0),
            ("Swim Level 2", 1, 1, 2, time(17, 0), 6, 1),
            ("Swim Level 2", 1, 0, 5, time(10, 0), 2, 2),
            ("Swim Level 1", 0, 1, 2, time(16, 0), 6, 1),
            ("Swim Level 1", 0, 0, 5, time(9, 0), 1, 2),
            ("Swim Level 1", 0, 0, 1, time(16, 30), 6, 0),
            ("Swim Level 2", 1, 0, 3, time(17, 30), 6, 2),
        ],
        "extra_families": {
            "Kralj": ["Eva", "Jan"],
            "Petek": ["Tia"],
            "Kovač": ["Nika", "Maks"],
            "Zupan": ["Lara"],
            "Golob": ["Tim", "Zala"],
        },
        # student, class index; waitlisted ones land on the waitlist because the class is full
        "enrol": [
            ("Eva Kralj", 2),
            ("Jan Kralj", 2),
            ("Tia Petek", 4),
            ("Mia Novak", 0),
            ("Leo Novak", 3),
            ("Leo Novak", 4),
            ("Noah Okafor", 5),
            ("Tia Petek", 0),
            ("Nika Kovač", 6),
            ("Maks Kovač", 5),
            ("Lara Zupan", 6),
            ("Tim Golob", 6),
            ("Zala Golob", 5),
            ("Eva Kralj", 6),
            ("Maks Kovač", 1),
            ("Lara Zupan", 5),
        ],
        "cancel": (0, 1, "Pool maintenance at Tivoli.", "https://live.aquakids.example/dryland"),
        "evaluate": "Mia Novak",
        "vat_rate": Decimal("9.50"),  # lessons; the provider's 22 % for the rest
    },
    "leaps": {
        "locations": [("Leaps Hall", "14 Canal Street, London")],
        "levels": [
            ("Bronze", 1, ["Forward roll", "Straddle jump", "Bridge from lying", "Cartwheel"]),
            ("Tots", 0, ["Bunny hop", "Log roll", "Balance on one foot"]),
        ],
        "instructors": ["Priya Shah", "Tom Ellis"],
        "classes": [
            ("Recreational gymnastics", 0, 0, 3, time(16, 0), 12, 0),
            ("Recreational gymnastics", 0, 0, 1, time(17, 0), 12, 1),
            ("Tiny tumblers", 1, 0, 5, time(10, 0), 8, 1),
        ],
        "extra_families": {},
        "enrol": [("Ella Lindqvist", 0), ("Finn Lindqvist", 1), ("Zoe Lindqvist", 2)],
        "cancel": None,
        "evaluate": "Ella Lindqvist",
    },
}


def student_named(full_name: str) -> Student:
    first, last = full_name.split(" ", 1)
    return Student.objects.get(first_name=first, last_name=last)


def seed(provider, *, password: str) -> None:
    spec = SPECS.get(provider.slug)
    if not spec:
        return
    day = today()
    term_start = day - timedelta(days=day.weekday()) - timedelta(weeks=9)
    term_end = term_start + timedelta(weeks=20)

    locations = [
        Location.objects.get_or_create(name=name, defaults={"address": address})[0]
        for name, address in spec["locations"]
    ]
    levels = []
    for name, order, skills in spec["levels"]:
        level, _ = Level.objects.get_or_create(name=name, defaults={"order": order})
        for index, skill in enumerate(skills):
            Skill.objects.get_or_create(level=level, name=skill, defaults={"order": index})
        levels.append(level)
    instructors = [Instructor.objects.get_or_create(name=n)[0] for n in spec["instructors"]]

    classes = []
    for programme, level, location, weekday, start, capacity, instructor in spec["classes"]:
        klass, created = Class.objects.get_or_create(
            programme=Programme.objects.get_or_create(
                name=programme, defaults={"vat_rate": spec.get("vat_rate")}
            )[0],
            location=locations[location],
            weekday=weekday,
            start_time=start,
            defaults={
                "level": levels[level],
                "capacity": capacity,
                "instructor": instructors[instructor],
                "term_start": term_start,
                "term_end": term_end,
                "duration_minutes": 45,
            },
        )
        if created:
            services.sessions_generate(klass=klass)
        classes.append(klass)

    for family_name, children in spec["extra_families"].items():
        family = Family.objects.filter(name=family_name).first() or Family.objects.create(
            name=family_name
        )
        for child in children:
            Student.objects.get_or_create(family=family, first_name=child, last_name=family_name)

    for full_name, index in spec["enrol"]:
        student, klass = student_named(full_name), classes[index]
        if not Enrollment.objects.filter(student=student, klass=klass).exists():
            services.enrollment_create(student=student, klass=klass, start_date=klass.term_start)

    if spec["cancel"]:
        index, weeks_ahead, reason, livestream = spec["cancel"]
        upcoming = Session.objects.filter(klass=classes[index], starts_at__gt=clock.now()).order_by(
            "starts_at"
        )
        target = upcoming[weeks_ahead] if upcoming.count() > weeks_ahead else None
        if target and not Session.objects.filter(klass=classes[index], status="cancelled").exists():
            target.status = Session.Status.CANCELLED
            target.cancel_reason = reason
            target.livestream_url = livestream
            target.note = "Dry-land technique session online instead."
            target.sequence += 1
            target.save()

    _attendance(clock.now())
    _evaluations(student_named(spec["evaluate"]), instructors[0])


def _attendance(now) -> None:
    """Past sessions of active enrolments: present, with the odd absence."""
    for enrollment in Enrollment.objects.filter(status="active", kind="regular"):
        past = Session.objects.filter(
            klass=enrollment.klass, starts_at__lt=now, status="scheduled"
        ).order_by("starts_at")
        for number, session in enumerate(past):
            status = Attendance.Status.ABSENT if number % 5 == 3 else Attendance.Status.PRESENT
            Attendance.objects.get_or_create(
                enrollment=enrollment, session=session, defaults={"status": status}
            )


def _evaluations(student: Student, instructor) -> None:
    if Evaluation.objects.filter(student=student).exists():
        return
    enrollment = Enrollment.objects.filter(student=student, status="active").first()
    if not enrollment or not enrollment.klass.level:
        return
    day = today()
    statuses = [Evaluation.Status.ACHIEVED, Evaluation.Status.ACHIEVED, Evaluation.Status.WORKING]
    for index, skill in enumerate(enrollment.klass.level.skills.all()):
        if index < len(statuses):
            Evaluation.objects.create(
                student=student,
                skill=skill,
                status=statuses[index],
                evaluated_on=day - timedelta(days=7 * (len(statuses) - index)),
                instructor=instructor,
                comment="Lovely long glide!" if index == 1 else "",
            )
