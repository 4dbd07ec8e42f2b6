from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def pay_handoff(context, order) -> str:
    """URL that opens the payment page top-level as the same parent (embedded use)."""
    from billing.views import handoff_token
    from families.staff import viewing_as

    request = context["request"]
    if viewing_as(request):
        return ""  # a secret of the family's: never shown to staff viewing as them
    return reverse("billing:handoff", args=[handoff_token(request.user, order)])
