"""Money pages: what is owed and why, paying, payment methods, history,
statements. Every lookup is through the logged-in family; paying needs the
guardian's permission and the provider's online payments."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from benefits.selectors import family_credit_balance
from enrollments.views import current_location
from families.pagecache import family_page
from families.rules import refusal
from families.views import family_member
from portal import clock, limits
from portal.exceptions import PortalError
from portal.params import BadParameter, int_param, parse_int
from portal.templatetags.portal import money

from . import gateway, selectors, services
from .forms import ApplyCreditForm, BankAccountForm, DocumentForm, PromoCodeForm
from .models import CreditNote, Document, Invoice, Payment, PaymentMethod

PAGE_SIZE = 25
INVOICES_PAGE_SIZE = 10


def keeps_opener(view):
    """The payment pages may be opened from the portal inside a provider's
    iframe: keep `window.opener` so they can tell that frame the result."""
    from functools import wraps

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.headers["Cross-Origin-Opener-Policy"] = "unsafe-none"
        return response

    return wrapper


def history_tabs() -> list[tuple[str, str]]:
    return [
        ("all", _("All")),
        ("charges", _("Charges")),
        ("payments", _("Payments")),
        ("refunds", _("Refunds")),
    ]


def online(provider) -> bool:
    return provider.online_payments and gateway.configured()


def _may_pay(guardian) -> None:
    if not guardian.may_pay:
        raise PermissionDenied(refusal(guardian, "pay"))


@require_GET
@family_page(session_inputs=("location_id",))
@family_member
def overview(request, guardian):
    """Financial: outstanding, credit, last payment, methods, history, documents."""
    family = guardian.family
    tab = request.GET.get("tab", "all")
    if tab not in selectors.HISTORY_KINDS:
        raise Http404
    page = Paginator(selectors.history(family, tab), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"tab": tab, "page": page, "tabs": history_tabs()}
    if request.htmx and request.GET.get("part") == "history":
        # A tab of the history: only what that part shows is read.
        return render(request, "billing/overview.html#history", context)
    if request.htmx and request.GET.get("part") == "invoices":
        context["invoices"] = _invoices_page(request, family)
        return render(request, "billing/overview.html#invoices", context)
    form = DocumentForm(
        initial={"location": current_location(request)},
        full_history=request.tenant.full_ledger_history,
    )
    return render(
        request, "billing/overview.html", _overview_context(request, guardian, form) | context
    )


def _invoices_page(request, family):
    return Paginator(selectors.family_invoices(family), INVOICES_PAGE_SIZE).get_page(
        request.GET.get("invoices")
    )


def _overview_context(request, guardian, form: DocumentForm) -> dict:
    family = guardian.family
    invoices = _invoices_page(request, family)
    return {
        "fin": selectors.financials(family),
        "credit": family_credit_balance(family),
        "unpaid": selectors.order_groups(family, paid_limit=0).unpaid,
        "methods": selectors.family_payment_methods(guardian),
        "invoices": invoices,
        "documents": list(
            Document.objects.filter(family=family).select_related(
                "location", "invoice", "credit_note"
            )[:8]
        ),
        "doc_form": form,
        "online": online(request.tenant),
        "may_pay": guardian.may_pay,
    }


@require_GET
@family_member
def order(request, guardian, pk):
    return _order_page(request, guardian, selectors.order_in_family(guardian.family, pk))


def _order_page(request, guardian, order, promo_form=None):
    may_pay = guardian.may_pay
    lines = list(order.lines.all())
    context = {
        "order": order,
        "lines": lines,
        "tax": services.order_tax(lines),
        "entries": list(order.entries.select_related("payment").order_by("at", "pk")),
        "payments": list(order.payments.order_by("-created_at")),
        "invoice": Invoice.objects.filter(order=order).first(),
        "online": online(request.tenant),
        "may_pay": may_pay,
        "promo": order.promo.voucher if order.promo_id and order.promo.voucher_id else None,
        "credit": family_credit_balance(guardian.family),
    }
    if may_pay and order.owed > 0 and not order.promo_id and not order.cancelled_at:
        context["promo_form"] = promo_form or PromoCodeForm()
    return render(request, "billing/order.html", context)


@require_http_methods(["GET", "POST"])
@family_member
def apply_credit(request, guardian, pk=None):
    """Apply the family's credit to an unpaid order: asks how much (the most
    that can be applied by default) and confirms."""
    _may_pay(guardian)
    family = guardian.family
    posted = int_param(request, "order", source="POST")
    if posted is not None:
        selectors.order_in_family(family, posted)  # another family's order: 404
    orders = selectors.order_groups(family, paid_limit=0).unpaid
    chosen = selectors.order_in_family(family, pk) if pk is not None else None
    credit = family_credit_balance(family)
    if chosen is not None and chosen.pk not in {o.pk for o in orders}:
        messages.info(request, _("Nothing is owed on this order."))
        return redirect("billing:order", chosen.pk)
    first = chosen or (orders[0] if orders else None)
    form = ApplyCreditForm(
        request.POST or None,
        orders=orders,
        initial={
            "order": first.pk if first else None,
            "amount": min(first.owed, credit) if first and credit > 0 else None,
            "key": services.new_attempt_key(),
        },
    )
    if request.method == "POST" and form.is_valid():
        order = selectors.order_in_family(family, form.cleaned_data["order"])
        try:
            amount = services.credit_apply(
                order=order,
                actor=guardian,
                amount=form.cleaned_data["amount"],
                key=form.cleaned_data["key"],
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(
                request,
                _("%(amount)s of credit applied to order #%(number)s.")
                % {"amount": money(amount), "number": order.number},
            )
            return redirect("billing:order", order.pk)
    context = {"form": form, "credit": credit, "orders": orders, "chosen": chosen}
    return render(request, "billing/apply_credit.html", context)


@require_POST
@family_member
def order_promo(request, guardian, pk):
    """A promo code on an order not yet paid; a refusal stands next to the
    field, with what was typed."""
    order = selectors.order_in_family(guardian.family, pk)
    _may_pay(guardian)
    form = PromoCodeForm(request.POST)
    if form.is_valid():
        try:
            taken = services.order_promo_apply(
                order=order, code=form.cleaned_data["code"], actor=guardian
            )
        except PortalError as error:
            form.add_error("code", str(error))
        else:
            messages.success(
                request, _("Promo code applied: %(amount)s off.") % {"amount": money(taken)}
            )
            return redirect("billing:order", order.pk)
    return _order_page(request, guardian, order, promo_form=form)


@require_POST
@family_member
def credit_note_request(request, guardian, pk):
    """The PDF of one of the family's credit notes, made in the background."""
    note = get_object_or_404(CreditNote, pk=pk, order__family=guardian.family)
    try:
        document = services.document_request(
            family=guardian.family, kind="credit_note", credit_note=note, actor_user=request.user
        )
    except limits.LimitReached as refused:
        return limits.refused_page(request, refused, back=reverse("billing:overview"))
    return redirect("billing:document", document.pk)


@keeps_opener
@require_http_methods(["GET", "POST"])
@family_member
def pay(request, guardian, pk):
    """Our own payment page, opened top-level (also from the embedded portal):
    Stripe's card form and 3-D Secure do not belong in a nested frame."""
    order = selectors.order_in_family(guardian.family, pk)
    _may_pay(guardian)
    if not online(request.tenant):
        return render(request, "billing/instructions.html", {"order": order})
    methods = list(PaymentMethod.objects.filter(guardian=guardian))
    wants_json = request.headers.get("Accept") == "application/json"
    if request.method == "GET":
        return _pay_page(request, order, methods)
    method = request.POST.get("payment_method", "")
    saved = _chosen_method(guardian, method)
    stripe_pm = (
        saved.stripe_payment_method_id if saved else request.POST.get("stripe_payment_method", "")
    )
    save = request.POST.get("save") == "on" and not saved
    bank_mandate = None
    if method == "bank" or (saved and saved.kind == PaymentMethod.Kind.BANK):
        if not request.tenant.echecks_active:
            raise Http404("Bank account payments are switched off.")
        bank_mandate = gateway.mandate_acceptance(
            ip_address=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.headers.get("User-Agent", ""),
        )
    if method == "bank":
        form = BankAccountForm(request.POST)
        try:
            if not form.is_valid():
                field, message = form.first_error()
                raise PortalError(message, field=field)
            stripe_pm = services.bank_account_method(
                guardian=guardian,
                iban=form.cleaned_data["iban"],
                holder=form.cleaned_data["holder"],
            )
        except PortalError as error:
            return _pay_refused(
                request,
                order,
                methods,
                str(error),
                field=error.field or "iban",
                wants_json=wants_json,
                bank_form=form,
            )
        save = request.POST.get("save_bank") == "on"
    if not stripe_pm.startswith("pm_"):
        return _pay_refused(
            request,
            order,
            methods,
            _("Enter your card details, or choose a saved card."),
            field="card",
            wants_json=wants_json,
        )
    try:
        payment = services.payment_start(
            order=order,
            payer=guardian,
            stripe_payment_method_id=stripe_pm,
            attempt_key=request.POST.get("attempt", "")[:64] or services.new_attempt_key(),
            save_method=save,
            bank_mandate=bank_mandate,
        )
    except PortalError as error:
        if error.field:
            return _pay_refused(
                request, order, methods, str(error), field=error.field, wants_json=wants_json
            )
        if wants_json:
            url = reverse("billing:order", args=[order.pk])
            return JsonResponse({"message": str(error), "field": "", "url": url}, status=409)
        messages.error(request, str(error))
        return redirect("billing:order", order.pk)
    if payment.status == Payment.Status.FAILED:
        # Refused at once (a decline, a card Stripe does not know): said next to
        # the card (or the IBAN), with a new attempt for the next try.
        return _pay_refused(
            request,
            order,
            methods,
            payment.failure_message,
            field="iban" if method == "bank" else "card",
            wants_json=wants_json,
        )
    if wants_json:
        return JsonResponse(_payment_json(payment))
    return redirect("billing:payment", payment.pk)


def _chosen_method(guardian, raw: str) -> PaymentMethod | None:
    """The saved method chosen on the pay page: any of the family's (the
    service refuses another guardian's, with a message), never another
    family's (not found)."""
    if raw in ("", "new", "bank"):
        return None
    try:
        pk = parse_int(raw, name="method")
    except BadParameter as error:
        raise Http404("No such payment method.") from error
    if pk is None:
        return None
    return selectors.payment_method_in_family(guardian.family, pk)


def _pay_page(request, order, methods, *, errors=None, status=200, bank_form=None):
    context = {
        "bank_offered": request.tenant.echecks_active,
        "bank_form": bank_form or BankAccountForm(),
        "order": order,
        "methods": methods,
        "may_save": len(methods) < services.MAX_METHODS,
        "attempt": services.new_attempt_key(),
        "stripe_js": gateway.js_url(),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "errors": errors or {},
        "chosen": request.POST.get("payment_method", ""),
        "save_checked": request.POST.get("save") == "on",
    }
    return render(request, "billing/pay.html", context, status=status)


def _pay_refused(request, order, methods, message, *, field, wants_json, bank_form=None):
    if wants_json:
        return JsonResponse(
            {
                "status": "failed",
                "field": field,
                "message": message,
                "attempt": services.new_attempt_key(),
            },
            status=400,
        )
    return _pay_page(
        request, order, methods, errors={field: message}, status=400, bank_form=bank_form
    )


CARD_SETUP_SESSION = "billing:card-setup"


@require_POST
@family_member
def card_setup(request, guardian):
    """The SetupIntent for the card being typed on the pay or add-card page,
    made when the parent submits a new card (never on a page view) and kept
    for the session until Stripe has a card on it."""
    if not online(request.tenant):
        raise Http404("Online payments are switched off.")
    # Every guardian with a login may save a card; paying needs "may pay" (the service).
    try:
        setup = services.card_setup_start(
            guardian=guardian, reuse_id=request.session.get(CARD_SETUP_SESSION, "")
        )
    except (gateway.GatewayUnavailable, stripe.StripeError):
        return JsonResponse(
            {
                "message": _(
                    "We could not reach the card processor. Nothing was charged; try again."
                )
            },
            status=503,
        )
    request.session[CARD_SETUP_SESSION] = setup.id
    return JsonResponse({"client_secret": setup.client_secret})


def _payment_json(payment: Payment) -> dict:
    return {
        "id": payment.pk,
        "status": payment.status,
        "client_secret": payment.client_secret if payment.status == "requires_action" else "",
        "url": reverse("billing:payment", args=[payment.pk]),
        "check": reverse("billing:payment_check", args=[payment.pk]),
        "message": payment.failure_message,
    }


POLL_FIRST, POLL_MAX = 2, 30  # seconds between looks at our own server, doubling


@keeps_opener
@require_GET
@family_member
def payment(request, guardian, pk):
    """The payment's outcome. The page asks our server, never Stripe: the
    webhook and reconciliation settle the payment; the page looks again after
    2, 4, 8 ... up to 30 seconds."""
    found = get_object_or_404(
        Payment.objects.select_related("order"), pk=pk, family=guardian.family
    )
    wait = min(max(int_param(request, "wait", source="GET") or POLL_FIRST, POLL_FIRST), POLL_MAX)
    template = "billing/payment.html"
    if request.htmx:
        template += "#status"
    context = {
        "payment": found,
        "wait": wait,
        "next_wait": min(wait * 2, POLL_MAX),
        "pay_only": request.session.get(PAY_ONLY_SESSION),
        "return_url": request.session.get(PAY_RETURN_SESSION, ""),
    }
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@family_member
def payment_check(request, guardian, pk):
    """The parent is back from their bank's 3-D Secure page: ask Stripe once
    for this payment's answer (at most every few seconds)."""
    from django.core.cache import cache

    found = get_object_or_404(Payment, pk=pk, family=guardian.family)
    if found.in_progress and cache.add(f"payment-check:{found.pk}", 1, timeout=5):
        try:
            found = services.payment_sync(payment=found)
        except gateway.GatewayUnavailable:
            pass
    if request.headers.get("Accept") == "application/json":
        return JsonResponse(_payment_json(found))
    return redirect("billing:payment", found.pk)


# --- Payment methods -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@family_member
def method_add(request, guardian):
    if not online(request.tenant):
        return render(request, "billing/instructions.html", {"order": None})
    bank_offered = request.tenant.echecks_active
    bank_form = BankAccountForm(request.POST if request.POST.get("kind") == "bank" else None)
    errors: dict[str, str] = {}
    if request.method == "POST" and request.POST.get("kind") == "bank":
        if not bank_offered:
            raise Http404("Bank account payments are switched off.")
        try:
            if not bank_form.is_valid():
                field, message = bank_form.first_error()
                raise PortalError(message, field=field)
            services.bank_account_add(
                guardian=guardian,
                iban=bank_form.cleaned_data["iban"],
                holder=bank_form.cleaned_data["holder"],
                mandate=gateway.mandate_acceptance(
                    ip_address=request.META.get("REMOTE_ADDR", ""),
                    user_agent=request.headers.get("User-Agent", ""),
                ),
            )
        except PortalError as error:
            errors[error.field or "iban"] = str(error)
        else:
            messages.success(request, _("Bank account saved."))
            return redirect(reverse("billing:overview") + "#methods")
    elif request.method == "POST":
        try:
            services.payment_method_save(
                guardian=guardian,
                stripe_payment_method_id=request.POST.get("stripe_payment_method", ""),
            )
        except PortalError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Card saved."))
        return redirect(reverse("billing:overview") + "#methods")
    context = {
        "stripe_js": gateway.js_url(),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "bank_offered": bank_offered,
        "bank_form": bank_form,
        "errors": errors,
    }
    return render(request, "billing/method_add.html", context, status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
@family_member
def method_edit(request, guardian, pk):
    """One of the guardian's own methods (another guardian's is not found
    here: the overview shows those read-only)."""
    method = get_object_or_404(PaymentMethod, pk=pk, guardian=guardian)
    errors: dict[str, str] = {}
    if request.method == "POST":
        wanted = {
            "is_primary": request.POST.get("is_primary") == "on",
            "recurring_authorized": request.POST.get("recurring_authorized") == "on",
        }
        try:
            services.payment_method_update(method=method, actor=guardian, **wanted)
        except PortalError as error:
            errors[error.field or "form"] = str(error)
            method.is_primary = wanted["is_primary"]  # the form keeps what was chosen
            method.recurring_authorized = wanted["recurring_authorized"]
        else:
            messages.success(request, _("Saved."))
            return redirect(reverse("billing:overview") + "#methods")
    context = {"method": method, "errors": errors, "may_pay": guardian.may_pay}
    if not guardian.may_pay:
        context["primary_guardian"] = services.primary_guardian_name(guardian.family_id)
    return render(request, "billing/method_edit.html", context, status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
@family_member
def method_delete(request, guardian, pk):
    """Asks first (what deleting changes), then deletes on the POST."""
    method = get_object_or_404(PaymentMethod, pk=pk, guardian=guardian)
    if request.tenant.require_recurring_authorisation:
        raise Http404("Deleting saved methods is switched off.")
    if request.method == "GET":
        others = PaymentMethod.objects.filter(guardian=guardian).exclude(pk=method.pk).exists()
        return render(
            request,
            "billing/confirm_method_delete.html",
            {"method": method, "others": others},
        )
    try:
        services.payment_method_delete(method=method, actor=guardian)
    except (PortalError, gateway.GatewayUnavailable) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Card removed."))
    return redirect(reverse("billing:overview") + "#methods")


# --- Documents --------------------------------------------------------------------------------


@require_POST
@family_member
def document_request(request, guardian):
    """A statement or ledger for a location and period; a bad period is
    answered next to its field on the payments page, with what was typed."""
    kind = request.POST.get("kind")
    if kind not in ("statement", "ledger"):
        raise Http404
    form = DocumentForm(request.POST, full_history=request.tenant.full_ledger_history, kind=kind)
    status = 400
    if form.is_valid():
        try:
            document = services.document_request(
                family=guardian.family,
                kind=kind,
                location=form.cleaned_data["location"],
                date_from=form.cleaned_data["date_from"],
                date_to=form.cleaned_data["date_to"],
                actor_user=request.user,
            )
        except limits.LimitReached as refused:
            form.add_error(None, str(refused))
            status, retry_after = 429, refused.retry_after
        else:
            return redirect("billing:document", document.pk)
    context = _overview_context(request, guardian, form) | {
        "tab": "all",
        "page": Paginator(selectors.history(guardian.family, "all"), PAGE_SIZE).get_page(1),
        "tabs": history_tabs(),
        "form_failed": status == 400,
    }
    response = render(request, "billing/overview.html", context, status=status)
    if status == 429:
        response["Retry-After"] = str(retry_after)
    return response


@require_POST
@family_member
def invoice_request(request, guardian, pk):
    if not request.tenant.invoices_enabled:
        raise Http404("Invoices are switched off.")
    order = selectors.order_in_family(guardian.family, pk)
    invoice = services.invoice_issue(order=order)
    try:
        document = services.document_request(
            family=guardian.family, kind="invoice", invoice=invoice, actor_user=request.user
        )
    except limits.LimitReached as refused:
        return limits.refused_page(request, refused, back=reverse("billing:order", args=[order.pk]))
    return redirect("billing:document", document.pk)


@require_GET
@family_member
def document(request, guardian, pk):
    found = selectors.document_in_family(guardian.family, pk)
    stale = (
        found.status in ("queued", "running")
        and clock.now() - found.created_at > selectors.STALE_AFTER
    )
    template = "billing/document.html"
    if request.htmx:
        template += "#status"
    return render(request, template, {"document": found, "stale": stale})


@require_GET
@family_member
def document_download(request, guardian, pk):
    found = selectors.document_in_family(guardian.family, pk)
    if found.status != Document.Status.DONE or not found.file:
        raise Http404("Not ready.")
    if found.kind == "invoice" and not request.tenant.invoices_enabled:
        raise Http404
    return FileResponse(
        found.file.open("rb"), as_attachment=True, filename=selectors.document_file_name(found)
    )


# --- From the embedded portal to the top-level payment page ----------------------------

HANDOFF_SALT = "billing.pay-handoff"
HANDOFF_SECONDS = 300
PAY_ONLY_SESSION = "pay_only"  # the order a hand-off login may pay, and nothing else
PAY_RETURN_SESSION = "pay_return"  # the provider's page the parent came from


def _return_url(request, raw: str) -> str:
    """Where the parent came from, if it is one of the provider's websites
    allowed to embed the portal (never anywhere else)."""
    from urllib.parse import urlsplit

    parts = urlsplit(raw or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    origin = f"{parts.scheme}://{parts.netloc}"
    return raw[:500] if origin in request.tenant.allowed_frame_origins else ""


def handoff_token(user, order, return_url: str = "") -> str:
    """Signed, short-lived and single-use: lets the payment page, opened in a
    new tab from the iframe (where the login cookie is partitioned to the
    provider's site), continue as the same parent for this one order. Bound to
    this provider and to the user's current password."""
    import secrets

    from django.core import signing

    from portal.tenancy import current_schema

    return signing.dumps(
        {
            "u": user.pk,
            "o": order.pk,
            "n": secrets.token_hex(8),
            "h": user.get_session_auth_hash()[:16],
            "r": return_url,
        },
        salt=f"{HANDOFF_SALT}:{current_schema()}",
    )


@require_POST
@family_member
def handoff_start(request, guardian, pk):
    """Pay clicked inside the provider's website: the link for the new tab is
    minted now, for this parent and this order (never in a page that could be
    cached or shown to someone else)."""
    order = selectors.order_in_family(guardian.family, pk)
    _may_pay(guardian)
    token = handoff_token(request.user, order, _return_url(request, request.POST.get("back", "")))
    url = reverse("billing:handoff", args=[token])
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"url": url})
    return redirect(url)


def _handoff_data(token):
    from django.core import signing

    from portal.tenancy import current_schema

    try:
        return signing.loads(
            token, salt=f"{HANDOFF_SALT}:{current_schema()}", max_age=HANDOFF_SECONDS
        )
    except signing.BadSignature as error:
        raise Http404("This payment link has expired. Open Payments again.") from error


@keeps_opener
@login_not_required
@require_http_methods(["GET", "POST"])
def handoff(request, token):
    """Shows the order and the amount and asks before logging in (a link
    someone sent must not log a stranger in). The login it makes reaches this
    order's payment only (billing.middleware.PayOnlyMiddleware)."""
    from django.contrib.auth import get_user_model, login
    from django.core.cache import cache

    from families.models import Guardian

    data = _handoff_data(token)
    user = get_user_model().objects.filter(pk=data["u"], is_active=True).first()
    if user is None or user.get_session_auth_hash()[:16] != data["h"]:
        raise Http404("This payment link no longer works.")
    if request.user.is_authenticated and request.user.pk != user.pk:
        raise Http404("Log out first: this payment link is for someone else.")
    guardian = Guardian.objects.filter(user=user).select_related("family").first()
    if guardian is None:
        raise Http404("No family for this login.")
    order = selectors.order_in_family(guardian.family, data["o"])
    if request.method == "GET":
        return render(request, "billing/handoff.html", {"person": user, "order": order})
    if not cache.add(f"pay-handoff:{data['n']}", 1, timeout=HANDOFF_SECONDS * 2):
        raise Http404("This payment link was used already.")
    if not request.user.is_authenticated:
        login(request, user, backend="families.backends.PortalBackend")
        request.session[PAY_ONLY_SESSION] = order.pk
    if data.get("r"):
        request.session[PAY_RETURN_SESSION] = data["r"]
    return redirect("billing:pay", order.pk)
