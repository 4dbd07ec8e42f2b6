"""What the stand-in changes in localstripe's objects so that they answer as
Stripe does where the portal depends on it. `install()` applies it once, before
the server starts; the functions below replace or wrap localstripe's methods.

- The store lives in memory for the run: localstripe pickled the whole store
  to /tmp after every change, so each call slowed as the store grew.
  Refunds are indexed by charge, so exporting a charge no longer scans it.
- Test cards decline with Stripe's error body (`card_error`, `code`,
  `decline_code`, `message`, `payment_intent`, `charge`, `payment_method`);
  the PaymentIntent goes back to `requires_payment_method` with
  `last_payment_error`, as Stripe does.
- 3-D Secure cards: on-session confirm gives `requires_action` (and the
  `/_authenticate` route localstripe's Stripe.js uses still completes it);
  off-session confirm follows Stripe's rules for 4000002500003155,
  4000002760003184 and 4000003800000446 (cards.py) and refuses with 402
  `authentication_required` where Stripe would.
- PaymentIntents take `description`, `payment_method_types` (or
  `allowed_payment_method_types`, its name in the API version of stripe 16),
  `setup_future_usage`, `receipt_email`, `statement_descriptor(_suffix)`,
  `mandate_data` and `return_url`; confirm takes a new `payment_method` and
  `off_session`. The charge carries the PaymentIntent's metadata.
- SEPA Direct Debit stays `processing` (event `payment_intent.processing`)
  until `settle()` or `fail()` (the `/_test/payment_intents/<id>/...` routes).
- Refunds send `refund.created`, `charge.refunded` and `refund.updated`;
  they refuse more than what is left to refund.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localstripe import resources
from localstripe.errors import UserError
from localstripe.resources import (
    BalanceTransaction,
    Charge,
    Event,
    Invoice,
    List,
    PaymentIntent,
    PaymentMethod,
    Refund,
    SetupIntent,
    Store,
    random_id,
    store,
    try_convert_to_bool,
)
from localstripe.webhooks import schedule_webhook

from devtools.stripe_standin import cards


class StripeError(UserError):
    """An error answered with Stripe's whole `error` object (any `type`)."""

    def __init__(self, status: int, error: dict[str, Any]):
        Exception.__init__(self)
        self.code = status
        self.body = {"error": error}


def invalid(message: str, *, code: str | None = None, param: str | None = None) -> StripeError:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return StripeError(400, error)


def send(event_type: str, obj: Any) -> None:
    """Record the event and deliver it, signed, to the registered webhooks."""
    schedule_webhook(Event(event_type, obj))


def card_number(pm: Any) -> str | None:
    return getattr(pm, "_card_number", None)


# --- the store -------------------------------------------------------------


def _no_disk(self: Any) -> None:
    """The store is this process's memory: nothing is written or read back."""


def _refunds_of_charge(self: Any) -> Any:
    """Charge.refunds from the charge's own index (newest first), in constant
    time; localstripe listed every refund in the store for each export."""
    listing = List("/v1/charges/" + self.id + "/refunds")
    ids = self.__dict__.get("_standin_refunds", [])
    listing._list = [store["refund:" + i] for i in reversed(ids) if "refund:" + i in store]
    return listing


# --- payment methods -------------------------------------------------------

_pm_init = PaymentMethod.__init__
_pm_retrieve = PaymentMethod._api_retrieve.__func__


def pm_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _pm_init(self, *args, **kwargs)
    if self.type == "sepa_debit":
        self.sepa_debit["branch_code"] = ""
        self.sepa_debit["generated_from"] = {"charge": None, "setup_attempt": None}


def pm_retrieve(cls: Any, id: str) -> Any:
    """Stripe's `pm_card_*` test ids make a PaymentMethod of that card."""
    number = cards.TEST_PAYMENT_METHODS.get(id)
    if number is not None:
        return PaymentMethod(
            type="card",
            card={"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
        )
    return _pm_retrieve(cls, id)


def pm_requires_authentication(self: Any) -> bool:
    number = card_number(self)
    return number is not None and number in cards.AUTHENTICATION


def pm_attaching_is_declined(self: Any) -> bool:
    return card_number(self) in cards.DECLINED_ON_ATTACH


def pm_charging_is_declined(self: Any) -> bool:
    # A SEPA debit fails later, through fail() (the /_test/ route), never at once.
    number = card_number(self)
    return number is not None and cards.decline_for(number) is not None


def decline_on_attach(pm: Any) -> StripeError | None:
    number = card_number(pm)
    if number in cards.DECLINED_ON_ATTACH:
        decline = cards.decline_for(number or "") or cards.GENERIC_DECLINE
        return StripeError(402, decline.error())
    return None


_pm_attach = PaymentMethod._api_attach.__func__


def pm_attach(cls: Any, id: str, customer: Any = None, **kwargs: Any) -> Any:
    if isinstance(id, str) and id.startswith("pm_") and isinstance(customer, str):
        error = decline_on_attach(cls._api_retrieve(id))
        if error:
            raise error
    return _pm_attach(cls, id, customer=customer, **kwargs)


def pm_attach_route(**data: Any) -> Any:
    return PaymentMethod._api_attach(**data)


def pm_list(cls: Any, url: str, customer: Any = None, type: Any = None, **kwargs: Any) -> Any:
    """As localstripe's, for SEPA debits too."""
    if type not in ("card", "sepa_debit") or not isinstance(customer, str):
        raise invalid("customer and type (card or sepa_debit) are required")
    resources.Customer._api_retrieve(customer)
    listing = resources.StripeObject._api_list_all.__func__(cls, url, **kwargs)
    listing._list = [pm for pm in listing._list if pm.customer == customer and pm.type == type]
    return listing


# --- charges -----------------------------------------------------------------

_charge_init = Charge.__init__


def charge_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _charge_init(self, *args, **kwargs)
    source = PaymentMethod._api_retrieve(self.payment_method)
    number = card_number(source)
    self._standin_decline = cards.decline_for(number) if number else None
    self._authorized = self._standin_decline is None


def charge_set_auth_failure(self: Any) -> None:
    decline = self._standin_decline or cards.GENERIC_DECLINE
    self.status = "failed"
    self.failure_code = decline.code
    self.failure_message = decline.message
    self.outcome = {
        "type": "issuer_declined",
        "network_status": "declined_by_network",
        "reason": decline.decline_code or decline.code,
        "seller_message": "The bank did not return any further details with this decline.",
    }


def charge_raise_failure(self: Any) -> None:
    decline = self._standin_decline or cards.GENERIC_DECLINE
    raise StripeError(402, decline.error(charge=self.id))


# --- payment intents ---------------------------------------------------------

REQUIRES_ACTION = {
    "type": "use_stripe_sdk",
    "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
}
PAYMENT_METHOD_TYPES = ("card", "sepa_debit")
_pi_last_payment_error = PaymentIntent.last_payment_error
_pi_on_success = PaymentIntent._on_success


def _check_payment_method_types(types: Any, currency: Any) -> list[str]:
    if types is None:
        return ["card"]
    if not isinstance(types, list) or not types:
        raise invalid("payment_method_types must be a list", param="payment_method_types")
    for kind in types:
        if kind not in PAYMENT_METHOD_TYPES:
            raise invalid(
                f"The payment method type {kind!r} is invalid.",
                code="payment_method_invalid_parameter",
                param="payment_method_types",
            )
    if "sepa_debit" in types and str(currency).lower() != "eur":
        raise invalid(
            f"The currency provided ({currency}) is invalid for one or more payment method "
            "types on this PaymentIntent. The payment method type sepa_debit only supports "
            "the following currencies: eur.",
            param="currency",
        )
    return list(types)


def _resolve_pm(payment_method: Any) -> Any:
    """A test id (`pm_card_visa`) becomes the PaymentMethod it stands for."""
    if isinstance(payment_method, str) and payment_method in cards.TEST_PAYMENT_METHODS:
        return PaymentMethod._api_retrieve(payment_method).id
    return payment_method


def pi_create(
    cls: Any,
    confirm: Any = None,
    off_session: Any = None,
    description: Any = None,
    payment_method_types: Any = None,
    setup_future_usage: Any = None,
    receipt_email: Any = None,
    statement_descriptor: Any = None,
    statement_descriptor_suffix: Any = None,
    mandate_data: Any = None,
    return_url: Any = None,
    **data: Any,
) -> Any:
    confirm = try_convert_to_bool(confirm)
    off_session = try_convert_to_bool(off_session)
    allowed = data.pop("allowed_payment_method_types", None)
    if allowed is not None and payment_method_types is not None:
        raise invalid("Give allowed_payment_method_types or payment_method_types, not both.")
    if confirm not in (None, True, False) or off_session not in (None, True, False):
        raise invalid("confirm and off_session are booleans")
    if off_session is not None and confirm is not True:
        raise invalid("off_session is only allowed with confirm=true", param="off_session")
    if setup_future_usage not in (None, "", "on_session", "off_session"):
        raise invalid("setup_future_usage is on_session or off_session", param="setup_future_usage")
    types = _check_payment_method_types(
        allowed if allowed is not None else payment_method_types, data.get("currency")
    )
    data["payment_method"] = _resolve_pm(data.get("payment_method"))
    if data["payment_method"] is not None:
        _check_allowed(PaymentMethod._api_retrieve(data["payment_method"]), types)
    obj = cls(**data)
    obj.description = description
    obj.payment_method_types = types
    obj.allowed_payment_method_types = allowed
    obj.setup_future_usage = setup_future_usage or None
    obj.receipt_email = receipt_email
    obj.statement_descriptor = statement_descriptor
    obj.statement_descriptor_suffix = statement_descriptor_suffix
    obj.amount_received = 0
    if confirm:
        obj._standin_confirm(off_session=bool(off_session))
    return obj


def pi_confirm(
    id: Any,
    payment_method: Any = None,
    off_session: Any = None,
    setup_future_usage: Any = None,
    mandate_data: Any = None,
    return_url: Any = None,
    use_stripe_sdk: Any = None,
    client_secret: Any = None,
    **kwargs: Any,
) -> Any:
    """POST /v1/payment_intents/<id>/confirm, with a new payment method when
    the last attempt failed, and off-session."""
    if kwargs:
        raise invalid("Received unknown parameters: " + ", ".join(kwargs))
    off_session = try_convert_to_bool(off_session)
    if off_session not in (None, True, False):
        raise invalid("off_session is a boolean", param="off_session")
    obj = PaymentIntent._api_retrieve(id)
    if client_secret is not None and client_secret != obj.client_secret:
        raise UserError(401, "Unauthorized")
    if payment_method is not None:
        if obj.status not in ("requires_payment_method", "requires_confirmation"):
            raise _unexpected_state(obj, "confirm")
        pm = PaymentMethod._api_retrieve(_resolve_pm(payment_method))
        obj.payment_method = pm.id
        obj.latest_charge = None
        obj._authentication_failed = False
    if setup_future_usage is not None:
        obj.setup_future_usage = setup_future_usage or None
    if obj.status != "requires_confirmation":
        raise _unexpected_state(obj, "confirm")
    obj._standin_confirm(off_session=bool(off_session))
    return obj


def _unexpected_state(obj: Any, action: str) -> StripeError:
    return invalid(
        f"You cannot {action} this PaymentIntent because it has a status of {obj.status}.",
        code="payment_intent_unexpected_state",
    )


def pi_standin_confirm(self: Any, *, off_session: bool) -> None:
    """Confirm with the payment method on the intent: 3-D Secure, a decline,
    processing (SEPA) or success, as Stripe decides them."""
    if not self.payment_method:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            code="payment_intent_unexpected_state",
        )
    pm = PaymentMethod._api_retrieve(self.payment_method)
    _check_allowed(pm, self.payment_method_types)
    self._authentication_failed = False
    self._standin_error = None
    number = card_number(pm)
    set_up = getattr(pm, "_standin_set_up", False)
    if number and cards.needs_authentication(number, off_session=off_session, set_up=set_up):
        if not off_session:
            self.next_action = REQUIRES_ACTION
            send("payment_intent.requires_action", self)
            return
        # Off-session: nobody is there to authenticate, the issuer refuses.
        self._create_charge(self._report_failure, decline=cards.AUTHENTICATION_REQUIRED)
        return
    self._create_charge(self._report_failure)


def _check_allowed(pm: Any, types: list[str]) -> None:
    kind = getattr(pm, "type", "card")
    if kind not in types:
        raise invalid(
            f"The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. "
            f"Allowed types: {', '.join(types)}.",
            code="payment_intent_incompatible_payment_method",
            param="payment_method",
        )


def pi_create_charge(self: Any, on_failure_now: Callable[[], None], decline: Any = None) -> None:
    if self.status != "requires_confirmation":
        raise _unexpected_state(self, "confirm")
    charge = Charge(
        amount=self.amount,
        currency=self.currency,
        customer=self.customer,
        source=self.payment_method,
        capture=(self.capture_method != "manual"),
    )
    charge.payment_intent = self.id
    # Stripe copies the PaymentIntent's metadata and description to its charge.
    charge.metadata = dict(self.metadata or {})
    charge.description = getattr(self, "description", None)
    if decline is not None:
        charge._standin_decline = decline
        charge._authorized = False
    self.latest_charge = charge
    if charge._authorized and charge._is_async_payment_method():
        # SEPA Direct Debit: processing until the bank answers (settle/fail).
        send("payment_intent.processing", self)
        return
    charge._initialize_charge(self._on_success, on_failure_now, self._report_async_failure)


def pi_on_success(self: Any) -> None:
    self.amount_received = self.latest_charge.amount if self.latest_charge else self.amount
    if self.setup_future_usage and self.payment_method:
        pm = PaymentMethod._api_retrieve(self.payment_method)
        pm._standin_set_up = True
        if self.customer and pm.customer is None:
            pm.customer = self.customer
    _pi_on_success(self)


def _fail(self: Any, error: dict[str, Any]) -> None:
    """The attempt failed: back to requires_payment_method, the payment method
    moved into last_payment_error, and payment_intent.payment_failed sent."""
    pm = PaymentMethod._api_retrieve(self.payment_method)
    self._standin_error = {**error, "payment_method": pm._export()}
    self.payment_method = None
    send("payment_intent.payment_failed", self)
    if self.invoice:
        Invoice._api_retrieve(self.invoice)._on_payment_failure_later()


def pi_report_failure(self: Any) -> None:
    """A charge declined during the call: Stripe answers 402 with the intent."""
    charge = self.latest_charge
    decline = charge._standin_decline or cards.GENERIC_DECLINE
    _fail(self, decline.error(charge=charge.id))
    raise StripeError(
        402,
        {**self._standin_error, "payment_intent": self._export()},
    )


def pi_last_payment_error(self: Any) -> Any:
    if self._standin_error is not None:
        return self._standin_error
    return _pi_last_payment_error.fget(self)


def settle(id: str, **kwargs: Any) -> Any:
    """The bank accepted a processing (SEPA) payment: succeeded."""
    if kwargs:
        raise invalid("Received unknown parameters: " + ", ".join(kwargs))
    obj = PaymentIntent._api_retrieve(id)
    if obj.status != "processing":
        raise _unexpected_state(obj, "settle")
    charge = obj.latest_charge
    txn = BalanceTransaction(
        amount=charge.amount,
        currency=charge.currency,
        description=charge.description,
        exchange_rate=1.0,
        reporting_category="charge",
        source=charge.id,
        type="charge",
    )
    charge.balance_transaction = txn.id
    charge.status = "succeeded"
    obj._on_success()
    return obj


SEPA_FAILURE = (
    "insufficient_funds",
    "The customer's account has insufficient funds to cover this payment.",
)


def fail(id: str, code: Any = None, message: Any = None, **kwargs: Any) -> Any:
    """The bank refused a processing (SEPA) payment: requires_payment_method."""
    if kwargs:
        raise invalid("Received unknown parameters: " + ", ".join(kwargs))
    if not isinstance(code, str | None) or not isinstance(message, str | None):
        raise invalid("code and message are strings")
    obj = PaymentIntent._api_retrieve(id)
    if obj.status != "processing":
        raise _unexpected_state(obj, "fail")
    charge = obj.latest_charge
    charge.status = "failed"
    charge.failure_code = code or SEPA_FAILURE[0]
    charge.failure_message = message or SEPA_FAILURE[1]
    _fail(
        obj,
        {
            "type": "invalid_request_error",
            "code": charge.failure_code,
            "message": charge.failure_message,
            "charge": charge.id,
        },
    )
    return obj


_pi_cancel = PaymentIntent._api_cancel.__func__


def pi_cancel(id: Any, cancellation_reason: Any = None, **kwargs: Any) -> Any:
    obj = _pi_cancel(PaymentIntent, id, **kwargs)
    obj.cancellation_reason = cancellation_reason
    send("payment_intent.canceled", obj)
    return obj


_pi_authenticate = PaymentIntent._api_authenticate.__func__


def pi_authenticate(id: Any, **kwargs: Any) -> Any:
    """localstripe's 3-D Secure route for its Stripe.js; a failed
    authentication is reported as Stripe does (payment_intent.payment_failed)."""
    pm_id = PaymentIntent._api_retrieve(id).payment_method if isinstance(id, str) else None
    obj = _pi_authenticate(PaymentIntent, id, **kwargs)
    if obj._authentication_failed and pm_id:
        obj._standin_error = {
            "type": "invalid_request_error",
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication. You can provide "
            "payment_method_data or a new PaymentMethod to attempt to fulfill this "
            "PaymentIntent again.",
            "payment_method": PaymentMethod._api_retrieve(pm_id)._export(),
        }
        send("payment_intent.payment_failed", obj)
    return obj


# --- setup intents -----------------------------------------------------------

_si_confirm = SetupIntent._api_confirm.__func__


def si_create(
    cls: Any,
    payment_method: Any = None,
    confirm: Any = None,
    description: Any = None,
    mandate_data: Any = None,
    return_url: Any = None,
    **data: Any,
) -> Any:
    confirm = try_convert_to_bool(confirm)
    if confirm not in (None, True, False):
        raise invalid("confirm is a boolean", param="confirm")
    if confirm and payment_method is None:
        raise invalid("confirm=true needs a payment_method", param="payment_method")
    allowed = data.pop("allowed_payment_method_types", None)
    if allowed is not None:
        if data.get("payment_method_types") is not None:
            raise invalid("Give allowed_payment_method_types or payment_method_types, not both.")
        data["payment_method_types"] = allowed
    pm = PaymentMethod._api_retrieve(_resolve_pm(payment_method)) if payment_method else None
    obj = cls(**data)
    obj.description = description
    if pm is not None:
        obj.payment_method = pm.id
        obj.status = "requires_confirmation"
        if confirm:
            obj._attach_pm(pm)
            _si_finish(obj)
    return obj


def si_confirm(id: Any, mandate_data: Any = None, return_url: Any = None, **kwargs: Any) -> Any:
    """POST /v1/setup_intents/<id>/confirm; localstripe's Stripe.js confirms a
    second time, without a payment method, once 3-D Secure is done."""
    if isinstance(kwargs.get("payment_method"), str):
        kwargs["payment_method"] = _resolve_pm(kwargs["payment_method"])
    obj = SetupIntent._api_retrieve(id)
    fresh = kwargs.get("payment_method") is None and kwargs.get("payment_method_data") is None
    if fresh and obj.status == "requires_confirmation":
        secret = kwargs.get("client_secret")
        if secret is not None and secret != obj.client_secret:
            raise UserError(401, "Unauthorized")
        obj._attach_pm(PaymentMethod._api_retrieve(obj.payment_method))
    else:
        obj = _si_confirm(SetupIntent, id, **kwargs)
    _si_finish(obj)
    return obj


def si_attach_pm(self: Any, pm: Any) -> None:
    types = self.payment_method_types
    if pm.type not in types:
        raise invalid(
            f"The PaymentMethod provided ({pm.type}) is not allowed for this SetupIntent.",
            code="setup_intent_incompatible_payment_method",
            param="payment_method",
        )
    error = decline_on_attach(pm)
    if error is not None:
        self.status = "requires_payment_method"
        self.payment_method = None
        self.next_action = None
        self.last_setup_error = {**error.body["error"], "payment_method": pm._export()}
        raise StripeError(402, {**self.last_setup_error, "setup_intent": self._export()})
    self.payment_method = pm.id
    self.last_setup_error = None
    if pm_requires_authentication(pm):
        self.status = "requires_action"
        self.next_action = REQUIRES_ACTION
    else:
        self.status = "succeeded"
        self.next_action = None


def _si_finish(obj: Any) -> None:
    """A succeeded SetupIntent attaches the method to its customer, sets it up
    for off-session use and, for SEPA, holds the accepted mandate."""
    if obj.status != "succeeded" or not obj.payment_method or obj._standin_finished:
        return
    obj._standin_finished = True
    pm = PaymentMethod._api_retrieve(obj.payment_method)
    pm._standin_set_up = True
    if obj.customer and pm.customer is None:
        pm.customer = obj.customer
    if pm.type == "sepa_debit" and not obj.mandate:
        obj.mandate = "mandate_" + random_id(24)
    send("setup_intent.succeeded", obj)


# --- refunds -----------------------------------------------------------------

_refund_init = Refund.__init__
REFUND_REASONS = (None, "duplicate", "fraudulent", "requested_by_customer")


def refund_create(cls: Any, reason: Any = None, **data: Any) -> Any:
    """POST /v1/refunds, from our code or from "Stripe's dashboard" (any
    client, any or no idempotency key): the same checks and events."""
    if reason not in REFUND_REASONS:
        raise invalid("reason is duplicate, fraudulent or requested_by_customer", param="reason")
    charge = _charge_to_refund(data.get("charge"), data.get("payment_intent"))
    amount = resources.try_convert_to_int(data.get("amount"))
    left = charge.amount - charge.amount_refunded
    if left <= 0:
        raise invalid(
            f"Charge {charge.id} has already been refunded.", code="charge_already_refunded"
        )
    if isinstance(amount, int) and amount > left:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            code="amount_too_large",
            param="amount",
        )
    if data.get("amount") is None:
        data["amount"] = left
    obj = cls(**data)
    obj.reason = reason
    send("refund.created", obj)
    send("charge.refunded", charge)
    send("refund.updated", obj)
    return obj


def _charge_to_refund(charge_id: Any, payment_intent_id: Any) -> Any:
    if isinstance(payment_intent_id, str) and charge_id is None:
        intent = PaymentIntent._api_retrieve(payment_intent_id)
        if intent.latest_charge is None or intent.status != "succeeded":
            raise invalid(
                f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                code="charge_not_refundable" if intent.latest_charge else None,
                param="payment_intent",
            )
        return intent.latest_charge
    if isinstance(charge_id, str) and payment_intent_id is None:
        charge = Charge._api_retrieve(charge_id)
        if charge.status != "succeeded":
            raise invalid(f"Charge {charge.id} has not succeeded.", param="charge")
        return charge
    raise invalid("One of charge or payment_intent is required.")


def refund_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _refund_init(self, *args, **kwargs)
    charge = Charge._api_retrieve(self.charge)
    charge.__dict__.setdefault("_standin_refunds", []).append(self.id)
    if self.payment_intent is None:
        self.payment_intent = charge.payment_intent


_refund_update = Refund._api_update.__func__


def refund_update(cls: Any, id: str, **data: Any) -> Any:
    obj = _refund_update(cls, id, **data)
    send("refund.updated", obj)
    return obj


# --- installing it -------------------------------------------------------------

_installed = False


def install() -> None:
    """Apply the changes above to localstripe's classes (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True

    Store.dump_to_disk = _no_disk
    Store.try_load_from_disk = _no_disk

    PaymentMethod.__init__ = pm_init
    PaymentMethod._api_retrieve = classmethod(pm_retrieve)
    PaymentMethod._api_attach = classmethod(pm_attach)
    PaymentMethod._api_list_all = classmethod(pm_list)
    PaymentMethod._requires_authentication = pm_requires_authentication
    PaymentMethod._attaching_is_declined = pm_attaching_is_declined
    PaymentMethod._charging_is_declined = pm_charging_is_declined
    PaymentMethod._standin_set_up = False

    Charge.__init__ = charge_init
    Charge.refunds = property(_refunds_of_charge)
    Charge._set_auth_failure = charge_set_auth_failure
    Charge._raise_failure = charge_raise_failure
    Charge._standin_decline = None
    Charge.outcome = None

    # Class-level defaults are exported like attributes (localstripe exports
    # every public name), so intents made elsewhere (invoices) show them too.
    PaymentIntent.description = None
    PaymentIntent.payment_method_types = ["card"]
    PaymentIntent.allowed_payment_method_types = None
    PaymentIntent.setup_future_usage = None
    PaymentIntent.amount_received = 0
    PaymentIntent.cancellation_reason = None
    PaymentIntent._standin_error = None
    PaymentIntent._api_create = classmethod(pi_create)
    PaymentIntent._standin_confirm = pi_standin_confirm
    PaymentIntent._create_charge = pi_create_charge
    PaymentIntent._on_success = pi_on_success
    PaymentIntent._report_failure = pi_report_failure
    PaymentIntent.last_payment_error = property(pi_last_payment_error)

    SetupIntent.description = None
    SetupIntent.mandate = None
    SetupIntent.last_setup_error = None
    SetupIntent._standin_finished = False
    SetupIntent._api_create = classmethod(si_create)
    SetupIntent._attach_pm = si_attach_pm

    Refund.__init__ = refund_init
    Refund.reason = None
    Refund._api_create = classmethod(refund_create)
    Refund._api_update = classmethod(refund_update)


# Routes whose localstripe handlers were bound to the old functions when the
# module was imported: the app registers these in their place.
EXTRA_ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("POST", "/v1/payment_intents/{id}/confirm", pi_confirm),
    ("POST", "/v1/payment_intents/{id}/cancel", pi_cancel),
    ("POST", "/v1/payment_intents/{id}/_authenticate", pi_authenticate),
    ("POST", "/v1/payment_methods/{id}/attach", pm_attach_route),
    ("POST", "/v1/setup_intents/{id}/confirm", si_confirm),
]
