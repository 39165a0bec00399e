from urllib.parse import quote

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from crm import fragments
from crm import permissions as gate
from crm.http import url_maker
from crm.templatetags.chrome import kept_static, page_context
from crm.templatetags.urls import kept_reverse
from deals.cards import Money

register = template.Library()


@fragments.words
def _head_texts() -> dict[str, str]:
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


@fragments.words
def _board_texts() -> dict[str, str]:
    return {**_head_texts(), "move_hint": _("Enter: move · Esc: cancel"),
            "no_stages": _("This line has no stages yet.")}


@register.simple_tag(takes_context=True)
def board_columns(context) -> SafeString:
    """The board (#board-columns): its addresses, the poll for changes and the columns
    (deals.selectors.Column), each column's head, first cards and sentinel, drawn by
    fragments/deals/board.html and columns.html (Django's template engine took longer to draw the
    eight heads than Jinja2 the 120 cards)."""
    line_query, filters, funnel = context["line_query"], context.get("filters", ""), context["funnel"].pk
    more = url_maker("deals:more", funnel)
    columns = _heads(context)
    for head, column in zip(columns, context["columns"], strict=True):
        head["cards"] = column.cards
        head["more_url"] = ""
        if column.more_after:
            head["more_url"] = (more(column.stage.pk) + f"?{line_query}&after={quote(column.more_after, safe='/')}"
                                + (f"&{filters}" if filters else ""))
    url = {"move": kept_reverse("deals:move", (0,)), "totals": kept_reverse("deals:totals", (funnel,)),
           "board": kept_reverse("deals:board", (funnel,)), "changes": kept_reverse("deals:changes", (funnel,))}
    return fragments.render("deals/board.html", {
        "columns": columns, "can_move": context.get("can_move", False), "texts": _board_texts(), "funnel": funnel, "url": url,
        "line_query": line_query, "filters": filters, "token": quote(str(context.get("token", "")), safe="/"),
    })


@register.simple_tag(takes_context=True)
def board_head(context) -> SafeString:
    """The board's head (funnels, lines, the clients/robots and kanban/table switches, the shift
    slot, the funnel's settings), drawn by fragments/deals/board_head.html."""
    funnel, line, user = context["funnel"], context["line"], context["user"]
    url = {"board": kept_reverse("deals:board", (funnel.pk,)), "robots": kept_reverse("robots:board", (funnel.pk,)),
           "shift": kept_reverse("deals:shift"), "table": kept_reverse("deals:table", (funnel.pk,)),
           "settings": kept_reverse("deals:settings", (funnel.pk,))}
    return fragments.render("deals/board_head.html", {
        "funnels": [(f.pk, str(f), f.get_absolute_url()) for f in context["funnels"]], "funnel": funnel.pk, "funnel_name": str(funnel),
        "lines": [(ln.pk, str(ln)) for ln in context["lines"]], "line": line.pk if line else None,
        "filters": context.get("filters", ""), "line_query": context["line_query"], "url": url,
        "may_robots": gate.can(user, gate.CONFIGURE_ROBOTS), "may_settings": gate.can(user, gate.CONFIGURE_FUNNELS),
        "t": {"funnels": _("Funnels"), "lines": _("Lines"), "clients_or_robots": _("Clients or robots"), "clients": _("Clients"),
              "robots": _("Robots"), "view": _("View"), "kanban": _("Kanban"), "table": _("Table"), "funnel_settings": _("Funnel settings")},
    })


@register.simple_tag(takes_context=True)
def column_heads(context) -> SafeString:
    """The columns' heads alone, each marked for an out-of-band swap (after a move)."""
    return fragments.render("deals/heads.html", {"columns": _heads(context), "texts": _head_texts()})


@fragments.words
def _filters_words() -> dict[str, str]:
    return {"filters": _("Filters"), "on": _("on"), "loading": _("Loading…")}


@register.simple_tag(takes_context=True)
def filters_box(context) -> SafeString:
    """The deal filters' box (the board's and the deals table's), drawn by fragments/deals/filters_box.html."""
    return fragments.render("deals/filters_box.html", {
        "filters_active": context.get("filters_active", False), "filters": context.get("filters", ""),
        "line_query": context.get("line_query", ""), "url": kept_reverse("deals:filters", (context["funnel"].pk,)),
        "t": _filters_words(),
    })


@fragments.words
def _page_words() -> dict[str, str]:
    return {"scroll_left": _("Scroll the board left"), "scroll_right": _("Scroll the board right"),
            "move_hint": _("Arrow keys choose a stage; Enter moves the deal there, Escape cancels.")}


@register.simple_tag(takes_context=True)
def board_page(context) -> SafeString:
    """The board's whole page, shell included (fragments/deals/page.html in crm/page.html): its
    head, filters' box and columns drawn by the tags above, the shell from chrome.page_context.
    Django's template engine took longer to draw the shell around them than Jinja2 takes for all."""
    return fragments.render("deals/page.html", {
        "page": page_context(context), "funnel_name": str(context["funnel"]), "board_js": kept_static("js/board.js")["js/board.js"],
        "head": board_head(context), "filters_box": filters_box(context), "columns": board_columns(context), "t": _page_words(),
    })
