"""Model instances from hand-written SQL, read as the ORM reads them: for the few statements a
page sends in one round trip (deals.selectors.board_frame, clients.selectors.table_frame)."""

from collections.abc import Iterable, Sequence

from django.db import connection, models


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
