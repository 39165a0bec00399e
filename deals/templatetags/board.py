from urllib.parse import quote

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from crm import fragments
from crm.http import url_maker
from deals.cards import Money

register = template.Library()


def _card_texts() -> dict[str, str]:
    return {"unread": _("Unread messages"), "responsible": _("Responsible"), "created": _("Created"),
            "move_to": _("Move to…")}


@register.simple_tag(takes_context=True)
def deal_cards(context, cards) -> SafeString:
    """The board's cards (deals.cards.Card), drawn by fragments/deals/cards.html."""
    return fragments.render("deals/cards.html", {"cards": cards, "can_move": context.get("can_move", False), "texts": _card_texts()})


def _head_texts() -> dict:
    return {"deals": _("Deals"), "budget": _("Budget"), "sales_sum": _("Sales sum"), "sales": _("Sales"),
            "loading": _("Loading…"), "robot_icon": render_to_string("icons/robot.html", {"size": "14"})}


def _heads(context) -> list[dict]:
    """Each column's head as plain values (deals.selectors.Column), sums formatted once, as
    `floatformat:"0g"` would (Money)."""
    money, show_budget = Money(), "budget" not in context["hidden"]
    heads = []
    for column in context["columns"]:
        stage = column.stage
        robots = getattr(stage, "robots_on", 0)
        heads.append({
            "pk": stage.pk, "color": stage.color, "name": str(stage), "robots_on": robots,
            "robots_label": _("Robots: %(n)s") % {"n": robots} if robots else "",
            "count": column.count, "budget": money(column.budget) if show_budget else None, "sales": money(column.sales),
        })
    return heads


@register.simple_tag(takes_context=True)
def board_columns(context) -> SafeString:
    """The board's columns (deals.selectors.Column): heads, first cards and the sentinel of each,
    drawn by fragments/deals/columns.html (Django's template engine took longer to draw the eight
    heads than Jinja2 the 120 cards)."""
    line_query, filters = context["line_query"], context.get("filters", "")
    more = url_maker("deals:more", context["funnel"].pk)
    columns = _heads(context)
    for head, column in zip(columns, context["columns"], strict=True):
        head["cards"] = column.cards
        head["more_url"] = ""
        if column.more_after:
            head["more_url"] = (more(column.stage.pk) + f"?{line_query}&after={quote(column.more_after, safe='/')}"
                                + (f"&{filters}" if filters else ""))
    return fragments.render("deals/columns.html", {"columns": columns, "can_move": context.get("can_move", False),
                                                   "texts": {**_card_texts(), **_head_texts()}})


@register.simple_tag(takes_context=True)
def column_heads(context) -> SafeString:
    """The columns' heads alone, each marked for an out-of-band swap (after a move)."""
    return fragments.render("deals/heads.html", {"columns": _heads(context), "texts": _head_texts()})
