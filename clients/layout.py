"""Card layouts (seed 001): which fields a card block shows, in what order, and what the
Manager mode may see and edit. The same definitions drive the card, the clients table's
columns and filters, and the server's refusal of writes to hidden or read-only fields."""

from django.utils.translation import gettext_lazy as _

from crm import permissions as gate

from .models import CARD_SYSTEM_FIELDS, CardField

SYSTEM_LABELS = {
    "phone": _("Phone"), "extra_phones": _("Other phones"), "email": _("Email"), "responsible": _("Responsible"),
    "company": _("Company"), "country": _("Country"), "city": _("City"), "address": _("Address"),
    "channel": _("Channel"), "source": _("Source"), "priority": _("Priority"), "lifecycle": _("Status"), "external_id": _("Player ID"),
    "registration_date": _("Registration date"), "last_sale_at": _("Last sale date"),
    "funnel": _("Funnel"), "line": _("Line"), "stage": _("Stage"), "budget": _("Budget"),
    "deal_responsible": _("Responsible"),
}
# System fields that are shown but never written through the card's form.
READ_ONLY_SYSTEM = {"last_sale_at", "funnel", "line", "stage"}


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


def admin_mode(user) -> bool:
    """Admins (who may configure card layouts) see the Admin layout; everyone else the Manager one."""
    return gate.can(user, gate.CONFIGURE_FIELDS)


def label_of(row: CardField) -> str:
    if row.label:
        return row.label
    if row.custom_field_id:
        return row.custom_field.label
    return str(SYSTEM_LABELS.get(row.system_key, row.system_key))


def all_rows() -> list[CardField]:
    """Both blocks' layouts in one query (the card shows both)."""
    rows = CardField.objects.select_related("custom_field")
    return [r for r in rows if not r.custom_field_id or r.custom_field.is_active]


def block_rows(block: str) -> list[CardField]:
    rows = CardField.objects.filter(block=block).select_related("custom_field")
    return [r for r in rows if not r.custom_field_id or r.custom_field.is_active]


def visible_rows(user, block: str, rows=None) -> list[CardField]:
    """The fields a user sees in a block, in the admin's order, each with .title and .editable."""
    admin = admin_mode(user)
    shown = []
    for row in rows if rows is not None else block_rows(block):
        if row.hidden or (not admin and not row.manager_visible):
            continue
        row.title = label_of(row)
        row.editable = row.system_key not in READ_ONLY_SYSTEM and (admin or row.manager_editable)
        row.locked = not admin and not row.manager_editable  # read-only by the layout (shown with a lock)
        shown.append(row)
    return shown


def locked_keys(user, block: str = CardField.Block.CONTACT, rows=None) -> set[str]:
    """Field keys the user may not write: none in Admin mode; for managers, every field that is
    hidden, invisible or read-only in the Manager layout."""
    if admin_mode(user):
        return set()
    return {
        row.key for row in (rows if rows is not None else block_rows(block))
        if row.hidden or not row.manager_visible or not row.manager_editable
    }


def hidden_keys(user, block: str = CardField.Block.CONTACT, rows=None) -> set[str]:
    """Field keys a manager may not see: the clients table's columns and filters follow the card.
    Admins see every field in the table (the eye only tidies the card)."""
    if admin_mode(user):
        return set()
    return {
        row.key for row in (rows if rows is not None else block_rows(block))
        if row.hidden or not row.manager_visible
    }


# Form field names for system keys that differ from the model field.
FORM_FIELD = {"extra_phones": "extra_phones_text"}


def refuse_locked_writes(user, client, data: dict) -> None:
    """403 (nothing saved) when data changes a field the user's layout does not let them write."""
    locked = locked_keys(user)
    if not locked:
        return
    from django.core.exceptions import PermissionDenied

    for key in locked:
        if key.startswith("cf_"):
            if "custom" in data and (data["custom"] or {}).get(key) != ((client.custom or {}).get(key) if client else None):
                raise PermissionDenied
        elif key in data:
            current = getattr(client, key, None) if client else None
            new = data[key]
            if key == "responsible":
                current, new = getattr(current, "pk", current), getattr(new, "pk", new)
            if (new or None) != (current or None) and not (client is None and not new):
                raise PermissionDenied
