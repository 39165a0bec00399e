"""Reads for the clients section. Every queryset starts from the permission gate."""

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, StringAgg, Value
from django.http import QueryDict
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime

from crm import permissions as gate
from crm.exports import ExportRows, whole_result
from crm.models import TableSettings

from .columns import Column, all_columns, chosen_columns
from .filters import ClientFilter, is_selective_phone_search
from .models import Client, CustomField, SavedFilter

CLIENTS_TABLE = "clients"
VIEWS = ("all", "mine", "no_deals", "no_tasks", "overdue", "deleted")


def custom_fields_active(entity: str = CustomField.Entity.CLIENT) -> list[CustomField]:
    return list(CustomField.objects.filter(is_active=True, entity=entity))


def table_columns_for(user, custom_fields, hidden=None) -> tuple[list[Column], dict[str, Column]]:
    hidden = gate.hidden_fields(user) if hidden is None else hidden
    available = {key: column for key, column in all_columns(custom_fields).items() if key not in hidden}
    saved = TableSettings.objects.filter(user=user, table=CLIENTS_TABLE).values_list("columns", flat=True).first()
    return chosen_columns(saved, available), available


def saved_filters_of(user) -> QuerySet:
    return SavedFilter.objects.filter(user=user)


def filtered_clients(user, params: QueryDict, custom_fields) -> tuple[QuerySet, ClientFilter]:
    """The clients matching the table's view (all / mine / deleted) and filters, as the user may see them."""
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
    filterset = ClientFilter(params, queryset=qs, custom_fields=custom_fields, hidden=gate.hidden_fields(user))
    if not filterset.is_valid():
        return qs.none(), filterset
    return filterset.qs, filterset


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    """Parse a keyset cursor "<modified_at ISO>_<pk>"; anything malformed means the first page."""
    if not value or "_" not in value:
        return None
    stamp, _sep, pk = value.rpartition("_")
    moment = parse_datetime(stamp)
    if moment is None or not pk.isdigit():
        return None
    return moment, int(pk)


def cursor_of(client) -> str:
    return f"{client.modified_at.isoformat()}_{client.pk}"


@dataclass
class TablePage:
    rows: list
    columns: list[Column]
    total: int | None  # None: more than one page; the count arrives in its own request
    total_capped: bool
    next_cursor: str | None = None
    prev_cursor: str | None = None
    filterset: ClientFilter | None = None


def clients_table(user, params: QueryDict) -> TablePage:
    """One page of the clients table: newest modification first, keyset-paginated, capped count."""
    custom_fields = custom_fields_active()
    columns, _available = table_columns_for(user, custom_fields)
    qs, filterset = filtered_clients(user, params, custom_fields)

    needs = {c.needs for c in columns if c.needs}
    related = [n for n in ("responsible", "created_by", "modified_by") if n in needs]
    page_qs = qs.select_related(*related) if related else qs
    if "tags" in needs:
        page_qs = page_qs.prefetch_related("tags")

    size = settings.CLIENTS_PAGE_SIZE
    after, before = _cursor(params.get("after")), _cursor(params.get("before"))
    # Newest first. For a selective phone search, sort on an expression equal to modified_at:
    # PostgreSQL then finds the few matches by the trigram index instead of walking the
    # recency index through the whole table looking for them.
    recency: F | ExpressionWrapper = F("modified_at")
    if is_selective_phone_search(params.get("q", "")):
        recency = ExpressionWrapper(F("modified_at") + timedelta(0), output_field=DateTimeField())
    if before:
        moment, pk = before
        rows = list(
            page_qs.filter(Q(modified_at__gt=moment) | Q(modified_at=moment, pk__gt=pk))
            .order_by(recency.asc(), "pk")[: size + 1]
        )
        has_more_before = len(rows) > size
        rows = rows[:size][::-1]
        has_more_after = True
    else:
        if after:
            moment, pk = after
            page_qs = page_qs.filter(Q(modified_at__lt=moment) | Q(modified_at=moment, pk__lt=pk))
        rows = list(page_qs.order_by(recency.desc(), "-pk")[: size + 1])
        has_more_after = len(rows) > size
        rows = rows[:size]
        has_more_before = after is not None

    first_page = not after and not before
    if first_page and not has_more_after:
        total = len(rows)  # the whole result is on this page
    else:
        total = None  # deferred: clients_count() answers the count partial

    for client in rows:
        client.cells = [(col, col.value(client)) for col in columns]
    return TablePage(
        rows=rows,
        columns=columns,
        total=total,
        total_capped=False,
        next_cursor=cursor_of(rows[-1]) if rows and has_more_after else None,
        prev_cursor=cursor_of(rows[0]) if rows and has_more_before else None,
        filterset=filterset,
    )


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
    value_of = {c.key: c.value for c in columns}
    qs = counted
    extra: list[str] = []
    if "tags" in value_of:
        # filtered_clients filters on tags (as on every multi-valued relation) with EXISTS, never a
        # join: this join is the query's only one, so a client is one group holding all its tags.
        qs = qs.annotate(export_tags=_tag_names())
        extra.append("export_tags")
        value_of["tags"] = lambda c: c.export_tags or ""
    people = [key for key in ("responsible", "created_by", "modified_by") if key in value_of]
    fields = [f.attname for f in Client._meta.concrete_fields]

    def rows():
        names = _user_names() if people else {}
        for key in people:
            value_of[key] = functools.partial(_user_name, names, f"{key}_id")
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
