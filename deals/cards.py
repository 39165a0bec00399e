"""The board's cards as plain values: one `.values()` row per deal, formatted once in Python,
and drawn a column at a time (fragments/deals/cards.html), each column's markup kept by the rows it
shows (crm.drawn).

A card is a dict (a TypedDict for the reader and mypy), so the template's lookups succeed at the
first try; labels, money and dates are formatted here once per card, the URL from a prefix
reversed once per page, and the tags of all the cards come from one query.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import TypedDict

from django.utils import formats, numberformat
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from clients.selectors import TagChip, person_name, tag_chips
from crm import fragments
from crm.drawn import Drawn, reader
from crm.formatting import Formatter
from crm.http import url_maker

from .models import Deal

# What a card shows, read in one query (joined with the client and the responsible).
CARD_FIELDS = (
    "id", "stage_id", "version", "position", "client_id", "client__name", "client__country", "channel",
    "responsible_id", "responsible__first_name", "responsible__last_name", "responsible__username",
    "created_at", "sales_count", "sales_sum",
)


class Card(TypedDict):
    # Numbers as text: a template prints an int through number_format (localisation), 7 times a card.
    pk: str
    stage_id: str
    version: str
    cursor: str  # "<position>_<id>": where "load more" continues after this card
    url: str
    client_name: str
    place: str  # channel · country, each unless the layout hides it
    responsible: str  # "" when the layout hides it
    created: str
    sales: str
    move_label: str
    tags: list[TagChip]
    unread: int  # the client's messages nobody has read yet (the messenger's badge)


class Money:
    """Sums rounded to whole units with grouping, as the column totals show them (floatformat:"0g"),
    for a whole page: the locale's separators looked up once, each sum formatted once."""

    def __init__(self) -> None:
        self.separator = formats.get_format("THOUSAND_SEPARATOR")
        self.grouping = formats.get_format("NUMBER_GROUPING")
        self._done: dict[Decimal, str] = {}

    def __call__(self, value) -> str:
        whole = Decimal(value or 0).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        if whole not in self._done:
            self._done[whole] = numberformat.format(whole, "", 0, self.grouping, self.separator, force_grouping=True)
        return self._done[whole]


def cursor_of(position: float, pk: int) -> str:
    return f"{position!r}_{pk}"


@fragments.words
def card_texts() -> dict[str, str]:
    return {"unread": _("Unread messages"), "responsible": _("Responsible"), "created": _("Created"),
            "move_to": _("Move to…")}


# Columns of cards drawn, by the rows they show and how they read (crm.drawn). A column is ~15 kB:
# 2,000 columns are at most ~30 MB of a web worker, the boards of a few hundred lines.
DRAWN_COLUMNS = Drawn(size=2000)


class CardMaker:
    """Formats the rows of one page, in the reader's language and time zone."""

    def __init__(self, *, hidden: frozenset | set = frozenset(), hidden_contact: frozenset | set = frozenset(),
                 can_move: bool = False):
        self.detail_url = url_maker("deals:detail")
        self.show_channel = "channel" not in hidden
        self.show_country = "country" not in hidden_contact
        self.show_responsible = "deal_responsible" not in hidden
        self.fmt = Formatter()  # dates and labels in the reader's language and time zone
        self.money = Money()
        self.sales_text = _("Sales: %(n)s for %(sum)s")
        self.no_sales = _("No sales yet")
        self.move_text = _("Move deal #%(n)s to")
        self.can_move = can_move
        # Everything besides a card's row that decides its markup (crm.drawn).
        self.reading = (*reader(), self.show_channel, self.show_country, self.show_responsible, can_move)

    def _place(self, row) -> str:
        parts = []
        if self.show_channel and row["channel"]:
            parts.append(self.fmt.label("channel", row["channel"]))
        country = self.fmt.label("country", row["client__country"]) if self.show_country else ""
        if country:
            parts.append(country)
        return " · ".join(parts)

    def _responsible(self, row) -> str:
        if not self.show_responsible:
            return ""
        if row["responsible_id"] is None:
            return "—"
        return person_name(row["responsible__first_name"], row["responsible__last_name"], row["responsible__username"])

    def drawn(self, rows: list[dict]) -> SafeString:
        """The rows' cards drawn (fragments/deals/cards.html), kept by the rows and the reading:
        drawn again only when a value the cards show, or the way they read, changed.

        Each row must carry its tags and unread count (with_extras): they are part of what the
        cards show, so part of the key."""
        if not rows:
            return SafeString("")
        key = (self.reading, tuple(tuple(row.values()) for row in rows))
        return SafeString(DRAWN_COLUMNS.get(key, lambda: fragments.render(
            "deals/cards.html", {"cards": self.cards(rows), "can_move": self.can_move, "texts": card_texts()})))

    def cards(self, rows: list[dict]) -> list[Card]:
        """Cards of rows carrying their tags (`card_tags`: JSON text, or None for none) and unread
        counts (`card_unread`): selectors.first_cards reads them in its statement, with_extras
        for other rows."""
        tags = {row["id"]: json.loads(row["card_tags"]) if row["card_tags"] else [] for row in rows}
        unread = {row["client_id"]: int(row["card_unread"]) for row in rows}
        return [
            Card(
                pk=str(row["id"]), stage_id=str(row["stage_id"]), version=str(row["version"]),
                cursor=cursor_of(row["position"], row["id"]), url=self.detail_url(row["id"]),
                client_name=row["client__name"], place=self._place(row), responsible=self._responsible(row),
                created=self.fmt.date(row["created_at"]),
                sales=self.sales_text % {"n": row["sales_count"], "sum": self.money(row["sales_sum"])} if row["sales_count"] else self.no_sales,
                move_label=self.move_text % {"n": row["id"]},
                tags=tags.get(row["id"], []), unread=unread.get(row["client_id"], 0),
            )
            for row in rows
        ]


def with_extras(rows: list[dict]) -> list[dict]:
    """Rows of CARD_FIELDS with each card's tags (JSON text, None for none) and its client's
    unread messages added, read in two queries, as first_cards reads them in its statement on
    PostgreSQL: for the rows read elsewhere (SQLite, the next cards of a column)."""
    tags = tags_of([row["id"] for row in rows])
    unread = unread_of([row["client_id"] for row in rows])
    for row in rows:
        row["card_tags"] = json.dumps(tags[row["id"]], ensure_ascii=False) if tags.get(row["id"]) else None
        row["card_unread"] = unread.get(row["client_id"], 0)
    return rows


def tags_of(deal_ids: list[int]) -> dict[int, list[TagChip]]:
    """The tags of many deals in one query, each deal's in name order."""
    return tag_chips(Deal.tags.through, "deal_id", deal_ids)


def unread_of(client_ids: list[int]) -> dict[int, int]:
    """The unread messages of many clients' conversations in one query (the cards' badge)."""
    from django.db.models import Sum

    from messenger.models import Conversation

    if not client_ids:
        return {}
    rows = (Conversation.objects.filter(client_id__in=set(client_ids), unread__gt=0).values("client_id")
            .annotate(n=Sum("unread")).values_list("client_id", "n"))
    return dict(rows)
