"""Card layouts (seed 001): which fields a card block shows and in what order. What the Manager
mode may see and write is the gate's to answer (crm/permissions.py: hidden_fields, locked_fields,
require_field_writes), from these rows."""

from django.db import connection
from django.utils.translation import gettext_lazy as _

from crm import permissions as gate

from .models import CARD_SYSTEM_FIELDS, CardField, CustomField

SYSTEM_LABELS = {
    "phone": _("Phone"), "extra_phones": _("Other phones"), "email": _("Email"), "extra_emails": _("Other e-mails"),
    "responsible": _("Responsible"),
    "company": _("Company"), "country": _("Country"), "city": _("City"), "address": _("Address"),
    "channel": _("Channel"), "source": _("Source"), "priority": _("Priority"), "lifecycle": _("Status"), "external_id": _("Player ID"),
    "registration_date": _("Registration date"), "last_sale_at": _("Last sale date"),
    "funnel": _("Funnel"), "line": _("Line"), "stage": _("Stage"), "budget": _("Budget"),
    "deal_responsible": _("Responsible"),
}
# System fields that are shown but never written through the card's form.
READ_ONLY_SYSTEM = {"last_sale_at", "funnel", "line", "stage", "extra_emails"}  # other e-mails: kept by merges


def ensure_default_layout(apps) -> None:
    """Every system field once per block, custom fields after them. Idempotent (migration and
    post_migrate after a flush)."""
    Card = apps.get_model("clients", "CardField")
    Custom = apps.get_model("clients", "CustomField")
    for block, keys in CARD_SYSTEM_FIELDS.items():
        for position, key in enumerate(keys, 1):
            Card.objects.get_or_create(block=block, system_key=key, defaults={"position": position})
        entity = "client" if block == "contact" else "deal"
        for offset, field in enumerate(Custom.objects.filter(entity=entity).order_by("position", "pk"), 100):
            Card.objects.get_or_create(block=block, custom_field=field, defaults={"position": offset})


def label_of(row: CardField) -> str:
    if row.label:
        return row.label
    if row.custom_field is not None:
        return row.custom_field.label
    return str(SYSTEM_LABELS.get(row.system_key, row.system_key))


def all_rows() -> list[CardField]:
    """Both blocks' layouts in one query (the card shows both)."""
    rows = CardField.objects.select_related("custom_field")
    return [r for r in rows if r.custom_field is None or r.custom_field.is_active]


def hidden_keys_sql() -> str:
    """The keys of the fields each block hides from Manager mode (the eye closed, or not visible to
    managers; a deactivated custom field's row hides nothing) as one hand-written statement whose
    rows are (block, system key, custom field id): a page's frame reads it in its own round trip
    (clients.selectors.table_frame, deals.selectors.board_frame); hidden_keys turns the rows
    into keys."""
    card, custom = CardField._meta.db_table, CustomField._meta.db_table
    return (f"SELECT f.block, f.system_key, f.custom_field_id FROM {card} f LEFT JOIN {custom} cf ON cf.id = f.custom_field_id"
            " WHERE (f.hidden OR NOT f.manager_visible) AND (f.custom_field_id IS NULL OR cf.is_active)")


def hidden_keys(rows=None) -> dict[str, set[str]]:
    """{block: keys hidden from Manager mode}, from the rows of hidden_keys_sql (read here when not
    given): only those rows' keys, no CardField instances (a table or board page asks this of
    every manager; reading both blocks' whole layouts cost it half a millisecond)."""
    if rows is None:
        with connection.cursor() as cursor:
            cursor.execute(hidden_keys_sql())
            rows = cursor.fetchall()
    keys: dict[str, set[str]] = {block: set() for block in CARD_SYSTEM_FIELDS}
    for block, system_key, custom_field_id in rows:
        keys.setdefault(block, set()).add(CustomField.key_of(custom_field_id) if custom_field_id else system_key)
    return keys


def block_rows(block: str) -> list[CardField]:
    rows = CardField.objects.filter(block=block).select_related("custom_field")
    return [r for r in rows if r.custom_field is None or r.custom_field.is_active]


def visible_rows(user, block: str, rows: list[CardField] | None = None) -> list[CardField]:
    """The fields a user sees in a block, in the admin's order, each with .title and .editable."""
    admin = gate.sees_every_field(user)
    shown = []
    for row in rows if rows is not None else block_rows(block):
        if row.hidden or (not admin and not row.manager_visible):
            continue
        row.title = label_of(row)
        row.editable = row.system_key not in READ_ONLY_SYSTEM and (admin or row.manager_editable)
        row.locked = not admin and not row.manager_editable  # read-only by the layout (shown with a lock)
        shown.append(row)
    return shown


# Form field names for system keys that differ from the model field.
FORM_FIELD = {"extra_phones": "extra_phones_text"}
