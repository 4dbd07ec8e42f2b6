"""Stripe's test cards, as Stripe documents them (docs.stripe.com/testing):
which card numbers decline and how, which ask for 3-D Secure and when, and the
`pm_card_*` test PaymentMethod ids that stand for them.

Pure data and small functions: no localstripe, no aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DOCS = "https://stripe.com/docs/error-codes/"


@dataclass(frozen=True)
class Decline:
    """How the issuer (or Stripe) refuses a charge: Stripe's error `code`, the
    `decline_code` when Stripe gives one, the message shown to the payer and
    the parameter at fault."""

    code: str
    message: str
    decline_code: str | None = None
    param: str | None = None

    def error(self, **extra: Any) -> dict[str, Any]:
        """The `error` object of Stripe's 402 answer (and `last_payment_error`)."""
        body: dict[str, Any] = {
            "type": "card_error",
            "code": self.code,
            "message": self.message,
            "doc_url": DOCS + self.code.replace("_", "-"),
        }
        if self.decline_code:
            body["decline_code"] = self.decline_code
        if self.param:
            body["param"] = self.param
        body.update(extra)
        return body


def _declined(decline_code: str, message: str = "Your card was declined.") -> Decline:
    return Decline("card_declined", message, decline_code)


GENERIC_DECLINE = _declined("generic_decline")
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
    "authentication_required",
)

# Cards whose charges are refused, with the error Stripe answers.
DECLINES: dict[str, Decline] = {
    "4000000000000002": GENERIC_DECLINE,
    "4000000000009995": _declined("insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": _declined("lost_card"),
    "4000000000009979": _declined("stolen_card"),
    "4000000000006975": _declined("card_velocity_exceeded"),
    "4000000000000069": Decline("expired_card", "Your card has expired.", param="exp_month"),
    "4000000000000127": Decline(
        "incorrect_cvc", "Your card's security code is incorrect.", param="cvc"
    ),
    "4000000000000119": Decline(
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4242424242424241": Decline(
        "incorrect_number", "Your card number is incorrect.", param="number"
    ),
    # Attaching succeeds, charging fails.
    "4000000000000341": GENERIC_DECLINE,
    # 3-D Secure first, then the issuer declines.
    "4000008260003178": _declined("insufficient_funds", "Your card has insufficient funds."),
    "4000008400001629": GENERIC_DECLINE,
}

# Cards refused as soon as they are attached to a customer or set up
# (every decline card except 4000000000000341 and the 3-D Secure ones).
DECLINED_ON_ATTACH = frozenset(DECLINES) - {
    "4000000000000341",
    "4000008260003178",
    "4000008400001629",
}

# Cards that ask for 3-D Secure, and what happens off-session:
#   "unless_set_up": on-session always; off-session only while the card has
#       not been set up (a SetupIntent or a payment with setup_future_usage
#       that succeeded) -- 4000002500003155.
#   "always": on every payment, off-session ones are refused with
#       authentication_required -- 4000002760003184 and the 3DS2 cards.
#   "on_session": on-session only; off-session payments succeed as if set up
#       -- 4000003800000446.
AUTHENTICATION: dict[str, str] = {
    "4000002500003155": "unless_set_up",
    "4000002760003184": "always",
    "4000000000003220": "always",
    "4000000000003063": "always",
    "4000008260003178": "always",
    "4000008400001629": "always",
    "4000003800000446": "on_session",
}

# Stripe's test PaymentMethod ids (docs.stripe.com/testing#cards).
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_visa_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredSetupForOffSession": "4000003800000446",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": "4000008260003178",
}


def decline_for(number: str) -> Decline | None:
    return DECLINES.get(number)


def needs_authentication(number: str, *, off_session: bool, set_up: bool) -> bool:
    """On-session: every 3-D Secure card asks for it (`requires_action`).
    Off-session: whether the payment is refused with authentication_required."""
    rule = AUTHENTICATION.get(number)
    if rule is None:
        return False
    if not off_session:
        return True
    if rule == "unless_set_up":
        return not set_up
    return rule == "always"
