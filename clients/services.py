"""Writes to clients. Each service checks permission first, owns its transaction and records
the client's activity feed entries in it."""

import copy
from collections.abc import Callable, Mapping
from typing import cast

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Field, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import activity, events, jobs
from crm import permissions as gate
from crm.models import Activity, Event, Job, Notification, TableSettings

from . import duplicates, layout
from .labels import label
from .models import CardField, Client, ClientNote, CustomField, DuplicateSuggestion, SavedFilter
from .phones import phone_digits

User = get_user_model()

CLIENT_FIELDS = [
    "name", "responsible", "phone", "extra_phones", "email", "country", "city", "address",
    "company", "channel", "source", "priority", "lifecycle", "external_id", "registration_date", "custom",
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
    gate.require_field_writes(actor, gate.CONTACT, None, {k: v for k, v in data.items() if k != "responsible"})
    client = Client(created_by=actor, modified_by=actor)
    _apply(client, data)
    client.full_clean(exclude=["tags"])
    client.save()
    if "tags" in data:
        client.tags.set(data["tags"])
    activity.record(client_id=client.pk, actor=actor, kind=Activity.Kind.CREATED, new=client.name)
    duplicates.suggest_for([client.pk])
    _notify_assigned(actor=actor, client=client, responsible=client.responsible)
    return client


def _notify_assigned(*, actor, client, responsible) -> None:
    if responsible is not None:
        activity.notify(
            user=responsible, kind=Notification.Kind.ASSIGNED, actor=actor, url=client.get_absolute_url(),
            params={"about": "client", **activity.client_params(client)},
        )


def _display(client: Client, field: str):
    """The value of a client field as the feed shows it."""
    value = getattr(client, field)
    if field in ("country", "channel", "priority", "lifecycle"):
        return label(field, value)
    if field == "extra_phones":
        return ", ".join(value)
    return value


def _change_entries(*, actor, before: Client, after: Client, fields: list[str], custom_labels: dict) -> list:
    entries = []
    for field in fields:
        if field == "custom":
            keys = sorted(set(before.custom) | set(after.custom))
            for key in keys:
                if before.custom.get(key) != after.custom.get(key):
                    entries.append(activity.entry(
                        client_id=after.pk, actor=actor, kind=Activity.Kind.CHANGE, field=key,
                        field_label=custom_labels.get(key, key), old=before.custom.get(key), new=after.custom.get(key),
                    ))
            continue
        entries.append(activity.entry(
            client_id=after.pk, actor=actor, kind=Activity.Kind.CHANGE, field=field,
            field_label=cast(Field, Client._meta.get_field(field)).verbose_name, old=_display(before, field), new=_display(after, field),
        ))
    return entries


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
    gate.require_field_writes(actor, gate.CONTACT, current, data)  # hidden or read-only in the Manager layout: 403
    changed = [f for f in CLIENT_FIELDS if f in data and getattr(current, f) != data[f]]
    before = copy.copy(current)
    before.custom = dict(current.custom)
    old_responsible = current.responsible
    _apply(current, data)
    current.modified_by = actor
    current.full_clean(exclude=["tags"])
    current.save(update_fields=[*changed, "phone_digits", "modified_at", "modified_by"])
    custom_labels = dict(CustomField.objects.values_list("pk", "label"))
    entries = _change_entries(
        actor=actor, before=before, after=current, fields=changed,
        custom_labels={f"cf_{pk}": text for pk, text in custom_labels.items()},
    )
    if "tags" in data:
        old_tags = {t.name for t in current.tags.all()}
        current.tags.set(data["tags"])
        new_tags = {t.name for t in data["tags"]}
        if old_tags != new_tags:
            entries.append(activity.entry(client_id=current.pk, actor=actor, kind=Activity.Kind.CHANGE, field="tags",
                                          field_label=_("Tags"), old=old_tags, new=new_tags))
    activity.record_many(entries)
    if set(changed) & duplicates.COMPARED_FIELDS:
        duplicates.suggest_for([current.pk])
    if "responsible" in changed and current.responsible_id and current.responsible_id != getattr(old_responsible, "pk", None):
        _notify_assigned(actor=actor, client=current, responsible=current.responsible)
    return current


class SelectionChanged(Exception):
    """The clients matching a mass action are no longer the ones the user confirmed."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


BULK_CHUNK = 5000  # ids per UPDATE of a mass action run in the request
BULK_INLINE_MAX = 1000  # above this many clients, a mass action runs as a job (issue 12)
BULK_JOB_CHUNK = 500  # clients per transaction of such a job: the rows it locks at a time


def _lock_selection(clients: QuerySet, digest: str | None) -> list[int]:
    """Lock the selected rows and return their ids; refuse if they are not the confirmed ones."""
    from .selectors import ids_digest

    ids = list(clients.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    if digest is not None and ids_digest(ids) != digest:
        raise SelectionChanged(len(ids))
    return ids


def _confirmed_ids(clients: QuerySet, digest: str | None) -> list[int]:
    """The selection's ids, unlocked; refuse if they are not the confirmed ones."""
    from .selectors import ids_digest

    ids = list(clients.order_by("pk").values_list("pk", flat=True))
    if digest is not None and ids_digest(ids) != digest:
        raise SelectionChanged(len(ids))
    return ids


def _update_ids(ids: list[int], **values) -> int:
    done = 0
    for start in range(0, len(ids), BULK_CHUNK):
        done += Client.objects.filter(pk__in=ids[start : start + BULK_CHUNK]).update(**values)
    return done


def _bulk_job(*, kind: str, actor, clients: QuerySet, digest: str | None, **params) -> Job | None:
    """Over BULK_INLINE_MAX clients, a mass action is a job: the selection is checked against
    the confirmed digest here (SelectionChanged: nothing done), without locking a row, and the job
    gets exactly these ids to work through in chunks. None: few enough to do in the request."""
    ids = _confirmed_ids(clients, digest)
    if len(ids) <= BULK_INLINE_MAX:
        return None
    return jobs.start(kind=kind, owner=actor, total=len(ids), params={"ids": ids, "notify": True, **params})


@transaction.atomic
def clients_soft_delete(*, actor, clients: QuerySet, digest: str | None = None, with_deals: bool = False) -> int | Job:
    """Mark the given (already visibility-scoped) live clients deleted. No row is removed.

    With a digest (a mass action), only if they are exactly the clients the user confirmed.
    "With deals" (seed 002) deletes their live deals too, marked to come back with them.
    Over BULK_INLINE_MAX clients it returns the job that deletes them (clients_bulk_delete_run).
    """
    from deals.services import deals_delete_with_clients

    gate.require(actor, gate.DELETE_CLIENT)
    if with_deals:
        gate.require(actor, gate.DELETE_DEAL)
    live = clients.filter(deleted_at__isnull=True)
    job = _bulk_job(kind=Job.Kind.BULK_DELETE, actor=actor, clients=live, digest=digest, with_deals=with_deals)
    if job is not None:
        return job
    ids = _lock_selection(live, digest)
    now = timezone.now()
    done = _update_ids(ids, deleted_at=now, deleted_by=actor, modified_at=now, modified_by=actor)
    text = _("with deals") if with_deals else _("contact only")
    activity.record_many([activity.entry(client_id=pk, actor=actor, kind=Activity.Kind.DELETED, new=text) for pk in ids])
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
    text = _("with deals") if with_deals else ""
    activity.record_many([activity.entry(client_id=pk, actor=actor, kind=Activity.Kind.RESTORED, new=text) for pk in ids])
    if with_deals:
        deals_restore_with_clients(actor=actor, client_ids=ids)
    duplicates.suggest_for(ids)
    return done


def _record_responsible(*, actor, responsible, previous: Mapping[int, int | None]) -> None:
    """Feed entries for the clients whose responsible changes (previous: client id → old responsible id)."""
    old_ids = {pk for pk in previous.values() if pk is not None and pk != responsible.pk}
    names: dict[int | None, str] = {u.pk: str(u) for u in User.objects.filter(pk__in=old_ids)}  # looked up by a responsible_id, perhaps None
    new = str(responsible)
    activity.record_changes(rows=[(pk, names.get(old, ""), new) for pk, old in sorted(previous.items()) if old != responsible.pk],
                            actor=actor, field="responsible", field_label=Client._meta.get_field("responsible").verbose_name)


def _notify_responsible(*, actor, responsible, n: int) -> None:
    if n:
        activity.notify(user=responsible, kind=Notification.Kind.ASSIGNED, actor=actor, url="/clients/?view=mine",
                        params={"about": "clients", "n": n})


@transaction.atomic
def clients_change_responsible(*, actor, clients: QuerySet, responsible, digest: str | None = None) -> int | Job:
    """Give the clients a new responsible: one feed entry per client that changes, one
    notification to the new responsible. Over BULK_INLINE_MAX clients it returns the job that
    does it (clients_bulk_responsible_run)."""
    gate.require(actor, gate.CHANGE_RESPONSIBLE)
    if "responsible" in gate.locked_fields(actor):
        raise PermissionDenied
    live = clients.filter(deleted_at__isnull=True)
    job = _bulk_job(kind=Job.Kind.BULK_RESPONSIBLE, actor=actor, clients=live, digest=digest, responsible=responsible.pk)
    if job is not None:
        return job
    ids = _lock_selection(live, digest)
    previous = dict(Client.objects.filter(pk__in=ids).values_list("pk", "responsible_id"))
    done = _update_ids(ids, responsible=responsible, modified_at=timezone.now(), modified_by=actor)
    _record_responsible(actor=actor, responsible=responsible, previous=previous)
    _notify_responsible(actor=actor, responsible=responsible, n=len(ids))
    return done


# Mass actions as jobs (issue 12): chunks of BULK_JOB_CHUNK, each its own transaction -----------


def _lock_chunk(actor, ids: list[int]) -> dict[int, int | None]:
    """The chunk's clients still live and visible to the actor, locked (pk → responsible id); the
    others (deleted, or handed to someone the actor does not see since the confirmation) are skipped."""
    return dict(gate.visible_clients(actor).filter(pk__in=ids).select_for_update(of=("self",))
                .order_by("pk").values_list("pk", "responsible_id"))


def _outcome(job: Job, applied: int) -> None:
    """Keep how many confirmed clients the job changed and skipped, for the Jobs list."""
    Job.objects.filter(pk=job.pk).update(params={**job.params, "applied": applied, "skipped": job.total - applied})


def _run_chunks(job: Job, progress: jobs.Progress, apply: Callable[[list[int]], int], applied_before: Callable[[list[int]], int],
                finish: Callable[[int], None]) -> None:
    """Work through the job's confirmed ids, `apply(ids)` a chunk at a time (it returns how many it
    changed), each chunk in its own transaction that locks only its rows and moves the job's
    `done` (the resume point) with its writes: a run after a crash starts where the last one
    committed. `finish(applied)` runs once, in the transaction of the chunk that ends the job (so
    what it sends is sent once); chunks an earlier run committed are counted by
    `applied_before(ids)` from the rows."""
    ids: list[int] = job.params["ids"]
    applied, earlier = 0, []
    for start in range(0, len(ids), BULK_JOB_CHUNK):
        end = min(start + BULK_JOB_CHUNK, len(ids))
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # The chunk and the job's resume point commit together: a database crash that
                    # lost the last commits loses both, and the next run redoes those clients. No
                    # need to wait for each commit's WAL flush.
                    cursor.execute("SET LOCAL synchronous_commit = off")
            # The job's row first: two runs of one job (without PostgreSQL's runner lock, the
            # sweep may start a second while a slow one still works) take chunks in turn.
            if Job.objects.select_for_update().filter(pk=job.pk).values_list("done", flat=True).get() >= end:
                earlier += ids[start:end]
                continue
            applied += apply(ids[start:end])
            progress(end)
            if end == len(ids):
                finish(applied + sum(applied_before(earlier[i : i + BULK_CHUNK]) for i in range(0, len(earlier), BULK_CHUNK)))


def clients_bulk_responsible_run(*, job: Job, progress: jobs.Progress) -> None:
    """The worker's side of clients_change_responsible over BULK_INLINE_MAX clients."""
    actor = job.owner
    may = gate.can(actor, gate.VIEW_CLIENTS) and gate.can(actor, gate.CHANGE_RESPONSIBLE)
    if not may or "responsible" in gate.locked_fields(actor):
        raise jobs.JobFailed(_("You may no longer change the responsible; the other clients were left as they were."))
    responsible = User.objects.filter(pk=job.params["responsible"]).first()
    if responsible is None:
        raise jobs.JobFailed(_("The new responsible was removed meanwhile; the other clients were left as they were."))

    def apply(ids: list[int]) -> int:
        previous = _lock_chunk(actor, ids)
        Client.objects.filter(pk__in=list(previous)).update(responsible=responsible, modified_at=timezone.now(), modified_by=actor)
        _record_responsible(actor=actor, responsible=responsible, previous=previous)
        return len(previous)

    def applied_before(ids: list[int]) -> int:
        return Client.objects.filter(pk__in=ids, responsible=responsible, deleted_at__isnull=True).count()

    def finish(applied: int) -> None:
        _notify_responsible(actor=actor, responsible=responsible, n=applied)
        _outcome(job, applied)

    _run_chunks(job, progress, apply, applied_before, finish)


def clients_bulk_delete_run(*, job: Job, progress: jobs.Progress) -> None:
    """The worker's side of clients_soft_delete over BULK_INLINE_MAX clients."""
    from deals.services import deals_delete_with_clients

    actor, with_deals = job.owner, job.params.get("with_deals", False)
    may = gate.can(actor, gate.VIEW_CLIENTS) and gate.can(actor, gate.DELETE_CLIENT)
    if not may or (with_deals and not gate.can(actor, gate.DELETE_DEAL)):
        raise jobs.JobFailed(_("You may no longer delete these clients; the others were left as they were."))
    text = _("with deals") if with_deals else _("contact only")

    def apply(ids: list[int]) -> int:
        locked = list(_lock_chunk(actor, ids))
        now = timezone.now()
        Client.objects.filter(pk__in=locked).update(deleted_at=now, deleted_by=actor, modified_at=now, modified_by=actor)
        activity.record_many([activity.entry(client_id=pk, actor=actor, kind=Activity.Kind.DELETED, new=text) for pk in locked])
        if with_deals:
            deals_delete_with_clients(actor=actor, client_ids=locked, when=now)
        return len(locked)

    def applied_before(ids: list[int]) -> int:
        return Client.objects.filter(pk__in=ids, deleted_by=actor, deleted_at__gte=job.created_at).count()

    _run_chunks(job, progress, apply, applied_before, lambda applied: _outcome(job, applied))


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
    if field.pk:
        field.save()
        return field
    return _custom_field_add(field)


@transaction.atomic
def custom_field_create(*, actor, label: str, kind: str, choices: list[str], entity: str = CustomField.Entity.CLIENT) -> CustomField:
    """A new custom field (the import's "new field from this column"), last in its card block."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    return _custom_field_add(CustomField(label=label[:40], kind=kind, entity=entity,
                                         choices=choices if kind == CustomField.Kind.SELECT else []))


def _custom_field_add(field: CustomField) -> CustomField:
    last = CustomField.objects.order_by("-position").values_list("position", flat=True).first()
    field.position = (last or 0) + 1
    field.save()
    card_field_append(field=field)
    return field


def card_field_append(*, field: CustomField) -> CardField:
    """A new custom field goes to the end of its card block (seed 001: the admin orders it)."""
    block = CardField.Block.CONTACT if field.entity == CustomField.Entity.CLIENT else CardField.Block.DEAL
    last = CardField.objects.filter(block=block).order_by("-position").values_list("position", flat=True).first()
    return CardField.objects.create(block=block, custom_field=field, position=(last or 0) + 1)


def custom_field_set_active(*, actor, field: CustomField, active: bool) -> None:
    """Deleting a field hides it; clients keep their values and get them back if it returns."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    CustomField.objects.filter(pk=field.pk).update(is_active=active)


# Comments and the note ------------------------------------------------------------------------


@transaction.atomic
def comment_add(*, actor, client: Client, text: str, step_id: int | None = None) -> Activity:
    """A comment at the top of the feed (seed 002: at most 999 characters); @username notifies
    the named colleague if they may see the client. Those who may not are not told (the
    notification would show them the client and the comment): the returned entry lists them in
    `not_notified`, for the author, and the comment is saved all the same."""
    gate.require(actor, gate.VIEW_CLIENTS)
    text = text.strip()
    if not text:
        raise ValidationError(_("Write something first."))
    if len(text) > activity.COMMENT_MAX:
        raise ValidationError(_("A comment can have at most %(n)s characters.") % {"n": activity.COMMENT_MAX})
    entry = activity.record(client_id=client.pk, actor=actor, kind=Activity.Kind.COMMENT, text=text, step_id=step_id)
    events.emit(Event.Kind.COMMENT, client_id=client.pk)
    entry.not_notified = []
    mentioned = activity.mentioned_users(text, exclude=actor)
    if not mentioned:
        return entry
    may_see = set(gate.users_who_may_see_client(client, User.objects.filter(pk__in=[u.pk for u in mentioned]))
                  .values_list("pk", flat=True))
    for user in mentioned:
        if user.pk not in may_see:
            entry.not_notified.append(user)
            continue
        activity.notify(
            user=user, kind=Notification.Kind.MENTION, actor=actor, url=f"{client.get_absolute_url()}#activity-{entry.pk}",
            params=activity.client_params(client), text=text[:120],
        )
    return entry


@transaction.atomic
def note_save(*, actor, client: Client, text: str) -> ClientNote:
    """The client's one note (seed 003); each edit goes to the feed, old → new."""
    gate.require(actor, gate.CHANGE_CLIENT)
    note, _created = ClientNote.objects.select_for_update().get_or_create(client=client)
    old = note.text
    text = text.strip()
    if text == old:
        return note
    note.text, note.updated_by = text, actor
    note.full_clean()
    note.save()
    activity.record(client_id=client.pk, actor=actor, kind=Activity.Kind.NOTE, field_label=_("Note"), old=old, new=text)
    return note


# Card layouts ---------------------------------------------------------------------------------


@transaction.atomic
def layout_save(*, actor, block: str, rows: list[dict]) -> None:
    """Order, names, the eye, Manager visibility and editability, and deletions of one block.
    A deleted custom field keeps its values (is_active=False: restorable under Fields)."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    existing = {row.pk: row for row in CardField.objects.filter(block=block).select_related("custom_field")}
    if {r["pk"] for r in rows} - set(existing):
        raise ValidationError(_("The layout changed meanwhile: reload the page."))
    for position, data in enumerate(rows, 1):
        row = existing[data["pk"]]
        custom = row.custom_field
        default = custom.label if custom is not None else str(layout.SYSTEM_LABELS.get(row.system_key, ""))
        if custom is not None and data["label"] and data["label"] != custom.label:
            CustomField.objects.filter(pk=custom.pk).update(label=data["label"])  # rename the field itself
            data["label"] = ""
        row.label = "" if data["label"] in ("", default) else data["label"]
        row.position = position
        row.hidden = data["hidden"] or (data["delete"] and not row.custom_field_id)
        row.manager_visible = data["manager_visible"]
        row.manager_editable = data["manager_editable"] and data["manager_visible"]
        row.save()
        if data["delete"] and row.custom_field_id:
            CustomField.objects.filter(pk=row.custom_field_id).update(is_active=False)


@transaction.atomic
def layout_add_field(*, actor, block: str, kind: str, label: str, choices: list[str]) -> CardField:
    """A new date, text or selector field, at the end of the block."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    label = label.strip()
    if not label or len(label) > 40:
        raise ValidationError(_("Give the field a name of at most 40 characters."))
    if kind not in CustomField.Kind.values:
        raise ValidationError(_("Choose the field's type."))
    if kind == CustomField.Kind.SELECT and not choices:
        raise ValidationError(_("A selector needs at least one value."))
    entity = CustomField.Entity.CLIENT if block == CardField.Block.CONTACT else CustomField.Entity.DEAL
    last = CustomField.objects.order_by("-position").values_list("position", flat=True).first() or 0
    field = CustomField.objects.create(
        label=label, kind=kind, entity=entity, position=last + 1,
        choices=list(dict.fromkeys(c[:30] for c in choices)) if kind == CustomField.Kind.SELECT else [],
    )
    return card_field_append(field=field)


def layout_show_system(*, actor, block: str, key: str) -> None:
    """"Add a system field": show a system field that the block hides."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    if not CardField.objects.filter(block=block, system_key=key).update(hidden=False):
        raise ValidationError(_("Choose a system field."))


@transaction.atomic
def duplicate_dismiss(*, actor, suggestion: DuplicateSuggestion) -> DuplicateSuggestion:
    """"Not a duplicate": the pair is never suggested again (clients.duplicates keeps dismissed rows),
    with a feed entry on both clients. Dismissing it twice changes nothing."""
    gate.require(actor, gate.CHANGE_CLIENT)
    locked = DuplicateSuggestion.objects.select_for_update().select_related("client", "other").get(pk=suggestion.pk)
    if locked.dismissed_at is None:
        locked.dismissed_at = timezone.now()
        locked.dismissed_by = actor
        locked.save(update_fields=["dismissed_at", "dismissed_by"])
        activity.record_many([
            activity.entry(client_id=mine.pk, actor=actor, kind=Activity.Kind.CHANGE, field="duplicate",
                           field_label=_("Possible duplicate"), old=f"#{theirs.pk} {theirs.name}", new=_("Not a duplicate"))
            for mine, theirs in ((locked.client, locked.other), (locked.other, locked.client))
        ])
    return locked
