from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def pay_handoff(context, order) -> str:
    """URL that opens the payment page top-level as the same parent (embedded use)."""
    from billing.views import handoff_token

    request = context["request"]
    return reverse("billing:handoff", args=[handoff_token(request.user, order)])
