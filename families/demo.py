"""Demo families. Names and logins are stable: README and checks rely on them."""

from __future__ import annotations

from datetime import date

from accounts.models import User

from .models import Family, Guardian, Student

FAMILIES = {
    "aquakids": [
        {
            "name": "Novak",
            "guardians": [
                ("ana@aquakids.test", "Ana", "Novak", {"is_primary": True, "can_pay": True}),
                ("sam@aquakids.test", "Sam", "Novak", {"can_pay": False}),
            ],
            "students": [
                ("Mia", "Novak", date(2017, 4, 12), "f"),
                ("Leo", "Novak", date(2019, 9, 3), "m"),
            ],
        },
        {
            "name": "Okafor",
            "guardians": [
                ("ben@aquakids.test", "Ben", "Okafor", {"is_primary": True, "can_pay": True})
            ],
            "students": [("Noah", "Okafor", date(2018, 1, 22), "m")],
        },
    ],
    "leaps": [
        {
            "name": "Lindqvist",
            "guardians": [
                ("cara@leaps.test", "Cara", "Lindqvist", {"is_primary": True, "can_pay": True})
            ],
            "students": [
                ("Ella", "Lindqvist", date(2015, 6, 30), "f"),
                ("Finn", "Lindqvist", date(2017, 11, 8), "m"),
                ("Zoe", "Lindqvist", date(2020, 2, 14), "f"),
            ],
        }
    ],
}


def seed(provider, *, password: str) -> None:
    for spec in FAMILIES.get(provider.slug, []):
        first_email = spec["guardians"][0][0]
        guardian = Guardian.objects.filter(user__email=first_email).select_related("family").first()
        family = guardian.family if guardian else Family.objects.create(name=spec["name"])
        for email, first, last, flags in spec["guardians"]:
            user = User.objects.filter(email=email).first() or User.objects.create_user(
                email, password, full_name=f"{first} {last}"
            )
            Guardian.objects.get_or_create(
                user=user,
                defaults={"family": family, "first_name": first, "last_name": last, **flags},
            )
        for first, last, born, gender in spec["students"]:
            Student.objects.get_or_create(
                family=family,
                first_name=first,
                last_name=last,
                defaults={"date_of_birth": born, "gender": gender},
            )
