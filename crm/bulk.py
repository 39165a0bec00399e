"""Many rows at once: PostgreSQL's COPY where it runs, bulk_create elsewhere (SQLite).

COPY returns no ids, so rows that others point to get theirs first from the table's sequence
(`reserve_ids`), in one statement, whatever the count. Rows can be given as model instances
(`copy_insert`) or, where a hundred thousand instances would cost seconds to build, as plain
tuples of attribute values (`copy_rows`).
"""

import json
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from django.db import connection, models
from django.utils import timezone

EMPTY_JSON: dict[type, str] = {list: "[]", dict: "{}"}  # most rows' JSON columns: no need to call json.dumps


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def instance_factory(model: type[models.Model]):
    """A maker of new, unsaved instances with every field at its default, without Model.__init__
    (which costs ~40 µs an instance: seconds for an import's hundred thousand rows). Mutable
    defaults (JSON lists and dicts) are fresh per instance."""
    from django.db.models.base import ModelState

    defaults = {f.attname: f.get_default() for f in model._meta.concrete_fields}
    mutable = [(name, type(value), value) for name, value in defaults.items() if isinstance(value, (list, dict))]

    def make(**values):
        obj = model.__new__(model)
        state = obj.__dict__
        state.update(defaults)
        for name, kind, value in mutable:
            state[name] = kind(value)  # a shallow copy, as copy.copy makes, without its dispatch
        state.update(values)
        obj._state = ModelState()
        return obj

    return make


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """`count` new primary keys from the model's sequence (PostgreSQL only)."""
    if not count:
        return []
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, column, count])
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model: type[models.Model], columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert tuples of attribute values (in `columns` order, attnames such as "client_id");
    JSON values are Python objects. COPY on PostgreSQL, bulk_create elsewhere."""
    if isinstance(rows, list) and not rows:
        return
    if not is_postgres():
        model._default_manager.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500)
        return
    fields = {f.attname: f for f in model._meta.concrete_fields}
    copy_rows_into(connection.ops.quote_name(model._meta.db_table), columns, fields, rows)


def copy_rows_into(table: str, columns: list[str], fields: dict, rows: Iterable) -> None:
    """COPY rows into a (quoted) table name; JSON values dumped as text."""
    as_json = [i for i, name in enumerate(columns) if isinstance(fields[name], models.JSONField)]
    names = ", ".join(connection.ops.quote_name(fields[name].column) for name in columns)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                if as_json:
                    row = list(row)
                    for i in as_json:
                        value = row[i]
                        row[i] = EMPTY_JSON.get(type(value), "") if not value else json.dumps(value, ensure_ascii=False)
                        if row[i] == "":  # a falsy scalar (0, "", False) is still JSON
                            row[i] = json.dumps(value)
                copy.write_row(row)


def copy_insert(model: type[models.Model], objs: list, *, with_ids: bool = False) -> None:
    """Insert model instances in one COPY (PostgreSQL) or bulk_create. With `with_ids`, the
    instances carry their primary keys already (see reserve_ids); else the database assigns
    them and the instances do not learn them. auto_now(_add) fields left empty get the time now."""
    if not objs:
        return
    if not is_postgres():
        model._default_manager.bulk_create(objs, batch_size=500)
        return
    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    now = timezone.now()
    stamped = [f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    for obj in objs:
        for name in stamped:
            if getattr(obj, name) is None:
                setattr(obj, name, now)
    columns = [f.attname for f in fields]
    values = attrgetter(*columns) if len(columns) > 1 else (lambda obj: (getattr(obj, columns[0]),))
    copy_rows(model, columns, map(values, objs))  # a tuple per instance, read in C


def _column(field: models.Field) -> str:
    """A concrete field's column: it always has one (the stubs allow None, for fields without)."""
    assert field.column is not None
    return field.column


def copy_update(model: type[models.Model], objs: list, fields: list[str]) -> None:
    """Write `fields` (attnames) of many instances: on PostgreSQL one COPY into a temporary table
    and one UPDATE … FROM it (a CASE per field over thousands of rows costs seconds); elsewhere an
    UPDATE per row."""
    if not objs:
        return
    if not is_postgres():
        for obj in objs:
            model._default_manager.filter(pk=obj.pk).update(**{name: getattr(obj, name) for name in fields})
        return
    meta = model._meta
    quote = connection.ops.quote_name
    by_name = {f.attname: f for f in meta.concrete_fields}
    columns = [meta.pk.attname, *fields]
    names = ", ".join(quote(_column(by_name[name])) for name in columns)
    temp = quote(f"copy_update_{meta.db_table}")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} AS SELECT {names} FROM {quote(meta.db_table)} WITH NO DATA")
        cursor.execute(f"TRUNCATE {temp}")
    copy_rows_into(temp, columns, by_name, ([getattr(obj, name) for name in columns] for obj in objs))
    assignments = ", ".join(f"{quote(_column(by_name[name]))} = t.{quote(_column(by_name[name]))}" for name in fields)
    pk = quote(_column(meta.pk))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(meta.db_table)} AS m SET {assignments} FROM {temp} AS t WHERE m.{pk} = t.{pk}")
