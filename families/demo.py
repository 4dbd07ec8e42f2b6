"""Demo families. Names and logins are stable: README and checks rely on them."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

from accounts.models import User
from portal import clock

from .models import (
    AVATAR_COLOURS,
    ContactEmail,
    ContactPhone,
    Family,
    Guardian,
    Invitation,
    MailingAddress,
    Student,
)

FAMILIES: dict[str, list[dict[str, Any]]] = {
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
            "contacts": {
                "ana@aquakids.test": {
                    "emails": [("ana@aquakids.test", False), ("ana.novak@work.example", True)],
                    "phones": [("+38641555123", "mobile", False)],
                    "addresses": [("Trubarjeva cesta 12", "1000", "Ljubljana", "SI")],
                },
                "sam@aquakids.test": {
                    "emails": [("sam@aquakids.test", False)],
                    "phones": [("+38640555987", "mobile", True)],
                },
                None: {"phones": [("+38615550199", "home", False)]},
            },
        },
        {
            "name": "Okafor",
            "guardians": [
                ("ben@aquakids.test", "Ben", "Okafor", {"is_primary": True, "can_pay": True})
            ],
            "students": [("Noah", "Okafor", date(2018, 1, 22), "m")],
            "contacts": {
                "ben@aquakids.test": {
                    "emails": [("ben@aquakids.test", False)],
                    "phones": [("+38631555444", "mobile", False)],
                }
            },
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
            "contacts": {
                "cara@leaps.test": {
                    "emails": [("cara@leaps.test", False)],
                    "phones": [("+447700900123", "mobile", False)],
                    "addresses": [("14 Orchard Lane", "N1 7GU", "London", "GB")],
                }
            },
            "invited": [("Olle", "Lindqvist", "olle@leaps.test")],
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
        for index, (first, last, born, gender) in enumerate(spec["students"]):
            Student.objects.get_or_create(
                family=family,
                first_name=first,
                last_name=last,
                defaults={
                    "date_of_birth": born,
                    "gender": gender,
                    "colour": AVATAR_COLOURS[(len(first) + index) % len(AVATAR_COLOURS)],
                },
            )
        seed_contacts(family, spec.get("contacts", {}))
        for first, last, email in spec.get("invited", []):
            invited, _ = Guardian.objects.get_or_create(
                family=family, first_name=first, last_name=last
            )
            if not invited.invitations.exists():
                Invitation.objects.create(
                    guardian=invited,
                    email=email,
                    nonce=secrets.token_hex(16),
                    expires_at=clock.now() + timedelta(days=7),
                )
                ContactEmail.objects.get_or_create(
                    family=family, email=email, defaults={"guardian": invited}
                )


def seed_contacts(family: Family, contacts: dict) -> None:
    """Contact values by owner: a guardian's e-mail, or None for Unassigned."""
    for owner_email, values in contacts.items():
        owner = Guardian.objects.filter(user__email=owner_email).first() if owner_email else None
        for email, opted_out in values.get("emails", []):
            ContactEmail.objects.get_or_create(
                family=family,
                email=email,
                defaults={"guardian": owner, "blasts_opt_out": opted_out},
            )
        for number, kind, opted_out in values.get("phones", []):
            if not ContactPhone.objects.filter(family=family, number=number).exists():
                ContactPhone.objects.create(
                    family=family, guardian=owner, number=number, kind=kind, sms_opt_out=opted_out
                )
        for line1, postcode, city, country in values.get("addresses", []):
            MailingAddress.objects.get_or_create(
                family=family,
                line1=line1,
                defaults={
                    "guardian": owner,
                    "postcode": postcode,
                    "city": city,
                    "country": country,
                },
            )
