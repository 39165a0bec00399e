from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from crm import fragments

register = template.Library()


@register.simple_tag(takes_context=True)
def deal_cards(context, cards) -> SafeString:
    """The board's cards (deals.cards.Card), drawn by fragments/deals/cards.html."""
    texts = {"unread": _("Unread messages"), "responsible": _("Responsible"), "created": _("Created"),
             "move_to": _("Move to…")}
    return fragments.render("deals/cards.html", {"cards": cards, "can_move": context.get("can_move", False), "texts": texts})
