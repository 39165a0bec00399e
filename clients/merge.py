"""Merging two clients into one, and undoing it (seed 004's «Импорт» side by side; DESIGN §2 Merge).

`preview` says what would move; `merge` does it in one transaction: the other's deals and then both clients' rows
locked in a fixed order (deals before clients, as a sale takes them; the lower id first), the chosen
values copied onto the kept client, phones, e-mails and tags unioned, every related row (deals,
sales, tasks, feed entries, the note, conversations, mass-send deliveries, ignore rules, lead
conversions) moved to it, the other soft-deleted with a link to the merge, a feed entry on both,
and a journal of all of it. `undo` (an admin's) moves back what the journal lists, restores the
kept client's values where nobody changed them since, and brings the other back.

Never automatic: a merge is always a person's choice on the merge page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm import activity
from crm import permissions as gate
from crm.models import Activity, User
from deals.models import Deal, Sale
from messenger.models import Attachment, Conversation, Delivery, IgnoreRule, Message
from tasks.models import Task

from .labels import label
from .models import Client, ClientNote, CustomField, LeadConversion, Merge
from .phones import format_phone, phone_digits

# The fields a merge lets the user choose between, in the order the page shows them.
FIELDS = [
    ("name", gettext_lazy("Full name")),
    ("email", gettext_lazy("E-mail")),
    ("country", gettext_lazy("Country")),
    ("city", gettext_lazy("City")),
    ("address", gettext_lazy("Address")),
    ("company", gettext_lazy("Company")),
    ("source", gettext_lazy("Source")),
    ("channel", gettext_lazy("Channel")),
    ("priority", gettext_lazy("Priority")),
    ("lifecycle", gettext_lazy("Status")),
    ("external_id", gettext_lazy("Player ID")),
    ("registration_date", gettext_lazy("Registration date")),
    ("responsible", gettext_lazy("Responsible")),
    ("step", gettext_lazy("Step")),
]
# Rows that move with a merge: the journal's key, the model, its client field.
MOVED = [
    ("deals", Deal, "client"),
    ("sales", Sale, "client"),
    ("tasks", Task, "client"),
    ("feed", Activity, "client"),
    ("conversations", Conversation, "client"),
    ("deliveries", Delivery, "client"),
    ("ignore_rules", IgnoreRule, "client"),
    ("conversions", LeadConversion, "client"),
    # leads linked to the other as their existing customer («Добавить пользователя»): to the kept one
    ("linked_leads", LeadConversion, "customer"),
]


class MergeRefused(Exception):
    """A merge or an undo that cannot be done as asked; the message says why, nothing is written."""


@dataclass
class Row:
    """One line of the side-by-side page: the field, both values as shown, which one is kept."""

    key: str
    label: str
    other: str
    kept: str
    take_other: bool  # the default choice: the other's value where the kept client has none
    same: bool


def _shown(client: Client, key: str) -> str:
    if key.startswith("cf_"):
        return str(client.custom.get(key, "") or "")
    value = getattr(client, key, None)
    if key in ("country", "channel", "priority", "lifecycle"):
        return str(label(key, value)) if value else ""
    if key == "registration_date":
        return value.isoformat() if value else ""
    if value is None:
        return ""
    return str(value)


def _raw(client: Client, key: str):
    """The stored value (ids for foreign keys), as the journal keeps it."""
    if key.startswith("cf_"):
        return client.custom.get(key)
    if key in ("responsible", "step"):
        return getattr(client, f"{key}_id")
    value = getattr(client, key)
    return value.isoformat() if isinstance(value, date) else value


def _set_raw(client: Client, key: str, value) -> None:
    if key.startswith("cf_"):
        if value in (None, ""):
            client.custom.pop(key, None)
        else:
            client.custom[key] = value
    elif key in ("responsible", "step"):
        setattr(client, f"{key}_id", value)
    elif key == "registration_date":
        client.registration_date = date.fromisoformat(value) if value else None
    else:
        setattr(client, key, value)


def field_keys() -> list[tuple[str, str]]:
    """The system fields and every active custom field of clients."""
    custom = CustomField.objects.filter(entity=CustomField.Entity.CLIENT, is_active=True).order_by("position", "pk")
    return [(key, str(text)) for key, text in FIELDS] + [(f"cf_{f.pk}", f.label) for f in custom]


def rows(kept: Client, other: Client) -> list[Row]:
    result = []
    for key, text in field_keys():
        mine, theirs = _shown(kept, key), _shown(other, key)
        result.append(Row(key=key, label=text, other=theirs, kept=mine, take_other=bool(theirs) and not mine,
                          same=mine == theirs))
    return result


def phones_union(kept: Client, other: Client) -> tuple[str, list[str]]:
    """The kept client's main phone (the other's when it has none) and every other number once."""
    everything = [p for p in [kept.phone, *kept.extra_phones, other.phone, *other.extra_phones] if p]
    unique = list(dict.fromkeys(everything))
    if not unique:
        return "", []
    return unique[0], unique[1:]


def emails_union(kept_email: str, kept: Client, other: Client) -> list[str]:
    """Every e-mail of both but the one kept in the e-mail field, once (compared case-insensitively)."""
    seen = {kept_email.strip().lower()} if kept_email else set()
    extra = []
    for email in [kept.email, *kept.extra_emails, other.email, *other.extra_emails]:
        if email and email.strip().lower() not in seen:
            seen.add(email.strip().lower())
            extra.append(email)
    return extra


def preview(kept: Client, other: Client) -> list[tuple[str, int]]:
    """What moves from the other client to the kept one: (what, how many)."""
    counts = Client.objects.filter(pk=other.pk).aggregate(
        deals=Count("deals", distinct=True),
        tasks=Count("tasks", distinct=True),
        comments=Count("activities", filter=Q(activities__kind=Activity.Kind.COMMENT), distinct=True),
        sales=Count("sales", distinct=True),
        conversations=Count("conversations", distinct=True),
    )
    notes = ClientNote.objects.filter(client=other).exclude(text="").count()
    messages = Message.objects.filter(conversation__client=other).count()
    files = Attachment.objects.filter(message__conversation__client=other).count()  # they move with the chats
    return [
        (_("Deals"), counts["deals"]), (_("Tasks"), counts["tasks"]), (_("Comments"), counts["comments"]),
        (_("Notes"), notes), (_("Messages"), messages), (_("Sales"), counts["sales"]),
        (_("Conversations"), counts["conversations"]), (_("Files"), files),
    ]


def _lock(*ids: int) -> dict[int, Client]:
    """Both clients' rows, locked lower id first (a fixed order: no deadlock with another merge).
    FOR NO KEY UPDATE: an edit (FOR UPDATE) waits for it or it for the edit, while the key-share
    locks a concurrent transaction's foreign keys take on the client at its commit (a deal moved,
    a comment written) do not wait, so a deal move holding its deal cannot deadlock with us."""
    return {c.pk: c for c in Client.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")}


def _lock_deals(deals) -> None:
    """Deals' rows locked in id order (FOR NO KEY UPDATE): a move or a sale of one of them holding
    it finishes first, or waits for this."""
    list(deals.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))


def _recount_sales(client_ids: list[int]) -> None:
    """A client's sales count, sum and last sale from its sales (exact, whatever moved meanwhile)."""
    for client_id in client_ids:
        totals = Sale.objects.filter(client_id=client_id, reversed_at__isnull=True).aggregate(
            n=Count("pk"), total=Coalesce(Sum("amount"), 0, output_field=Sale._meta.get_field("amount")),
            last=Max("created_at"))
        Client.objects.filter(pk=client_id).update(sales_count=totals["n"], sales_sum=totals["total"],
                                                   last_sale_at=totals["last"])


@transaction.atomic
def merge(*, actor, kept: Client, other: Client, take: set[str]) -> Merge:
    """Merge `other` into `kept`, taking the other's value for the fields in `take`."""
    gate.require(actor, gate.MERGE_CLIENTS)
    if kept.pk == other.pk:
        raise MergeRefused(_("Choose two different clients."))
    # The other's deals first, then both clients: the order a sale takes them (its deal, then the
    # deal's client), so a sale and a merge queue instead of deadlocking.
    _lock_deals(Deal.objects.filter(client_id=other.pk))
    locked = _lock(kept.pk, other.pk)
    if len(locked) < 2 or any(c.is_deleted for c in locked.values()):
        raise MergeRefused(_("One of the clients was deleted or merged meanwhile."))
    kept, other = locked[kept.pk], locked[other.pk]
    keys = dict(field_keys())
    unknown = set(take) - set(keys)
    if unknown:
        raise MergeRefused(_("Unknown field: %(field)s") % {"field": ", ".join(sorted(unknown))})
    before = {key: _raw(kept, key) for key in keys}
    before.update(phone=kept.phone, extra_phones=list(kept.extra_phones), extra_emails=list(kept.extra_emails))
    for key in take:
        _set_raw(kept, key, _raw(other, key))
    kept.phone, kept.extra_phones = phones_union(kept, other)
    kept.phone_digits = phone_digits(kept.all_phones)  # found by any of its numbers
    kept.extra_emails = emails_union(kept.email, kept, other)
    kept.modified_by = actor
    try:
        kept.full_clean(exclude=["tags"])
    except ValidationError as error:
        raise MergeRefused("; ".join(error.messages)) from None
    kept.save()
    after = {key: _raw(kept, key) for key in keys}
    after.update(phone=kept.phone, extra_phones=list(kept.extra_phones), extra_emails=list(kept.extra_emails))

    now = timezone.now()
    journal: dict = {"before": before, "after": after, "took": sorted(take), "moved": {}}
    for key, model, field in MOVED:
        rows_of_other = model._default_manager.filter(**{field: other})
        if model is Delivery:  # one delivery per mass send and client: the kept client's own stays
            rows_of_other = rows_of_other.exclude(mass_send__in=Delivery.objects.filter(client=kept).values("mass_send"))
        ids = list(rows_of_other.values_list("pk", flat=True))
        if ids:
            model._default_manager.filter(pk__in=ids).update(**{field: kept})
        journal["moved"][key] = ids
    journal["tags_added"] = list(other.tags.exclude(pk__in=kept.tags.values("pk")).values_list("pk", flat=True))
    kept.tags.add(*journal["tags_added"])
    journal["note"] = _merge_notes(actor, kept, other)
    _recount_sales([kept.pk, other.pk])

    record = Merge.objects.create(kept=kept, merged=other, journal=journal, by=actor)
    Client.objects.filter(pk=other.pk).update(deleted_at=now, deleted_by=actor, merged_in=record, modified_at=now)
    activity.record_many([
        activity.entry(client_id=kept.pk, actor=actor, kind=Activity.Kind.MERGE, field="merged_in",
                       old=f"#{other.pk}", new=other.name, text=", ".join(str(keys[k]) for k in sorted(take))),
        activity.entry(client_id=other.pk, actor=actor, kind=Activity.Kind.MERGE, field="merged_into",
                       old=f"#{kept.pk}", new=kept.name),
    ])
    return record


def _merge_notes(actor, kept: Client, other: Client) -> dict:
    """The other's note joins the kept one's (below a line naming it); what undo needs to restore."""
    theirs = ClientNote.objects.filter(client=other).exclude(text="").first()
    if theirs is None:
        return {}
    mine = ClientNote.objects.select_for_update().filter(client=kept).first()
    if mine is None:
        ClientNote.objects.filter(pk=theirs.pk).update(client=kept)
        return {"moved": theirs.pk}
    text = f"{mine.text}\n\n— {other.name} (#{other.pk}):\n{theirs.text}".strip()[:2000]
    previous = mine.text
    ClientNote.objects.filter(pk=mine.pk).update(text=text, updated_by=actor, updated_at=timezone.now())
    return {"kept_text": previous, "joined_text": text}


@transaction.atomic
def undo(*, actor, record: Merge) -> list[str]:
    """Take a merge back: the moved rows return, the other client is restored, the kept client's
    values come back where nobody changed them since the merge. Returns the fields left as they
    are (changed after the merge), for the message."""
    gate.require(actor, gate.MERGE_CLIENTS)
    record = Merge.objects.select_for_update().get(pk=record.pk)
    if record.undone_at is not None:
        raise MergeRefused(_("This merge was already undone."))
    _lock_deals(Deal.objects.filter(pk__in=record.journal["moved"].get("deals", [])))
    locked = _lock(record.kept_id, record.merged_id)
    kept, other = locked[record.kept_id], locked[record.merged_id]
    if kept.is_deleted:
        raise MergeRefused(_("The kept client was deleted since: restore it first."))
    journal = record.journal
    kept_now = {key: _raw(kept, key) for key in journal["before"] if key not in ("phone", "extra_phones", "extra_emails")}
    kept_now.update(phone=kept.phone, extra_phones=list(kept.extra_phones), extra_emails=list(kept.extra_emails))
    left = []
    for key, old in journal["before"].items():
        if key not in journal["after"]:
            continue
        if kept_now.get(key) != journal["after"][key]:
            left.append(key)  # changed by someone after the merge: theirs stands
            continue
        if key in ("phone", "extra_phones", "extra_emails"):
            setattr(kept, key, old)
        else:
            _set_raw(kept, key, old)
    kept.phone_digits = phone_digits(kept.all_phones)
    kept.modified_by = actor
    kept.save()
    for key, model, field in MOVED:
        ids = journal["moved"].get(key) or []
        if ids:
            model._default_manager.filter(pk__in=ids, **{field: kept}).update(**{field: other})
    if journal.get("tags_added"):
        kept.tags.remove(*journal["tags_added"])
    note = journal.get("note") or {}
    if note.get("moved"):
        ClientNote.objects.filter(pk=note["moved"], client=kept).update(client=other)
    elif note.get("kept_text") is not None:
        ClientNote.objects.filter(client=kept, text=note["joined_text"]).update(text=note["kept_text"])
    _recount_sales([kept.pk, other.pk])
    now = timezone.now()
    Client.objects.filter(pk=other.pk).update(deleted_at=None, deleted_by=None, merged_in=None, modified_at=now)
    Merge.objects.filter(pk=record.pk).update(undone_at=now, undone_by=actor)
    activity.record_many([
        activity.entry(client_id=kept.pk, actor=actor, kind=Activity.Kind.MERGE, field="undone",
                       old=f"#{other.pk}", new=other.name),
        activity.entry(client_id=other.pk, actor=actor, kind=Activity.Kind.MERGE, field="undone",
                       old=f"#{kept.pk}", new=kept.name),
    ])
    return left


def phones_shown(client: Client) -> str:
    return ", ".join(format_phone(p) for p in client.all_phones)


def candidates(user: User, kept: Client, query: str, limit: int = 10):
    """Clients the user may see to merge with `kept`: by name, phone digits or e-mail."""
    from .filters import search_q

    if not query.strip():
        return Client.objects.none()
    return gate.visible_clients(user).exclude(pk=kept.pk).filter(search_q(query.strip())).order_by("-modified_at", "-pk")[:limit]
