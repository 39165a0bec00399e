"""Writes to clients. Each service checks permission first and owns its transaction."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm import permissions as gate
from crm.models import TableSettings

from .models import Client, CustomField, SavedFilter
from .phones import phone_digits

CLIENT_FIELDS = [
    "name", "responsible", "phone", "extra_phones", "email", "country", "city", "address",
    "company", "channel", "priority", "lifecycle", "external_id", "registration_date", "custom",
]


def _apply(client: Client, data: dict) -> None:
    for field in CLIENT_FIELDS:
        if field in data:
            setattr(client, field, data[field])
    client.phone_digits = phone_digits(client.all_phones)


@transaction.atomic
def client_create(*, actor, data: dict) -> Client:
    gate.require(actor, gate.ADD_CLIENT)
    data = dict(data)
    responsible = data.get("responsible") or actor
    if responsible != actor and not gate.can(actor, gate.CHANGE_RESPONSIBLE):
        raise PermissionDenied
    data["responsible"] = responsible
    client = Client(created_by=actor, modified_by=actor)
    _apply(client, data)
    client.full_clean(exclude=["tags"])
    client.save()
    if "tags" in data:
        client.tags.set(data["tags"])
    return client


class ClientChanged(Exception):
    """Someone saved the client after the editor opened it."""

    def __init__(self, current: Client):
        super().__init__(current.pk)
        self.current = current


@transaction.atomic
def client_update(*, actor, client: Client, data: dict, seen_modified=None) -> Client:
    """Save the fields that changed. With seen_modified (the edit form's), refuse to overwrite
    a save that happened after the form was opened: ClientChanged, nothing written."""
    gate.require(actor, gate.CHANGE_CLIENT)
    current = Client.objects.select_for_update().get(pk=client.pk)
    if current.is_deleted:
        raise PermissionDenied
    if seen_modified is not None and current.modified_at != seen_modified:
        raise ClientChanged(current)
    if "responsible" in data and getattr(data["responsible"], "pk", None) != current.responsible_id:
        gate.require(actor, gate.CHANGE_RESPONSIBLE)
    changed = [f for f in CLIENT_FIELDS if f in data and getattr(current, f) != data[f]]
    _apply(current, data)
    current.modified_by = actor
    current.full_clean(exclude=["tags"])
    current.save(update_fields=[*changed, "phone_digits", "modified_at", "modified_by"])
    if "tags" in data:
        current.tags.set(data["tags"])
    return current


class SelectionChanged(Exception):
    """The clients matching a mass action are no longer the ones the user confirmed."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


BULK_CHUNK = 5000


def _lock_selection(clients: QuerySet, digest: str | None) -> list[int]:
    """Lock the selected rows and return their ids; refuse if they are not the confirmed ones."""
    from .selectors import ids_digest

    ids = list(clients.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    if digest is not None and ids_digest(ids) != digest:
        raise SelectionChanged(len(ids))
    return ids


def _update_ids(ids: list[int], **values) -> int:
    done = 0
    for start in range(0, len(ids), BULK_CHUNK):
        done += Client.objects.filter(pk__in=ids[start : start + BULK_CHUNK]).update(**values)
    return done


@transaction.atomic
def clients_soft_delete(*, actor, clients: QuerySet, digest: str | None = None, with_deals: bool = False) -> int:
    """Mark the given (already visibility-scoped) live clients deleted. No row is removed.

    With a digest (a mass action), only if they are exactly the clients the user confirmed.
    "With deals" (seed 002) deletes their live deals too, marked to come back with them.
    """
    from deals.services import deals_delete_with_clients

    gate.require(actor, gate.DELETE_CLIENT)
    if with_deals:
        gate.require(actor, gate.DELETE_DEAL)
    ids = _lock_selection(clients.filter(deleted_at__isnull=True), digest)
    now = timezone.now()
    done = _update_ids(ids, deleted_at=now, deleted_by=actor, modified_at=now, modified_by=actor)
    if with_deals:
        for start in range(0, len(ids), BULK_CHUNK):
            deals_delete_with_clients(actor=actor, client_ids=ids[start : start + BULK_CHUNK], when=now)
    return done


@transaction.atomic
def clients_restore(*, actor, clients: QuerySet, with_deals: bool = False) -> int:
    """Restore deleted clients; "restore with deals" also brings back the deals deleted with them."""
    from deals.services import deals_restore_with_clients

    gate.require(actor, gate.RESTORE_CLIENT)
    ids = list(clients.filter(deleted_at__isnull=False).values_list("pk", flat=True))
    done = Client.objects.filter(pk__in=ids).update(
        deleted_at=None, deleted_by=None, modified_at=timezone.now(), modified_by=actor
    )
    if with_deals:
        deals_restore_with_clients(actor=actor, client_ids=ids)
    return done


@transaction.atomic
def clients_change_responsible(*, actor, clients: QuerySet, responsible, digest: str | None = None) -> int:
    gate.require(actor, gate.CHANGE_RESPONSIBLE)
    ids = _lock_selection(clients.filter(deleted_at__isnull=True), digest)
    return _update_ids(ids, responsible=responsible, modified_at=timezone.now(), modified_by=actor)


def table_settings_save(*, actor, table: str, columns: list[str]) -> None:
    gate.require(actor, gate.VIEW_CLIENTS)
    TableSettings.objects.update_or_create(user=actor, table=table, defaults={"columns": columns})


def saved_filter_save(*, actor, name: str, query: str) -> SavedFilter:
    gate.require(actor, gate.VIEW_CLIENTS)
    saved, _created = SavedFilter.objects.update_or_create(user=actor, name=name, defaults={"query": query})
    return saved


def saved_filter_delete(*, actor, saved: SavedFilter) -> None:
    if saved.user_id != actor.pk:
        raise PermissionDenied
    saved.delete()


@transaction.atomic
def custom_field_save(*, actor, form) -> CustomField:
    gate.require(actor, gate.CONFIGURE_FIELDS)
    field = form.save(commit=False)
    field.choices = form.cleaned_data["choices"] if field.kind == CustomField.Kind.SELECT else []
    if not field.pk:
        last = CustomField.objects.order_by("-position").values_list("position", flat=True).first()
        field.position = (last or 0) + 1
    field.save()
    return field


def custom_field_set_active(*, actor, field: CustomField, active: bool) -> None:
    """Deleting a field hides it; clients keep their values and get them back if it returns."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    CustomField.objects.filter(pk=field.pk).update(is_active=active)
