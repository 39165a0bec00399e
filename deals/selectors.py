"""Reads for funnels, the board and deals. Every queryset starts from the permission gate."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum, Window, prefetch_related_objects
from django.db.models.functions import RowNumber
from django.http import Http404, QueryDict

from clients.labels import label
from crm import permissions as gate
from crm.exports import ExportRows, whole_result

from .filters import DealFilter
from .models import Deal, Line, Sale, Stage

if TYPE_CHECKING:
    from django.contrib.auth.models import Group

COLUMN_PAGE = 30  # cards a column renders before "load more as it scrolls"
TABLE_PAGE = 50


def funnels_for(user) -> list:
    return list(gate.visible_funnels(user).order_by("position", "pk"))


def lines_of(funnel) -> list[Line]:
    return list(Line.objects.filter(funnel=funnel).order_by("position", "pk"))


def stages_of(line) -> list[Stage]:
    return list(Stage.objects.filter(line=line).order_by("position", "pk"))


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
    qs = gate.visible_deals(user, deleted=deleted)
    if stages is not None:
        qs = qs.filter(stage__in=[s.pk for s in stages])
    # A filter on a field the user may not see is dropped (asked only when one is used).
    layout_filtered = any(params.get(name) for name in DealFilter.LAYOUT_FIELDS)
    filterset = DealFilter(params, queryset=qs, hidden=gate.hidden_by_block(user) if layout_filtered else None)
    if not filterset.is_valid():
        return qs.none(), filterset
    return filterset.qs, filterset


@dataclass
class Column:
    stage: Stage
    count: int
    budget: Decimal
    sales: Decimal
    cards: list
    more: bool


def _card_qs(qs: QuerySet) -> QuerySet:
    return qs.select_related("client", "responsible").prefetch_related("tags")


def first_cards(qs: QuerySet, stages: list[Stage]) -> list:
    """The first COLUMN_PAGE cards of each stage, in one query.

    On PostgreSQL a UNION ALL of one small ordered LIMIT per stage: each part walks the
    (stage, position, id) index and stops after 30 rows, however big the column. Elsewhere
    (SQLite) a ROW_NUMBER() window over the line does the same job.
    """
    if not stages:
        return []
    order = ("position", "id")
    related = ("client", "responsible")
    if connection.features.supports_slicing_ordering_in_compound:
        parts = [qs.filter(stage_id=stage.pk).select_related(*related).order_by(*order)[:COLUMN_PAGE] for stage in stages]
        rows = list(parts[0].union(*parts[1:], all=True)) if len(parts) > 1 else list(parts[0])
    else:
        ranked = qs.annotate(
            rank=Window(RowNumber(), partition_by=[F("stage_id")], order_by=[F("position").asc(), F("id").asc()])
        ).filter(rank__lte=COLUMN_PAGE)
        rows = list(ranked.select_related(*related).order_by("stage_id", *order))
    rows.sort(key=lambda deal: (deal.stage_id, deal.position, deal.pk))
    prefetch_related_objects(rows, "tags")
    for deal in rows:
        deal.channel_label = label("channel", deal.channel)
        deal.country_label = label("country", deal.client.country)
    return rows


def board_columns(user, stages: list[Stage], params: QueryDict) -> Totals:
    """Every column of a line: totals from one grouped query, first cards from one windowed query."""
    totals = board_totals(user, stages, params)
    columns = totals.columns
    qs, _filterset = filtered_deals(user, params, stages=stages)
    cards: dict[int, list] = {}
    for deal in first_cards(qs, [c.stage for c in columns if c.count]):
        cards.setdefault(deal.stage_id, []).append(deal)
    for column in columns:
        column.cards = cards.get(column.stage.pk, [])
        column.more = column.count > len(column.cards)
    return totals


@dataclass
class Totals:
    columns: list[Column]
    token: str  # changes whenever a deal this board shows is added, moved, edited or removed


def board_totals(user, stages: list[Stage], params: QueryDict) -> Totals:
    """The column headers (counts and sums) and the board's change token: one grouped query."""
    qs, _filterset = filtered_deals(user, params, stages=stages)
    rows = qs.order_by().values("stage_id").annotate(
        n=Count("id"), budget=Sum("budget"), sales=Sum("sales_sum"), last=Max("modified_at")
    )
    totals = {row["stage_id"]: row for row in rows}
    last = max((row["last"] for row in totals.values()), default=None)
    token = f"{last.isoformat() if last else '-'}|{sum(row['n'] for row in totals.values())}"
    columns = [
        Column(stage=s, count=totals.get(s.pk, {}).get("n", 0), budget=totals.get(s.pk, {}).get("budget") or Decimal(0),
               sales=totals.get(s.pk, {}).get("sales") or Decimal(0), cards=[], more=False)
        for s in stages
    ]
    return Totals(columns=columns, token=token)


def column_more(user, stage: Stage, params: QueryDict) -> tuple[list, str | None]:
    """The next cards of one column after the cursor "<position>_<id>"."""
    qs, _filterset = filtered_deals(user, params, stages=[stage])
    cursor = params.get("after", "")
    if cursor:
        position, _sep, pk = cursor.rpartition("_")
        try:
            position_value, pk_value = float(position), int(pk)
        except ValueError:
            raise Http404 from None
        qs = qs.filter(Q(position__gt=position_value) | Q(position=position_value, pk__gt=pk_value))
    rows = list(_card_qs(qs).order_by("position", "id")[: COLUMN_PAGE + 1])
    more = len(rows) > COLUMN_PAGE
    rows = rows[:COLUMN_PAGE]
    for deal in rows:
        deal.channel_label = label("channel", deal.channel)
        deal.country_label = label("country", deal.client.country)
    return rows, (card_cursor(rows[-1]) if more and rows else None)


def card_cursor(deal) -> str:
    return f"{deal.position!r}_{deal.pk}"


def deal_card(user, pk):
    """One deal as the board shows it (after a refused move, the current state)."""
    return _card_qs(gate.visible_deals(user)).filter(pk=pk).first()


def deals_table(user, params: QueryDict, *, funnel, deleted=False) -> tuple[list, str | None, DealFilter]:
    """The Table view of the board: newest first, keyset paging by (created_at, id).
    Deleted deals (for those who may restore them) are listed with ?view=deleted."""
    qs, filterset = filtered_deals(user, params, stages=list(stages_of_funnel(funnel)), deleted=deleted)
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
