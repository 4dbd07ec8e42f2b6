"""A login made by the pay hand-off (billing.views.handoff) pays one order:
its session reaches that order's pay page, its payments and the card form,
and nothing else of the family's."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import Resolver404, resolve

from .models import Payment
from .views import PAY_ONLY_SESSION, PAY_RETURN_SESSION

OPEN = {"billing:card_setup", "billing:handoff", "logout", "health", "provider_logo"}


def _allowed(path: str, order_id: int) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return True  # a 404 all the same
    name = match.view_name
    if name == "billing:pay":
        return match.kwargs.get("pk") == order_id
    if name in ("billing:payment", "billing:payment_check"):
        return Payment.objects.filter(pk=match.kwargs["pk"], order_id=order_id).exists()
    return name in OPEN


class PayOnlyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        order_id = session.get(PAY_ONLY_SESSION) if session is not None else None
        if order_id and request.user.is_authenticated and not _allowed(request.path_info, order_id):
            context = {"order_id": order_id, "return_url": session.get(PAY_RETURN_SESSION, "")}
            return render(request, "billing/pay_only.html", context, status=403)
        return self.get_response(request)
