"""Hand-written SQL for the hottest statements: model instances read as the ORM reads them (for
the few statements a page sends in one round trip: deals.selectors.board_frame,
clients.selectors.table_frame), and a cursor whose statements PostgreSQL keeps prepared."""

import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from django.db import connection, models
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def column(model, field_name: str) -> str:
    """The quoted column of a model's field (a foreign key's "<name>_id"), for hand-written SQL."""
    return connection.ops.quote_name(str(model._meta.get_field(field_name).column))


def select_list(model: type[models.Model], alias: str = "t") -> str:
    """The model's columns, in its fields' order, for a SELECT over `alias`."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(str(f.column))}" for f in model._meta.concrete_fields)


def instances[M: models.Model](model: type[M], rows: Iterable[Sequence]) -> list[M]:
    """Instances from rows of select_list(model): each field's own conversion applied, as the ORM
    applies it (a JSON column, which Django reads as text, decoded)."""
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    converted = [(i, f) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    made = []
    for row in rows:
        values = list(row[: len(fields)])
        for i, field in converted:
            values[i] = field.from_db_value(values[i], None, connection)
        made.append(model.from_db(connection.alias, names, values))
    return made


def value(model: type[models.Model], field_name: str, raw):
    """One column's value as the ORM reads it."""
    field = model._meta.get_field(field_name)
    return field.from_db_value(raw, None, connection) if hasattr(field, "from_db_value") else raw


class _LoggedPrepared(CursorDebugWrapper):
    """Logs a prepared statement as Django logs every other one: its text with the parameters
    merged (what the tests' query capture and the benches' EXPLAIN read), not the $1, $2 that
    the server-binding cursor sent."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


def _ready() -> None:
    """What Django's own cursor() checks before a statement, for the psycopg cursors made here: the
    connection's health (CONN_HEALTH_CHECKS: a connection the server dropped is replaced, once per
    request), the connection itself, the thread, and no statement inside a broken atomic block."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()


def prepared_cursor() -> CursorWrapper:
    """A cursor for the few statements every page or poll sends (the signed-in user, the board's
    cards, the clients table's page): on PostgreSQL, each is prepared on the server the first
    time a connection runs it and only bound and executed after that. Parsing and planning the
    board's cards statement cost it about as long as running it (0.45 ms planning, ~0.4 ms
    parsing its text, against ~1 ms execution). A connection lives for many requests in
    production (CONN_MAX_AGE), so a statement is prepared once per web worker.

    Its parameters are bound by the server, so each must have a type PostgreSQL can tell from
    where it stands (a column compared with it, or a cast: `%s::bigint[]`), and the statement is
    one statement. Every other statement keeps Django's client-side binding (a multi-statement
    round trip, the ORM). Elsewhere (SQLite) a plain cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    _ready()
    # prepare_threshold 0 (DATABASES OPTIONS, crm/settings/base.py): a server-binding cursor
    # prepares at its first execution; only this function makes one.
    cursor = psycopg.Cursor(connection.connection)
    return (_LoggedPrepared if connection.queries_logged else CursorWrapper)(cursor, connection)


def prepared_batch(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """The rows of several statements sent in one round trip, each prepared on the server as
    prepared_cursor prepares one (psycopg's pipeline mode): for a page's frame, which reads a few
    small tables at once. Logged as one query of the statements with their parameters merged, as
    Django logs a multi-statement round trip. Elsewhere (SQLite) one statement after another."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            found = []
            for sql, params in statements:
                cursor.execute(sql, params)
                found.append(cursor.fetchall())
            return found
    _ready()
    raw_connection = connection.connection
    prepared = [psycopg.Cursor(raw_connection) for _ in statements]
    started = time.monotonic()
    try:
        with connection.wrap_database_errors, raw_connection.pipeline():
            for each, (sql, params) in zip(prepared, statements, strict=True):
                each.execute(sql, params)
        found = [each.fetchall() for each in prepared]
    finally:
        for each in prepared:
            each.close()
    if connection.queries_logged:
        ops: Any = connection.ops  # PostgreSQL's: compose_sql merges the parameters as the server saw them
        connection.queries_log.append({
            "sql": "; ".join(ops.compose_sql(sql, params) for sql, params in statements),
            "time": f"{time.monotonic() - started:.3f}",
        })
    return found
