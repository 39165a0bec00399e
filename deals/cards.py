"""The board's cards as plain values: one `.values()` row per deal, formatted once in Python,
and drawn a column at a time (fragments/deals/cards.html), each column's markup kept by the rows it
shows (crm.drawn).

A card is a dict (a TypedDict for the reader and mypy), so the template's lookups succeed at the
first try; labels, money and dates are formatted here once per card, the URL from a prefix
reversed once per page, and the tags of all the cards come from one query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
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

# A card's row as the board reads it (selectors.first_cards, column_more): a tuple of CARD_FIELDS,
# then the deal's tags (JSON text, None for none) and its client's unread messages. A tuple: the
# rows of a column are the key its drawn markup is kept under (CardMaker.drawn).
CARD_COLUMNS = (*CARD_FIELDS, "card_tags", "card_unread")
AT = {name: index for index, name in enumerate(CARD_COLUMNS)}  # a column's place in a card row


def card_rows(names: list[str] | tuple[str, ...], rows) -> list[tuple]:
    """Rows whose columns are `names`, as card rows (CARD_COLUMNS' order)."""
    if tuple(names) == CARD_COLUMNS:
        return rows if isinstance(rows, list) else list(rows)
    order = [list(names).index(name) for name in CARD_COLUMNS]
    return [tuple(row[i] for i in order) for row in rows]


class Card(TypedDict):
    # Numbers as text: a template prints an int through number_format (localisation), 7 times a card.
    pk: str
    stage_id: str
    version: str
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


def cursor_of(row: tuple) -> str:
    """Where "load more" continues after a card row: "<position>_<id>"."""
    return f"{row[AT['position']]!r}_{row[AT['id']]}"


@fragments.words
def card_texts() -> dict[str, str]:
    return {"unread": _("Unread messages"), "responsible": _("Responsible"), "created": _("Created"),
            "move_to": _("Move to…")}


# Columns of cards drawn, by the rows they show and how they read (crm.drawn). A column is ~15 kB and
# its key (the rows) a few kB: 1,000 columns are at most ~20 MB of a web worker, the boards of a
# hundred lines and more.
DRAWN_COLUMNS = Drawn(size=1000)


class CardMaker:
    """Formats the rows of one page, in the reader's language and time zone."""

    def __init__(self, *, hidden: frozenset | set = frozenset(), hidden_contact: frozenset | set = frozenset(),
                 can_move: bool = False):
        self.show_channel = "channel" not in hidden
        self.show_country = "country" not in hidden_contact
        self.show_responsible = "deal_responsible" not in hidden
        self.can_move = can_move
        # Everything besides a card's row that decides its markup (crm.drawn).
        self.reading = (*reader(), self.show_channel, self.show_country, self.show_responsible, can_move)

    # What formatting needs, made when a card is formatted: a board whose columns are all kept
    # (drawn) formats nothing.
    @cached_property
    def fmt(self) -> Formatter:
        return Formatter()  # dates and labels in the reader's language and time zone

    @cached_property
    def money(self) -> Money:
        return Money()

    @cached_property
    def detail_url(self) -> Callable[[int], str]:
        return url_maker("deals:detail")

    @cached_property
    def _texts(self) -> tuple[str, str, str]:
        return _("Sales: %(n)s for %(sum)s"), _("No sales yet"), _("Move deal #%(n)s to")

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

    def drawn(self, rows: list[tuple]) -> SafeString:
        """The cards of card rows (CARD_COLUMNS: their tags and unread counts are part of what they
        show, so of the key) drawn by fragments/deals/cards.html, kept by the rows and the reading:
        drawn again only when a value the cards show, or the way they read, changed."""
        if not rows:
            return SafeString("")
        return SafeString(DRAWN_COLUMNS.get((self.reading, tuple(rows)), lambda: fragments.render(
            "deals/cards.html", {"cards": self.cards([dict(zip(CARD_COLUMNS, row, strict=True)) for row in rows]),
                                 "can_move": self.can_move, "texts": card_texts()})))

    def cards(self, rows: list[dict]) -> list[Card]:
        """Cards of rows carrying their tags (`card_tags`: JSON text, or None for none) and unread
        counts (`card_unread`): selectors.first_cards reads them in its statement, with_extras
        for other rows."""
        tags = {row["id"]: json.loads(row["card_tags"]) if row["card_tags"] else [] for row in rows}
        unread = {row["client_id"]: int(row["card_unread"]) for row in rows}
        sales_text, no_sales, move_text = self._texts
        return [
            Card(
                pk=str(row["id"]), stage_id=str(row["stage_id"]), version=str(row["version"]),
                url=self.detail_url(row["id"]),
                client_name=row["client__name"], place=self._place(row), responsible=self._responsible(row),
                created=self.fmt.date(row["created_at"]),
                sales=sales_text % {"n": row["sales_count"], "sum": self.money(row["sales_sum"])} if row["sales_count"] else no_sales,
                move_label=move_text % {"n": row["id"]},
                tags=tags.get(row["id"], []), unread=unread.get(row["client_id"], 0),
            )
            for row in rows
        ]


def with_extras(rows: list[dict]) -> list[tuple]:
    """Card rows (CARD_COLUMNS) of `.values(*CARD_FIELDS)` rows: each card's tags (JSON text, None
    for none) and its client's unread messages read in two queries, as first_cards reads them in
    its statement on PostgreSQL; for the rows read elsewhere (SQLite, the next cards of a column)."""
    tags = tags_of([row["id"] for row in rows])
    unread = unread_of([row["client_id"] for row in rows])
    return [
        (*(row[name] for name in CARD_FIELDS),
         json.dumps(tags[row["id"]], ensure_ascii=False) if tags.get(row["id"]) else None, unread.get(row["client_id"], 0))
        for row in rows
    ]


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
