"""Reads for funnels, the board and deals. Every queryset starts from the permission gate."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from django.http import Http404, QueryDict
from django.utils.safestring import SafeString

from clients.labels import label
from clients.selectors import tag_chips_sql
from crm import permissions as gate
from crm import raw
from crm.exports import ExportRows, whole_result

from .cards import AT, CARD_FIELDS, CardMaker, card_rows, cursor_of, with_extras
from .filters import DealFilter
from .models import Deal, Line, Sale, Stage, StageLoad

if TYPE_CHECKING:
    from django.contrib.auth.models import Group

# Cards a column shows when the board opens: about two screens of a column (a card is ~110 px
# high); more arrive COLUMN_PAGE at a time as the column scrolls. The rest would be rendered for
# nobody: at 8 stages, 240 cards cost the page 2.5 times the 120 it needs.
FIRST_CARDS = 15
COLUMN_PAGE = 30
TABLE_PAGE = 50


def funnels_for(user) -> list:
    return list(gate.visible_funnels(user).order_by("position", "pk"))


def lines_of(funnel) -> list[Line]:
    return list(Line.objects.filter(funnel=funnel).order_by("position", "pk"))


def stages_of(line) -> list[Stage]:
    """The line's stages, each with `robots_on`: how many active robots it has (the board's robot
    mark), counted in the same query over the reverse relation (deals does not import robots)."""
    stages: list[Stage] = list(Stage.objects.filter(line=line).order_by("position", "pk")
                               .annotate(robots_on=Count("robots", filter=Q(robots__is_active=True))))
    for stage in stages:
        stage.line = line  # known already: stage.line.funnel_id costs no query
    return stages


@dataclass
class Frame:
    """What every page of a funnel's board starts from: the funnels the user may open, the
    funnel's lines, the line asked for (else the first) and its stages with `robots_on`; and, when
    asked, each stage's `load` from its counters within the user's visibility (board_totals)."""

    funnels: list
    lines: list[Line]
    line: Line | None
    stages: list[Stage]


def board_frame(user, funnel_pk: int, line_param, *, loads: bool = False) -> Frame:
    """The board's frame (Frame). On PostgreSQL three statements written by hand in one round trip
    (the ORM's compiling of three querysets, and a fourth for the counters, cost the board ~4 ms),
    a fourth for a manager's hidden fields (kept for gate.hidden_by_block); elsewhere funnels_for,
    lines_of, pick_line and stages_of."""
    if connection.vendor != "postgresql":
        funnels = funnels_for(user)
        funnel = next((f for f in funnels if f.pk == funnel_pk), None)
        lines = lines_of(funnel) if funnel else []
        line = pick_line(lines, line_param)
        return Frame(funnels, lines, line, stages_of(line) if line else [])
    from .models import Funnel

    every, granted = gate.funnel_reach(user)
    wanted = int(line_param) if str(line_param).isdigit() and len(str(line_param)) < 19 else -1
    robots = Stage._meta.get_field("robots").related_model._meta.db_table
    picked = (f"(SELECT l.id FROM {Line._meta.db_table} l WHERE l.funnel_id = %s"
              " ORDER BY (l.id = %s) DESC, l.position, l.id LIMIT 1)")
    load_columns, load_join, load_params = "", "", cast(list, [])
    if loads:
        scope, load_params = gate.scope_sql(user, "counters.responsible_id")
        load_columns = ", load.n, load.budget, load.sales, load.changes"
        load_join = (" CROSS JOIN LATERAL (SELECT coalesce(sum(counters.deals), 0) AS n, coalesce(sum(counters.budget), 0) AS budget,"
                     " coalesce(sum(counters.sales), 0) AS sales, coalesce(sum(counters.changes), 0) AS changes"
                     f" FROM {StageLoad._meta.db_table} counters WHERE counters.stage_id = t.id AND {scope}) AS load")
    statements: list[tuple[str, list]] = [
        (f"SELECT {raw.select_list(Funnel)} FROM {Funnel._meta.db_table} t WHERE %s OR t.id = ANY(%s::bigint[])"
         " ORDER BY t.position, t.id", [every, granted]),
        (f"SELECT {raw.select_list(Line)} FROM {Line._meta.db_table} t WHERE t.funnel_id = %s ORDER BY t.position, t.id",
         [funnel_pk]),
        (f"SELECT {raw.select_list(Stage)},"
         f" (SELECT count(*) FROM {robots} r WHERE r.stage_id = t.id AND r.is_active) AS robots_on{load_columns}"
         f" FROM {Stage._meta.db_table} t{load_join} WHERE t.line_id = {picked} ORDER BY t.position, t.id",
         [*load_params, funnel_pk, wanted]),
    ]
    hidden = gate.hidden_keys_wanted(user)  # a manager's hidden fields (the cards leave them out): a fourth
    if hidden:
        from clients.layout import hidden_keys, hidden_keys_sql

        statements.append((hidden_keys_sql(), []))
    funnel_rows, line_rows, stage_rows, *hidden_rows = raw.prepared_batch(statements)
    if hidden:
        gate.keep_hidden_keys(user, hidden_keys(hidden_rows[0]))
    funnels, lines = raw.instances(Funnel, funnel_rows), raw.instances(Line, line_rows)
    line = pick_line(lines, line_param)
    stages = []
    width = len(Stage._meta.concrete_fields)
    for stage, row in zip(raw.instances(Stage, stage_rows), stage_rows, strict=True):
        stage.robots_on = row[width]  # type: ignore[attr-defined]  # as stages_of annotates it
        if loads:
            n, budget, sales, changes = row[width + 1 :]
            stage.load = {"n": n, "budget": budget, "sales": sales, "changes": changes}
        if line is not None:  # always: stages come only with the line picked
            stage.line = line  # known already: stage.line.funnel_id costs no query
        stages.append(stage)
    return Frame(funnels, lines, line, stages)


def stages_of_funnel(funnel) -> QuerySet:
    return Stage.objects.filter(line__funnel=funnel).select_related("line").order_by("line__position", "position")


def stage_choices_for(user) -> list[tuple[str, list[tuple[int, str]]]]:
    """Stages grouped "funnel · line" for the funnels the user may open (quick deal's select)."""
    stages = Stage.objects.filter(line__funnel__in=gate.visible_funnels(user).values("pk")).select_related("line__funnel")
    groups: dict[str, list] = {}
    for stage in stages.order_by("line__funnel__position", "line__funnel_id", "line__position", "line_id", "position"):
        groups.setdefault(f"{stage.line.funnel} · {stage.line}", []).append((stage.pk, str(stage)))
    return list(groups.items())


def line_choices_for(user) -> list[tuple[int, str]]:
    """Lines ("funnel · line") of the funnels the user may open (the import's deal target)."""
    lines = Line.objects.filter(funnel__in=gate.visible_funnels(user).values("pk")).select_related("funnel")
    return [(line.pk, f"{line.funnel} · {line}") for line in lines.order_by("funnel__position", "funnel_id", "position", "pk")]


def line_for_user_or_404(user, pk) -> Line:
    line = Line.objects.filter(pk=pk, funnel__in=gate.visible_funnels(user).values("pk")).first()
    if line is None:
        raise Http404
    return line


def pick_line(lines: list[Line], line_id) -> Line | None:
    for line in lines:
        if str(line.pk) == str(line_id):
            return line
    return lines[0] if lines else None


def filtered_deals(user, params: QueryDict, *, stages=None, deleted=False) -> tuple[QuerySet, DealFilter]:
    """The deals of the stages (Stage objects with their line) the user may see, filtered."""
    qs = gate.visible_deals(user, deleted=deleted, stages=stages)
    # A filter on a field the user may not see is dropped (asked only when one is used).
    layout_filtered = any(params.get(name) for name in DealFilter.LAYOUT_FIELDS)
    filterset = DealFilter(params, queryset=qs, hidden=gate.hidden_by_block(user) if layout_filtered else None)
    if not filterset.is_valid():
        return qs.none(), filterset
    return filterset.qs, filterset


BOARD_PARAMS = ("line", "after", "since", "view")


def board_filtered(params: QueryDict) -> bool:
    """Whether a filter narrows the board (a parameter besides the board's own has a value)."""
    return any(value for key, values in params.lists() if key not in BOARD_PARAMS for value in values)


def board_counted(params: QueryDict) -> bool:
    """The counters serve this board (its totals and change token): no filter narrows it, and the
    database is PostgreSQL, whose triggers keep them."""
    return connection.vendor == "postgresql" and not board_filtered(params)


def board_deals(user, params: QueryDict, stages: list[Stage]) -> QuerySet:
    """The deals of the stages the board shows: filtered_deals, without building the filter set
    when no filter is asked for (most boards: the filter set cost the page ~1.5 ms)."""
    if not board_filtered(params):
        return gate.visible_deals(user, stages=stages)
    return filtered_deals(user, params, stages=stages)[0]


@dataclass
class Column:
    stage: Stage
    count: int
    budget: Decimal
    sales: Decimal
    cards: SafeString  # its first cards, drawn (CardMaker.drawn)
    shown: int  # how many
    more_after: str | None  # the cursor "load more" continues from, None when the column is complete


def _cards_select() -> str:
    """CARD_FIELDS as a select list over deals `d`, their clients `c` and responsibles `u`, each
    named as `.values(*CARD_FIELDS)` names it ("client__name")."""
    tables = {"client": "c", "responsible": "u"}
    quote = connection.ops.quote_name
    parts = []
    for name in CARD_FIELDS:
        relation, _sep, field = name.rpartition("__")
        model = Deal._meta.get_field(relation).related_model if relation else Deal
        parts.append(f"{tables.get(relation, 'd')}.{raw.column(model, field)} AS {quote(name)}")
    return ", ".join(parts)


def _cards_statement(user, params: QueryDict, stages: list[Stage]) -> tuple[str, str, list]:
    """(select list, FROM clause, its parameters) of the first FIRST_CARDS cards of every stage, as
    CARD_FIELDS: the deals `d` of each stage `stage_ids.id`, from a LATERAL join over the stage
    ids; each card's tags and unread count are added by first_cards.

    Unfiltered (most boards) written by hand, its visibility the gate's (visible_deals_sql): the
    ORM's building and compiling of the same query cost the board ~2 ms. Each stage's deals are
    taken (ordered, limited) before their clients and responsibles are joined: a manager's column
    then reads FIRST_CARDS clients, not one per deal of theirs in it (449 for 120 cards at 10,000
    deals: 2.2 ms against 1.3). Filtered, the filter set's queryset, compiled, its rows `d` too."""
    stage_ids = "unnest(%s::bigint[]) AS stage_ids(id)"
    ids = [stage.pk for stage in stages]
    if board_filtered(params):
        qs = board_deals(user, params, stages)
        inner = qs.filter(stage_id=RawSQL("stage_ids.id", ())).order_by("position", "id").values(*CARD_FIELDS)[:FIRST_CARDS]
        sql, inner_params = inner.query.sql_with_params()
        return "d.*", f"{stage_ids} CROSS JOIN LATERAL ({sql}) AS d", [ids, *inner_params]
    from clients.models import Client
    from crm.models import User

    visible, visible_params = gate.visible_deals_sql(user, stages, "d", one_of_them="stage_ids.id")
    first = f"SELECT d.* FROM {Deal._meta.db_table} d WHERE {visible} ORDER BY d.position, d.id LIMIT {FIRST_CARDS}"
    return (_cards_select(),
            f"{stage_ids} CROSS JOIN LATERAL ({first}) AS d JOIN {Client._meta.db_table} c ON c.id = d.client_id"
            f" LEFT JOIN {User._meta.db_table} u ON u.id = d.responsible_id", [ids, *visible_params])


def first_cards(user, params: QueryDict, stages: list[Stage]) -> list[tuple]:
    """The first FIRST_CARDS cards of each stage as card rows (cards.CARD_COLUMNS), in one query,
    by stage and position.

    On PostgreSQL a LATERAL join over the stage ids: each stage walks the (stage, position, id)
    index and stops after FIRST_CARDS rows, however big the column. Elsewhere (SQLite) a
    ROW_NUMBER() window over the line does the job.
    """
    if not stages:
        return []
    order = ("position", "id")
    if connection.vendor == "postgresql":
        select, source, source_params = _cards_statement(user, params, stages)
        # Each card's tags (jsonb, which Django reads as text: decoded only when a card is drawn)
        # and its client's unread messages in the same statement, as cards.with_extras reads them
        # elsewhere: two queries fewer per board.
        from messenger.models import Conversation  # deals does not import messenger at load

        conversation = Conversation._meta.db_table
        with raw.prepared_cursor() as cursor:
            cursor.execute(
                f"SELECT {select}, ({tag_chips_sql(Deal.tags.through, 'deal_id', 'd.id')}) AS card_tags,"
                f" (SELECT coalesce(sum(talk.unread), 0) FROM {conversation} talk"
                "  WHERE talk.client_id = d.client_id AND talk.unread > 0) AS card_unread"
                f" FROM {source}",
                source_params,
            )
            rows = card_rows([column.name for column in cursor.description], cursor.fetchall())
    else:
        qs = board_deals(user, params, stages)
        ranked = qs.annotate(
            rank=Window(RowNumber(), partition_by=[F("stage_id")], order_by=[F("position").asc(), F("id").asc()])
        ).filter(rank__lte=FIRST_CARDS)
        rows = with_extras(list(ranked.order_by("stage_id", *order).values(*CARD_FIELDS)))
    rows.sort(key=operator.itemgetter(AT["stage_id"], AT["position"], AT["id"]))
    return rows


def board_columns(user, stages: list[Stage], params: QueryDict, maker: CardMaker) -> Totals:
    """Every column of a line: totals from the counters (or one grouped query when filtered),
    the first cards of every column from one query, their tags from one more."""
    totals = board_totals(user, stages, params)
    columns = totals.columns
    rows: dict[int, list[tuple]] = {}
    for row in first_cards(user, params, [c.stage for c in columns if c.count]):
        rows.setdefault(row[AT["stage_id"]], []).append(row)
    for column in columns:
        shown = rows.get(column.stage.pk, [])
        column.cards, column.shown = maker.drawn(shown), len(shown)
        column.more_after = cursor_of(shown[-1]) if column.count > len(shown) else None
    return totals


@dataclass
class Totals:
    columns: list[Column]
    token: str  # changes whenever a deal this board shows is added, moved, edited or removed


def board_totals(user, stages: list[Stage], params: QueryDict) -> Totals:
    """The column headers (counts and sums) and the board's change token, in one query: from the
    counters the deals' triggers keep (a few rows per stage, whatever the number of deals), or,
    when filters narrow the board (or on SQLite), one grouped query over the matching deals."""
    totals: dict[int, dict[str, Any]]
    if board_counted(params) and stages and all(hasattr(s, "load") for s in stages):  # read with the frame
        totals = {s.pk: s.load for s in stages}
        token = f"v{sum(row['changes'] for row in totals.values())}"
    elif board_counted(params):
        loads = gate.scope_to_user(user, StageLoad.objects.filter(stage_id__in=[s.pk for s in stages]))
        counted = loads.order_by().values("stage_id").annotate(
            n=Sum("deals"), budget=Sum("budget"), sales=Sum("sales"), changes=Sum("changes"))
        totals = {row["stage_id"]: dict(row) for row in counted}
        token = f"v{sum(row['changes'] for row in totals.values())}"
    else:
        qs, _filterset = filtered_deals(user, params, stages=stages)
        aggregated = qs.order_by().values("stage_id").annotate(
            n=Count("id"), budget=Sum("budget"), sales=Sum("sales_sum"), last=Max("modified_at"))
        totals = {row["stage_id"]: dict(row) for row in aggregated}
        last = max((row["last"] for row in totals.values()), default=None)
        token = f"{last.isoformat() if last else '-'}|{sum(row['n'] for row in totals.values())}"
    columns = [
        Column(stage=s, count=totals.get(s.pk, {}).get("n", 0), budget=totals.get(s.pk, {}).get("budget") or Decimal(0),
               sales=totals.get(s.pk, {}).get("sales") or Decimal(0), cards=SafeString(""), shown=0, more_after=None)
        for s in stages
    ]
    return Totals(columns=columns, token=token)


def line_token(user, funnel_pk: int, line_pk) -> str | None:
    """The unfiltered board's change token for one line, from its counters, in one statement (the
    board's poll, every 4 s per open board: written by hand, the ORM's compiling cost more than the
    query); None when the user may not open the funnel or the line is not the funnel's."""
    if not gate.may_open_funnel(user, funnel_pk):
        return None
    scope, scope_params = gate.scope_sql(user, "counters.responsible_id")
    sql = (
        f"SELECT (SELECT coalesce(sum(counters.changes), 0) FROM {StageLoad._meta.db_table} counters"
        f" JOIN {Stage._meta.db_table} stage ON stage.id = counters.stage_id"
        f" WHERE stage.line_id = line.id AND {scope})"
        f" FROM {Line._meta.db_table} line WHERE line.id = %s AND line.funnel_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*scope_params, int(line_pk), int(funnel_pk)])
        row = cursor.fetchone()
    return None if row is None else f"v{row[0]}"


def column_more(user, stage: Stage, params: QueryDict, maker: CardMaker) -> tuple[SafeString, str | None]:
    """The next cards of one column after the cursor "<position>_<id>", drawn, and the cursor
    after them (None at the column's end)."""
    qs = board_deals(user, params, [stage])
    cursor = params.get("after", "")
    if cursor:
        position, _sep, pk = cursor.rpartition("_")
        try:
            position_value, pk_value = float(position), int(pk)
        except ValueError:
            raise Http404 from None
        qs = qs.filter(Q(position__gt=position_value) | Q(position=position_value, pk__gt=pk_value))
    read = list(qs.order_by("position", "id").values(*CARD_FIELDS)[: COLUMN_PAGE + 1])
    rows = with_extras(read[:COLUMN_PAGE])
    more = len(read) > COLUMN_PAGE
    return maker.drawn(rows), (cursor_of(rows[-1]) if more and rows else None)


def deals_table(user, params: QueryDict, *, funnel, deleted=False, stages=None) -> tuple[list, str | None, DealFilter]:
    """The Table view of the board: newest first, keyset paging by (created_at, id).
    Deleted deals (for those who may restore them) are listed with ?view=deleted."""
    stages = list(stages_of_funnel(funnel)) if stages is None else stages
    qs, filterset = filtered_deals(user, params, stages=stages, deleted=deleted)
    qs = qs.select_related("client", "responsible", "stage__line")
    after = params.get("after", "")
    stamp, _sep, pk = after.rpartition("_")
    if pk.isdigit():
        from django.utils.dateparse import parse_datetime

        moment = parse_datetime(stamp)
        if moment:
            qs = qs.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=int(pk)))
    rows = list(qs.order_by("-created_at", "-pk")[: TABLE_PAGE + 1])
    more = len(rows) > TABLE_PAGE
    rows = rows[:TABLE_PAGE]
    cursor = f"{rows[-1].created_at.isoformat()}_{rows[-1].pk}" if more and rows else None
    return rows, cursor, filterset


def client_deals(user, client) -> list:
    """A client's deals the user may see, newest first, for the expanded table row and the card."""
    if not gate.can(user, gate.VIEW_DEALS):
        return []
    qs = gate.visible_deals(user).filter(client=client).select_related("stage__line__funnel", "responsible")
    return list(qs.order_by("-created_at"))


def deal_sales(deal) -> list:
    return list(Sale.objects.filter(deal=deal).select_related("created_by")[:50])


def stage_deal_count(stage) -> int:
    return Deal.objects.filter(stage=stage).count()


def stage_for_user_or_404(user, pk) -> Stage:
    stage = Stage.objects.filter(pk=pk, line__funnel__in=gate.visible_funnels(user).values("pk")).select_related("line").first()
    if stage is None:
        raise Http404
    return stage


def lines_with_stages(funnel) -> list[Line]:
    return list(Line.objects.filter(funnel=funnel).prefetch_related("stages").order_by("position", "pk"))


def line_or_404(funnel, pk) -> Line:
    line = Line.objects.filter(funnel=funnel, pk=pk).first()
    if line is None:
        raise Http404
    return line


def stage_or_404(funnel, pk) -> Stage:
    stage = Stage.objects.filter(line__funnel=funnel, pk=pk).select_related("line").first()
    if stage is None:
        raise Http404
    return stage


def funnel_grants(funnel) -> dict:
    """Who was granted the funnel directly (users) and through roles (groups)."""
    from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

    return {
        "users": list(get_users_with_perms(funnel, only_with_perms_in=["access_funnel"], with_group_users=False)),
        # Without attach_perms, a queryset of groups (guardian's annotation says Group | dict).
        "groups": list(cast("QuerySet[Group]", get_groups_with_perms(funnel))),
    }


def client_sales(user, client) -> list:
    """The client's sales in deals the user may see (the card's Sales tab), newest first."""
    if not gate.can(user, gate.VIEW_DEALS):
        return []
    visible = gate.visible_deals(user).filter(client=client).values("pk")
    return list(Sale.objects.filter(deal__in=visible).select_related("deal", "created_by")[:50])


def deals_export_rows(user, params: QueryDict, *, funnel, hidden=frozenset()) -> ExportRows:
    """The deals table to export; columns of fields the deal layout hides from the user left out.
    The rows are read through a server-side cursor when iterated."""
    from django.utils.translation import gettext as _

    counted, _filterset = filtered_deals(user, params, stages=list(stages_of_funnel(funnel)))
    qs = counted.select_related("client", "responsible", "stage__line")
    columns = [
        (None, _("ID"), lambda d: d.pk), (None, _("Name"), lambda d: d.name),
        (None, _("Client"), lambda d: d.client.name), ("line", _("Line"), lambda d: str(d.stage.line)),
        ("stage", _("Stage"), lambda d: str(d.stage)), ("budget", _("Budget"), lambda d: d.budget),
        ("deal_responsible", _("Responsible"), lambda d: str(d.responsible or "")),
        ("channel", _("Channel"), lambda d: label("channel", d.channel)),
        (None, _("Sales count"), lambda d: d.sales_count), (None, _("Sales sum"), lambda d: d.sales_sum),
        (None, _("Last sale date"), lambda d: d.last_sale_at), (None, _("Created"), lambda d: d.created_at),
    ]
    shown = [(title, value) for key, title, value in columns if key not in hidden]

    def rows():
        with whole_result():
            for deal in qs.order_by("-created_at", "-pk").iterator(chunk_size=2000):
                yield [value(deal) for _title, value in shown]

    return ExportRows(header=[title for title, _value in shown], rows=rows(), counted=counted)


def deals_held(stages: QuerySet) -> int:
    """How many deals the stages hold, deleted ones too (they block deleting a stage, line or
    funnel as well), in one query: what a delete confirmation says."""
    return stages.aggregate(deals=Count("deals"))["deals"]


def any_line_distributes() -> bool:
    """Whether the quick deal offers "give it to the next manager on shift" (issue 14)."""
    return Line.objects.exclude(distribution=Line.Distribution.OFF).exists()
