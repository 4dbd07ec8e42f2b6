"""The admin's frame (django-unfold, settings.UNFOLD): the provider's name and
logo on its own host, the platform's on the bare host, and a sidebar grouped
the way front-desk staff think, each link shown only to staff whose role may
open it (the admin itself still checks every page)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

Item = dict[str, Any]


def _provider(request: HttpRequest) -> Any:
    """The request's provider, or None on the platform's bare host."""
    provider = getattr(request, "tenant", None)
    if provider is None or provider.schema_name == "public":
        return None
    return provider


def site_header(request: HttpRequest) -> str:
    provider = _provider(request)
    return provider.name if provider else _("Family portal: platform")


def site_title(request: HttpRequest) -> str:
    """The window's title, and the login page's "Welcome back to ..."."""
    return site_header(request)


def site_subheader(request: HttpRequest) -> str:
    return _("Staff") if _provider(request) else _("Providers and operators")


def site_icon(request: HttpRequest) -> str | None:
    """The provider's logo beside its name (SITE_LOGO would show it alone)."""
    provider = _provider(request)
    return reverse("provider_logo") if provider and provider.logo else None


def site_symbol(request: HttpRequest) -> str:
    """The icon in the corner when there is no logo (Material Symbols)."""
    return "diversity_3" if _provider(request) else "domain"


def _may(*perms: str) -> Callable[[HttpRequest], bool]:
    """Shown to staff holding any of the permissions."""

    def check(request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for perm in perms)

    return check


def _model(title: str, icon: str, app_label: str, model: str, site: str = "admin") -> Item:
    """A model's list: seen by those who may view or change it, like the admin."""
    return {
        "title": title,
        "icon": icon,
        "link": reverse(f"{site}:{app_label}_{model}_changelist"),
        "permission": _may(f"{app_label}.view_{model}", f"{app_label}.change_{model}"),
    }


def _group(title: str, items: list[Item]) -> dict[str, Any]:
    return {"title": title, "separator": True, "items": items}


def navigation(request: HttpRequest) -> list[dict[str, Any]]:
    if _provider(request) is None:
        return _platform_navigation()
    return [
        {
            "items": [
                {"title": _("Home"), "icon": "home", "link": reverse("admin:index")},
                # The front desk's day: sessions, rosters, requests, families.
                {
                    "title": _("Front desk"),
                    "icon": "desk",
                    "link": reverse("desk:home"),
                    "permission": _may("enrollments.view_session"),
                },
            ]
        },
        _group(
            _("Families & students"),
            [
                _model(_("Families"), "family_restroom", "families", "family"),
                _model(_("Students"), "child_care", "families", "student"),
                _model(_("Guardians"), "supervisor_account", "families", "guardian"),
                _model(_("Problem reports"), "report", "families", "problemreport"),
            ],
        ),
        _group(
            _("Classes & sessions"),
            [
                _model(_("Classes"), "groups", "enrollments", "class"),
                _model(_("Sessions"), "event", "enrollments", "session"),
                _model(_("Enrolments"), "how_to_reg", "enrollments", "enrollment"),
                _model(_("Waitlist offers"), "hourglass_top", "enrollments", "waitlistoffer"),
                _model(_("Attendance"), "fact_check", "enrollments", "attendance"),
                _model(_("Absences"), "event_busy", "enrollments", "absence"),
                _model(_("Evaluations"), "grading", "enrollments", "evaluation"),
            ],
        ),
        _group(
            _("Make-ups & benefits"),
            [
                _model(_("Make-up requests"), "pending_actions", "benefits", "makeuprequest"),
                _model(_("Make-up tokens"), "confirmation_number", "benefits", "makeuptoken"),
                _model(_("Passes"), "card_membership", "benefits", "pass"),
                _model(_("Credits"), "savings", "benefits", "creditgrant"),
                _model(_("Discounts"), "percent", "benefits", "discount"),
                _model(_("Vouchers"), "redeem", "benefits", "voucher"),
            ],
        ),
        _group(
            _("Money"),
            [
                {
                    "title": _("Money report"),
                    "icon": "monitoring",
                    "link": reverse("desk:money"),
                    "permission": _may("billing.view_payment"),
                },
                _model(_("Orders"), "receipt_long", "billing", "order"),
                _model(_("Payments"), "payments", "billing", "payment"),
                _model(_("Ledger"), "account_balance", "billing", "ledgerentry"),
                _model(_("Refunds"), "undo", "billing", "refund"),
                _model(_("Refund requests"), "pending_actions", "billing", "refundrequest"),
                _model(_("Invoices"), "description", "billing", "invoice"),
                _model(_("Credit notes"), "request_quote", "billing", "creditnote"),
                _model(_("Stripe events"), "sync_alt", "billing", "stripeevent"),
                _model(_("Findings"), "troubleshoot", "billing", "finding"),
            ],
        ),
        _group(
            _("Settings & staff"),
            [
                {
                    "title": _("Branding and settings"),
                    "icon": "palette",
                    "link": reverse("provider_settings"),
                    "permission": _may("providers.change_provider"),
                },
                {
                    "title": _("Embed on your website"),
                    "icon": "code",
                    "link": reverse("embed"),
                    "permission": _may("providers.view_provider"),
                },
                _model(_("Locations"), "location_on", "enrollments", "location"),
                _model(_("Programmes"), "category", "enrollments", "programme"),
                _model(_("Levels and skills"), "stairs", "enrollments", "level"),
                _model(_("Instructors"), "sports", "enrollments", "instructor"),
                _model(_("Staff logins"), "badge", "accounts", "user"),
                _model(_("Roles"), "admin_panel_settings", "auth", "group"),
                _model(_("Family views by staff"), "visibility", "families", "staffview"),
            ],
        ),
    ]


def _platform_navigation() -> list[dict[str, Any]]:
    return [
        {
            "items": [
                {"title": _("Home"), "icon": "home", "link": reverse("platform:index")},
                _model(_("Providers"), "storefront", "providers", "provider", "platform"),
                _model(_("Operators"), "badge", "accounts", "user", "platform"),
                _model(_("Settings changes"), "history", "providers", "settingschange", "platform"),
            ]
        }
    ]
