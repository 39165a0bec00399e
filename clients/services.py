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


@transaction.atomic
def client_update(*, actor, client: Client, data: dict) -> Client:
    gate.require(actor, gate.CHANGE_CLIENT)
    if client.is_deleted:
        raise PermissionDenied
    if "responsible" in data and data["responsible"] != client.responsible:
        gate.require(actor, gate.CHANGE_RESPONSIBLE)
    _apply(client, data)
    client.modified_by = actor
    client.full_clean(exclude=["tags"])
    client.save()
    if "tags" in data:
        client.tags.set(data["tags"])
    return client


@transaction.atomic
def clients_soft_delete(*, actor, clients: QuerySet) -> int:
    """Mark the given (already visibility-scoped) clients deleted. No row is removed."""
    gate.require(actor, gate.DELETE_CLIENT)
    now = timezone.now()
    return clients.filter(deleted_at__isnull=True).update(
        deleted_at=now, deleted_by=actor, modified_at=now, modified_by=actor
    )


@transaction.atomic
def clients_restore(*, actor, clients: QuerySet) -> int:
    gate.require(actor, gate.RESTORE_CLIENT)
    return clients.filter(deleted_at__isnull=False).update(
        deleted_at=None, deleted_by=None, modified_at=timezone.now(), modified_by=actor
    )


@transaction.atomic
def clients_change_responsible(*, actor, clients: QuerySet, responsible) -> int:
    gate.require(actor, gate.CHANGE_RESPONSIBLE)
    return clients.update(responsible=responsible, modified_at=timezone.now(), modified_by=actor)


def table_settings_save(*, actor, table: str, columns: list[str]) -> None:
    TableSettings.objects.update_or_create(user=actor, table=table, defaults={"columns": columns})


def saved_filter_save(*, actor, name: str, query: str) -> SavedFilter:
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
