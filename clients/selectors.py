"""Reads for the clients section. Every queryset starts from the permission gate."""

import functools
import hashlib
import json
import operator
from collections import defaultdict, namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import BooleanField, DateTimeField, Exists, ExpressionWrapper, F, JSONField, OuterRef, Q, QuerySet, StringAgg, Value
from django.db.models.expressions import RawSQL
from django.http import QueryDict
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from crm import fragments, raw
from crm import permissions as gate
from crm.drawn import Drawn, reader
from crm.exports import ExportRows, whole_result
from crm.formatting import Formatter
from crm.http import PAGING_PARAMS, url_maker
from crm.models import TableSettings

from . import layout
from .columns import STEP_READS, Column, all_columns, chosen_columns, step_cell
from .filters import ClientFilter, is_selective_phone_search, search_box_q
from .models import Client, CustomField, SavedFilter, Tag

CLIENTS_TABLE = "clients"
VIEWS = ("all", "mine", "no_deals", "no_tasks", "overdue", "deleted")


def custom_fields_active(entity: str = CustomField.Entity.CLIENT) -> list[CustomField]:
    return list(CustomField.objects.filter(is_active=True, entity=entity))


_UNREAD = object()


def table_columns_for(user, custom_fields, hidden=None, *, saved=_UNREAD) -> tuple[list[Column], dict[str, Column]]:
    """The columns the user shows (their saved choice, else the defaults) and those they may
    choose from; `saved`: their saved choice (None: never saved) when already read (table_frame),
    else read here."""
    hidden = gate.hidden_fields(user) if hidden is None else hidden
    available = {key: column for key, column in all_columns(custom_fields).items() if key not in hidden}
    if saved is _UNREAD:
        saved = TableSettings.objects.filter(user=user, table=CLIENTS_TABLE).values_list("columns", flat=True).first()
    return chosen_columns(saved, available), available


def table_frame(user) -> tuple[list[CustomField], list | None]:
    """What every clients table page starts from: the active custom fields of clients and the
    user's saved columns (None: never saved). On PostgreSQL two hand-written statements, prepared
    and sent in one round trip (raw.prepared_batch; their two querysets' compiling cost the page
    more than the queries); elsewhere
    custom_fields_active and the settings' query."""
    if connection.vendor != "postgresql":
        saved = TableSettings.objects.filter(user=user, table=CLIENTS_TABLE).values_list("columns", flat=True).first()
        return custom_fields_active(), saved
    hidden = gate.hidden_keys_wanted(user)  # a manager's hidden fields: a third statement
    statements: list[tuple[str, list]] = [
        (f"SELECT {raw.select_list(CustomField)} FROM {CustomField._meta.db_table} t"  # in CustomField's own order
         " WHERE t.is_active AND t.entity = %s ORDER BY t.position, t.id", [CustomField.Entity.CLIENT]),
        (f"SELECT columns FROM {TableSettings._meta.db_table} WHERE user_id = %s AND \"table\" = %s LIMIT 1",
         [user.pk, CLIENTS_TABLE]),
    ]
    if hidden:
        statements.append((layout.hidden_keys_sql(), []))
    rows, settings_rows, *hidden_rows = raw.prepared_batch(statements)  # prepared, one round trip
    settings_row = settings_rows[0] if settings_rows else None
    if hidden:
        gate.keep_hidden_keys(user, layout.hidden_keys(hidden_rows[0]))
    saved = raw.value(TableSettings, "columns", settings_row[0]) if settings_row else None
    return raw.instances(CustomField, rows), saved


def saved_filters_of(user) -> QuerySet:
    return SavedFilter.objects.filter(user=user)


TABLE_PARAMS = ("view", *PAGING_PARAMS)  # the table's own: they choose rows without a filter set


def table_filtered(params: QueryDict) -> bool:
    """Whether a filter (or the search box) narrows the table: a parameter besides its own has a value."""
    return any(value for key, values in params.lists() if key not in TABLE_PARAMS for value in values)


def searched_only(params: QueryDict, q: str) -> bool:
    """Whether the search box alone narrows the table (besides its own view and paging): then
    no filter set is needed. A NUL character goes to the filter set, whose form refuses it."""
    return bool(q.strip()) and "\x00" not in q and all(
        key in TABLE_PARAMS or (key == "q" and len(values) == 1) or not any(values) for key, values in params.lists())


@dataclass(frozen=True)
class TableSearch:
    """What the search box asks of the table: its condition, and the clients it narrows."""

    q: str
    phone_hidden: bool  # then digits search names only: no phone is revealed by a match
    unsearched: QuerySet  # the table's clients with every filter but the search

    def condition(self, *, indexed: bool = True) -> Q:
        return search_box_q(self.q, phone_hidden=self.phone_hidden, indexed=indexed)


def filtered_clients(user, params: QueryDict, custom_fields) -> tuple[QuerySet, ClientFilter]:
    """The clients matching the table's view (all / mine / deleted) and filters, as the user may see them."""
    qs = viewed_clients(user, params)
    filterset = ClientFilter(params, queryset=qs, custom_fields=custom_fields, hidden=gate.hidden_fields(user))
    if not filterset.is_valid():
        return qs.none(), filterset
    return filterset.qs, filterset


def viewed_clients(user, params: QueryDict) -> QuerySet:
    """The clients of the table's view (all / mine / deleted / no deals / no tasks / overdue) the user may see."""
    view = params.get("view", "all")
    qs = gate.visible_clients(user, deleted=(view == "deleted"))
    if view == "mine":
        qs = qs.filter(responsible=user)
    elif view == "no_deals":
        from deals.models import Deal

        qs = qs.filter(~Exists(Deal.objects.filter(client_id=OuterRef("pk"), deleted_at__isnull=True)))
    elif view == "no_tasks":  # seed 002: clients nobody has made a task for yet
        from tasks.models import Task

        qs = qs.filter(~Exists(Task.objects.filter(client_id=OuterRef("pk"))))
    elif view == "overdue":  # seed 002: a task's deadline has passed (and it is still open)
        from django.utils import timezone

        from tasks.models import Task

        qs = qs.filter(Exists(Task.objects.filter(client_id=OuterRef("pk"), status="open", deadline__lt=timezone.now())))
    return qs


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    """Parse a keyset cursor "<modified_at ISO>_<pk>"; anything malformed means the first page."""
    if not value or "_" not in value:
        return None
    stamp, _sep, pk = value.rpartition("_")
    moment = parse_datetime(stamp)
    if moment is None or not pk.isdigit():
        return None
    return moment, int(pk)


def cursor_of(row) -> str:
    """The keyset cursor of a row (a client, or its values as a named tuple)."""
    return f"{row.modified_at.isoformat()}_{row.id}"


class TagChip(TypedDict):
    name: str
    color: str


class TableRow(TypedDict):
    """One row of the clients table with every value ready to print. A dict, so the template's
    lookups succeed at the first try."""

    pk: int
    name: str
    url: str  # the card
    deals_url: str  # the deals row the "+" button expands under this one
    select_label: str  # aria-label of the row's checkbox
    deals_label: str  # aria-label of the "+" button
    cells: list[tuple[str, object]]  # (column key, display value) in the user's order


@dataclass
class TablePage:
    found: list  # the page's clients as read: named tuples of _row_fields (and `row_tags`)
    columns: list[Column]
    total: int | None  # None: more than one page; the count arrives in its own request
    total_capped: bool
    next_cursor: str | None = None
    prev_cursor: str | None = None
    filterset: ClientFilter | None = None
    return_to: str = ""  # the page's own address, where a row's deals send the user back

    @functools.cached_property
    def rows(self) -> list[TableRow]:
        """The rows with every value ready to print (made only when drawn, or when asked)."""
        return _table_rows(self.found, self.columns, return_to=self.return_to)

    def drawn(self, *, selectable: bool, with_deals: bool) -> SafeString:
        """The rows drawn (fragments/clients/rows.html), kept (crm.drawn) by every value they show
        and how they read: the clients as read, the columns, the page's address and the reading.
        The Step column's labels are the lead steps' (which an admin renames), read with the rows:
        a page showing it is drawn every time; so is one showing the Tags column whose rows do not
        bring their tags (tags_of reads them apart: elsewhere than PostgreSQL), and one whose rows
        hold a value with no hash (a custom field's JSON, the tags the ORM's pages decode)."""
        def draw() -> str:
            return fragments.render("clients/rows.html", {"rows": self.rows, "selectable": selectable, "with_deals": with_deals})

        if not self.found:
            return SafeString("")
        keys = tuple(col.key for col in self.columns)
        if "step" in keys or ("tags" in keys and not hasattr(self.found[0], "row_tags")):
            return SafeString(draw())
        key = (reader(), keys, self.return_to, selectable, with_deals, tuple(self.found))
        try:
            hash(key)
        except TypeError:
            return SafeString(draw())
        return SafeString(DRAWN_ROWS.get(key, draw))


# Pages of rows drawn, by the rows they show and how they read (crm.drawn). A page is ~25 kB and its
# key about as much: 500 pages are at most ~25 MB of a web worker.
DRAWN_ROWS = Drawn(size=500)


PEOPLE = ("responsible", "created_by", "modified_by")


def person_name(first: str | None, last: str | None, username: str | None) -> str:
    """A user as User.__str__ shows one (full name, else username) from values joined in the
    row's query; "" for nobody."""
    if username is None:
        return ""
    return f"{first} {last}".strip() or username


def tag_chips(through, owner: str, ids: list[int]) -> dict[int, list[TagChip]]:
    """The tags of many records (clients or deals) from their tags' through model, in one query,
    each record's in name order."""
    if not ids:
        return {}
    links = (
        through.objects.filter(**{f"{owner}__in": ids})
        .order_by("tag__name").values_list(owner, "tag__name", "tag__color")
    )
    chips: dict[int, list[TagChip]] = defaultdict(list)
    for record_id, name, color in links:
        chips[record_id].append(TagChip(name=name, color=color))
    return chips


def tag_chips_sql(through, owner: str, outer: str) -> str:
    """tag_chips in a statement of one's own (PostgreSQL): the tags of the record whose id is the
    SQL expression `outer`, as jsonb [{name, color}] in name order (jsonb: a DISTINCT can compare
    it; Django reads jsonb as text, so a raw cursor casts it to json, which psycopg decodes), NULL
    for none: most records have no tags, and a NULL costs no JSON decoding (read it `or []`)."""
    return ("SELECT jsonb_agg(jsonb_build_object('name', t.name, 'color', t.color) ORDER BY t.name)"
            f" FROM {through._meta.db_table} link JOIN {Tag._meta.db_table} t ON t.id = link.tag_id"
            f" WHERE link.{owner} = {outer}")


def tags_of(client_ids: list[int]) -> dict[int, list[TagChip]]:
    """The tags of many clients in one query, each client's in name order."""
    return tag_chips(Client.tags.through, "client_id", client_ids)


def with_row_tags(columns: list[Column]) -> RawSQL | None:
    """On PostgreSQL, when the Tags column shows, each row brings its tags (`row_tags`, in name
    order) in the page's own statement: no second query. Elsewhere _table_rows asks tags_of."""
    if connection.vendor != "postgresql" or not any(col.key == "tags" for col in columns):
        return None
    return RawSQL(tag_chips_sql(Client.tags.through, "client_id", f"{Client._meta.db_table}.id"), (), output_field=JSONField())


def _row_fields(columns: list[Column]) -> list[str]:
    """What the page's query selects: only what its columns show, the people's names joined in."""
    fields = ["id", "name", "modified_at"]
    for col in columns:
        if col.key in PEOPLE:
            fields += [f"{col.key}__first_name", f"{col.key}__last_name", f"{col.key}__username"]
        elif col.key == "step":
            fields += STEP_READS
        elif col.key != "tags":
            fields.append(col.field)
    return list(dict.fromkeys(fields))


def _cell_values(columns: list[Column], tags: dict[int, list[TagChip]]) -> list[Callable]:
    """One function per column from a selected row to the cell's display value."""
    values: list[Callable] = []
    fmt = Formatter()
    for col in columns:
        if col.key in PEOPLE:
            parts = operator.attrgetter(f"{col.key}__first_name", f"{col.key}__last_name", f"{col.key}__username")
            values.append(lambda row, parts=parts: person_name(*parts(row)))
        elif col.key == "tags":
            values.append(lambda row: tags.get(row.id, []))
        elif col.key == "step":
            values.append(step_cell())
        else:
            values.append(lambda row, value=col.value: value(row, fmt))
    return values


def clients_table(user, params: QueryDict, *, return_to: str = "") -> TablePage:
    """One page of the clients table: newest modification first, keyset-paginated, capped count.

    The rows are plain values (one `values_list` row per client with the people joined in, the
    tags from one query) and each cell is formatted here once; URLs come from prefixes reversed
    once per page, the aria labels are translated once per page. `return_to` is the page's own
    address, where the deals row sends the user back."""
    custom_fields, saved = table_frame(user)
    columns, _available = table_columns_for(user, custom_fields, saved=saved)
    # No filter set is built when nothing narrows the table (most pages: it cost ~1.5 ms), nor
    # for the search box alone (the live search's requests, as the user types).
    filterset = None
    q = params.get("q", "")
    search: TableSearch | None = None
    size = settings.CLIENTS_PAGE_SIZE
    after, before = _cursor(params.get("after")), _cursor(params.get("before"))
    if searched_only(params, q):
        unsearched = viewed_clients(user, params)
        search = TableSearch(q, phone_hidden="phone" in gate.hidden_fields(user), unsearched=unsearched)
        qs = unsearched.filter(search.condition())
    elif table_filtered(params):
        qs, filterset = filtered_clients(user, params, custom_fields)
        if q.strip() and filterset.is_valid():
            search = TableSearch(q, phone_hidden=filterset.phone_hidden, unsearched=filterset.qs_without_search())
    elif params.get("view", "all") in HAND_WRITTEN_VIEWS and connection.vendor == "postgresql":
        found, has_more_after, has_more_before = hand_written_page(
            user, params.get("view", "all"), _row_fields(columns), columns, after=after, before=before, size=size)
        return _table_page(found, columns, return_to=return_to, after=after, before=before,
                           has_more_after=has_more_after, has_more_before=has_more_before, filterset=None)
    else:
        qs = viewed_clients(user, params)
    fields = _row_fields(columns)
    if tagged := with_row_tags(columns):
        qs, fields = qs.annotate(row_tags=tagged), [*fields, "row_tags"]
    page_qs = qs.values_list(*fields, named=True)

    # Newest first. For a selective phone search, sort on an expression equal to modified_at:
    # PostgreSQL then finds the few matches by the trigram index instead of walking the
    # recency index through the whole table looking for them.
    recency: F | ExpressionWrapper = F("modified_at")
    if is_selective_phone_search(params.get("q", "")):
        recency = ExpressionWrapper(F("modified_at") + timedelta(0), output_field=DateTimeField())
    if before:
        moment, pk = before
        found = list(
            page_qs.filter(Q(modified_at__gt=moment) | Q(modified_at=moment, pk__gt=pk))
            .order_by(recency.asc(), "pk")[: size + 1]
        )
        has_more_before = len(found) > size
        found = found[:size][::-1]
        has_more_after = True
    else:
        older = Q()
        if after:
            moment, pk = after
            older = Q(modified_at__lt=moment) | Q(modified_at=moment, pk__lt=pk)
        page_qs = page_qs.filter(older)
        if search is not None and not is_selective_phone_search(q):
            scope = gate.visible_clients(user, deleted=(params.get("view") == "deleted")).filter(older)
            walked = search.unsearched.filter(older, search.condition(indexed=False))
            if tagged:
                walked = walked.annotate(row_tags=tagged)
            found = search_newest_first(page_qs, walked=walked.values_list(*fields, named=True), scope=scope, limit=size + 1)
        else:
            found = list(page_qs.order_by(recency.desc(), "-pk")[: size + 1])
        has_more_after = len(found) > size
        found = found[:size]
        has_more_before = after is not None

    return _table_page(found, columns, return_to=return_to, after=after, before=before,
                       has_more_after=has_more_after, has_more_before=has_more_before, filterset=filterset)


def _table_page(found: list, columns: list[Column], *, return_to: str, after, before, has_more_after: bool,
                has_more_before: bool, filterset: ClientFilter | None) -> TablePage:
    first_page = not after and not before
    if first_page and not has_more_after:
        total = len(found)  # the whole result is on this page
    else:
        total = None  # deferred: clients_count() answers the count partial

    return TablePage(
        found=found,
        columns=columns,
        return_to=return_to,
        total=total,
        total_capped=False,
        next_cursor=cursor_of(found[-1]) if found and has_more_after else None,
        prev_cursor=cursor_of(found[0]) if found and has_more_before else None,
        filterset=filterset,
    )


# The table's views whose page is one hand-written statement (hand_written_page); the others
# (deleted, no deals, no tasks, overdue), filters and searches go through the ORM.
HAND_WRITTEN_VIEWS = ("all", "mine")


@functools.cache
def _row_class(names: tuple[str, ...]) -> Any:
    """A named tuple of these field names, as `values_list(*names, named=True)` makes its rows."""
    return namedtuple("Row", names)


def _page_select(fields: list[str], tagged: bool) -> tuple[str, str]:
    """(select list, joins) of the page's `fields` over the clients `c`, the people each joined
    once as `p_<relation>`, named as `values_list` names them ("responsible__first_name"); JSON
    columns cast to json, which psycopg decodes (Django reads jsonb as text)."""
    quote = connection.ops.quote_name
    users = get_user_model()
    parts, joins = [], {}
    for name in fields:
        relation, _sep, field_name = name.rpartition("__")
        if relation:
            kind = "LEFT JOIN" if Client._meta.get_field(relation).null else "JOIN"
            joins[relation] = f" {kind} {users._meta.db_table} p_{relation} ON p_{relation}.id = c.{raw.column(Client, relation)}"
            parts.append(f"p_{relation}.{raw.column(users, field_name)} AS {quote(name)}")
            continue
        cast = "::json" if isinstance(Client._meta.get_field(field_name), JSONField) else ""
        parts.append(f"c.{raw.column(Client, field_name)}{cast} AS {quote(name)}")
    if tagged:
        parts.append(f"({tag_chips_sql(Client.tags.through, 'client_id', 'c.id')}) AS row_tags")  # JSON text: a key (TablePage.drawn)
    return ", ".join(parts), "".join(joins.values())


def hand_written_page(user, view: str, fields: list[str], columns: list[Column], *, after, before,
                      size: int) -> tuple[list, bool, bool]:
    """(rows, more after, more before) of an unfiltered table page of the view "all" or "mine"
    (most pages): one statement written by hand, its visibility the gate's (visible_clients_sql),
    its rows the named tuples `values_list(named=True)` would give. Building, compiling and
    converting the same page through the ORM cost it ~0.7 ms of its ~5.5. Newest first by
    (modified_at, id), keyset-paginated as the ORM's path is."""
    tagged = any(col.key == "tags" for col in columns)
    select, joins = _page_select(fields, tagged)
    visible, params = gate.visible_clients_sql(user, "c")
    where = [visible]
    if view == "mine":
        where.append("c.responsible_id = %s")
        params = [*params, user.pk]
    keyset = before or after
    if keyset:
        where.append(f"(c.modified_at, c.id) {'>' if before else '<'} (%s, %s)")
        params = [*params, *keyset]
    order = "ASC" if before else "DESC"
    sql = (f"SELECT {select} FROM {Client._meta.db_table} c{joins} WHERE {' AND '.join(where)}"
           f" ORDER BY c.modified_at {order}, c.id {order} LIMIT {size + 1}")
    with raw.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row_class = _row_class(tuple([*fields, "row_tags"] if tagged else fields))
        found = [row_class._make(row) for row in cursor.fetchall()]
    if before:
        return found[:size][::-1], True, len(found) > size
    return found[:size], len(found) > size, after is not None


# A search walks the newest clients, then looks through spans of time before them by the trigram
# index, then further back (see search_newest_first).
NEWEST_WALKED = 2000
SEARCH_SPANS = (timedelta(days=7),)


# The planner's cost under which a search sorts all its matches (one trigram scan) instead of the
# windows: at 1,000,000 clients a rare name costs 150-1,700 (15-40 ms sorted whole, 30-65 ms in
# windows), a common one 12,000-75,000 as a manager or an admin (35-1,100 ms sorted whole).
RARE_SEARCH_COST = 5_000


def planned_cost(qs: QuerySet) -> float:
    """The planner's total cost of a queryset (EXPLAIN without running it: one round trip)."""
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Total Cost"]


def search_newest_first(matches: QuerySet, *, walked: QuerySet, scope: QuerySet, limit: int) -> list:
    """The first `limit` of a search's `matches`, newest modification first, fast also when the
    newest clients hold no match. For a fragment common in its statistics PostgreSQL walks the
    recency index until it has a page: after an import of 200,000 clients with other names it
    reads all of them first (0.2-0.6 s at 1,000,000 clients); sorting every match of a common
    fragment instead costs as much (its rows are all over the table).

    A rare search first: when the planner's cost of sorting every match is under RARE_SEARCH_COST
    (an EXPLAIN, not run), the matches are found by the trigram index and sorted, one scan.
    Otherwise one statement of consecutive windows of modified_at, newest first. PostgreSQL runs a UNION
    ALL's branches in order and the outer LIMIT stops it as soon as it has enough, so a branch not
    needed never runs:
      1. the NEWEST_WALKED newest clients of `scope` (one short index walk finds where they end),
         walked in order: `walked` is the same search in a form no index serves, so the planner
         cannot swap the walk of a few thousand rows for a trigram scan of every match;
      2. each span of SEARCH_SPANS before them, sorted on an expression equal to modified_at so
         that the recency index cannot be walked: the trigram index finds the matches, and a
         bitmap AND with the window's range of the recency index drops the clients that do not
         match, however many a bulk write left there;
      3. everything older, as the planner likes (a walk for common fragments, the trigram index for
         rare ones): a bulk write of the last week is behind it (an older one is walked through if
         the week before the newest clients holds less than a page of matches).
    The windows split the clients on modified_at alone, so their concatenation is in order. A rare
    fragment costs a trigram scan in branches 2 and 3 (about twice one query's, 5-20 ms at 1M).
    """
    order = ("-modified_at", "-pk")
    if not connection.features.supports_slicing_ordering_in_compound:  # SQLite: no trigram indexes either
        return list(matches.order_by(*order)[:limit])
    by_index = ExpressionWrapper(F("modified_at") + timedelta(0), output_field=DateTimeField())
    # A rare search (the planner expects sorting all its matches to be cheap) is one trigram scan,
    # its matches sorted: the windows below would scan them twice.
    whole = matches.order_by(by_index.desc(), "-pk")[:limit]
    # planned without the page's columns, joins and order: the same scan for half the planning
    if planned_cost(matches.values_list("pk").order_by()) <= RARE_SEARCH_COST:
        return list(whole)
    newest = scope.order_by(*order).values_list("modified_at", "pk")[NEWEST_WALKED:NEWEST_WALKED + 1]
    boundary = next(iter(newest), None)
    if boundary is None:  # few clients in scope: any plan is fast
        return list(matches.order_by(*order)[:limit])
    moment, _pk = boundary
    branches = [walked.filter(_recency_compare(">", boundary)).order_by(*order)[:limit]]
    before: Q | RawSQL = _recency_compare("<=", boundary)
    for span in SEARCH_SPANS:
        window = matches.filter(before, modified_at__gte=moment - span)
        branches.append(window.order_by(by_index.desc(), "-pk")[:limit])
        before = Q(modified_at__lt=moment - span)
    branches.append(matches.filter(before).order_by(*order)[:limit])
    rows = list(branches[0].union(*branches[1:], all=True)[:limit])
    return sorted(rows, key=lambda row: (row.modified_at, row.id), reverse=True)


def _recency_compare(op: str, boundary: tuple[datetime, int]) -> RawSQL:
    """(modified_at, id) compared with a keyset position as one row comparison: a range of the
    recency index, where a walk stops (two conditions joined by OR would only filter it)."""
    table = connection.ops.quote_name(Client._meta.db_table)
    return RawSQL(f'({table}."modified_at", {table}."id") {op} (%s, %s)', boundary, output_field=BooleanField())


def _table_rows(found: list, columns: list[Column], *, return_to: str) -> list[TableRow]:
    tags: dict[int, list[TagChip]] = {}
    if found and hasattr(found[0], "row_tags"):  # brought by the rows' own statement (with_row_tags)
        # JSON text from the hand-written page (hashable, for TablePage.drawn's key), decoded from the ORM's
        tags = {row.id: (json.loads(row.row_tags) if isinstance(row.row_tags, str) else row.row_tags) or [] for row in found}
    elif any(col.key == "tags" for col in columns):
        tags = tags_of([row.id for row in found])
    keyed_values = [(col.key, value) for col, value in zip(columns, _cell_values(columns, tags), strict=True)]
    card_url, deals_url = url_maker("clients:detail"), url_maker("deals:client-row")
    expand = f"?colspan={len(columns)}&next={quote(return_to, safe='/')}"  # quoted as the urlencode filter does
    select, deals_of = gettext("Select %(name)s"), gettext("Deals of %(name)s")
    return [
        TableRow(
            pk=row.id, name=row.name, url=card_url(row.id), deals_url=deals_url(row.id) + expand,
            select_label=select % {"name": row.name}, deals_label=deals_of % {"name": row.name},
            cells=[(key, value(row)) for key, value in keyed_values],
        )
        for row in found
    ]


def clients_count(user, params: QueryDict) -> tuple[int, bool]:
    """How many clients match, counted up to the cap: (count, more_than_cap)."""
    qs, _filterset = filtered_clients(user, params, custom_fields_active())
    cap = settings.CLIENTS_COUNT_CAP
    total = qs.order_by()[: cap + 1].count()
    return min(total, cap), total > cap


@dataclass
class Selection:
    """The clients a mass action will touch, and how they were chosen."""

    queryset: QuerySet
    count: int
    digest: str  # fingerprint of the exact ids: the run step refuses if they changed
    scope: str  # "ids": the ticked rows; "filter": every client matching the table's filter
    ids: list[int]
    query: str  # the table's query string, for scope "filter"


def ids_digest(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:32]


def bulk_selection(user, data: QueryDict) -> Selection:
    """Ticked ids (scoped by the gate: unseen ids are dropped) or every client matching the filter."""
    if data.get("scope") == "filter":
        query = data.get("query", "")
        qs, _filterset = filtered_clients(user, QueryDict(query), custom_fields_active())
        qs = qs.filter(deleted_at__isnull=True)  # mass actions never touch deleted clients
        scope, ids = "filter", []
    else:
        query, scope = "", "ids"
        ids = sorted({int(i) for i in data.getlist("ids") if str(i).isdigit()})
        qs = gate.visible_clients(user).filter(pk__in=ids)
    matched = list(qs.order_by("pk").values_list("pk", flat=True))
    return Selection(
        queryset=qs, count=len(matched), digest=ids_digest(matched), scope=scope, ids=ids, query=query
    )


def custom_fields_all() -> QuerySet:
    return CustomField.objects.order_by("entity", "position", "pk")


def custom_field_or_404(pk) -> CustomField:
    return get_object_or_404(CustomField, pk=pk)


def client_as_queryset(client) -> QuerySet:
    """One client as a queryset, for the services that work on sets."""
    return type(client).objects.filter(pk=client.pk)


def custom_field_in_use(field: CustomField) -> bool:
    if field.entity == CustomField.Entity.DEAL:
        from deals.models import Deal

        return Deal.objects.filter(custom__has_key=field.key).exists()
    return Client.objects.filter(custom__has_key=field.key).exists()


def export_rows(user, params: QueryDict) -> ExportRows:
    """The filtered clients in the user's columns (hidden fields are never among them), newest
    modification first, read through a server-side cursor as plain tuples when iterated.

    Each row costs only what its columns show: no model instances; the names of responsible /
    created by / modified by from one query of the users; tags from a STRING_AGG over a join in
    the same query (a prefetch per chunk made tag objects for every client: a third of the time
    of a 100,000-row export)."""
    custom_fields = custom_fields_active()
    columns, _available = table_columns_for(user, custom_fields)
    counted, _filterset = filtered_clients(user, params, custom_fields)
    qs = counted
    extra: list[str] = []
    keys = {c.key for c in columns}
    if "tags" in keys:
        # filtered_clients filters on tags (as on every multi-valued relation) with EXISTS, never a
        # join: this join is the query's only one, so a client is one group holding all its tags.
        qs = qs.annotate(export_tags=_tag_names())
        extra.append("export_tags")
    people = [key for key in PEOPLE if key in keys]
    # Only what the columns show (a JSON column read for nothing is decoded for nothing).
    fields = list(dict.fromkeys(["id", *(f"{c.key}_id" if c.key in PEOPLE else c.field for c in columns if c.key != "tags"),
                                 *(STEP_READS if "step" in keys else ())]))

    def rows():
        fmt = Formatter()  # in the reader's language and time zone (the worker's as_owner)
        value_of: dict[str, Callable] = {c.key: (lambda row, value=c.value: value(row, fmt)) for c in columns}
        if "tags" in keys:
            value_of["tags"] = lambda c: c.export_tags or ""
        names = _user_names() if people else {}
        for key in people:
            value_of[key] = functools.partial(_user_name, names, f"{key}_id")
        if "step" in keys:
            value_of["step"] = step_cell()
        values = [value_of[c.key] for c in columns]
        with whole_result():
            for client in qs.order_by("-modified_at", "-pk").values_list(*fields, *extra, named=True).iterator(chunk_size=2000):
                yield [_plain(value(client)) for value in values]

    return ExportRows(header=[str(c.label) for c in columns], rows=rows(), counted=counted)


def _tag_names():
    if connection.features.supports_aggregate_order_by_clause:
        return StringAgg("tags__name", Value(", "), order_by="tags__name")
    return StringAgg("tags__name", Value(", "))  # SQLite before 3.44: in the order it finds them


def _user_names() -> dict[int, str]:
    from crm.models import User

    return {u.pk: str(u) for u in User.objects.only("first_name", "last_name", "username")}


def _user_name(names: dict[int, str], attname: str, client) -> str:
    return names.get(getattr(client, attname), "")


def _plain(value):
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value if isinstance(value, (int, float)) else ("" if value is None else str(value))
