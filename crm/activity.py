"""The activity feed and notifications: written by the services, in their transactions."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import Activity, Job, Notification, User

MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
COMMENT_MAX = 999  # seed 002


def as_text(value) -> str:
    """A value as the feed shows it: stable text, written once, never re-derived."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime):
        return formats.date_format(timezone.localtime(value), "Y-m-d H:i")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (list, tuple, set)):
        return ", ".join(sorted(as_text(v) for v in value))
    return str(value)


def entry(*, client_id, actor, kind, deal_id=None, field="", field_label="", old="", new="", text="", step_id=None) -> Activity:
    return Activity(
        client_id=client_id, deal_id=deal_id, actor=actor, kind=kind, field=field, field_label=str(field_label)[:60],
        old_value=as_text(old), new_value=as_text(new), text=text, step_id=step_id,
    )


def record(**kwargs) -> Activity:
    activity = entry(**kwargs)
    activity.save()
    return activity


COPY_FROM = 50  # below this many rows one INSERT is fewer round trips than a COPY


def record_many(activities: list[Activity]) -> None:
    """Many feed entries at once (a mass action): COPY on PostgreSQL; a handful in one INSERT."""
    from .bulk import copy_insert

    if len(activities) < COPY_FROM:
        Activity.objects.bulk_create(activities)
    else:
        copy_insert(Activity, activities)


FEED_COLUMNS = ["client_id", "deal_id", "actor_id", "kind", "field", "field_label", "old_value", "new_value", "text", "created_at"]


def record_bulk(*, rows: list[tuple], actor, kind, field="", field_label="") -> None:
    """Entries of one kind for many (client id, deal id, new value) rows: an import chunk's tens of
    thousands of lines, written as plain rows (no model instances) by COPY on PostgreSQL."""
    from .bulk import copy_rows

    now = timezone.now()
    label = str(field_label)[:60]
    copy_rows(Activity, FEED_COLUMNS, [(c, d, actor.pk, kind, field, label, "", as_text(new), "", now) for c, d, new in rows])


def record_changes(*, rows: list[tuple[int, str, str]], actor, field: str, field_label) -> None:
    """"Field changed" entries of one field for many (client id, old text, new text) rows (a mass
    action's chunk), as plain rows: COPY on PostgreSQL."""
    from .bulk import copy_rows

    now = timezone.now()
    label = str(field_label)[:60]
    copy_rows(Activity, FEED_COLUMNS, [(c, None, actor.pk, Activity.Kind.CHANGE, field, label, old, new, "", now)
                                       for c, old, new in rows])


def notify(*, user, kind, actor, params: dict, text: str = "", url: str = "") -> Notification | None:
    """Tell a user something: the kind and its parameters are stored, the sentence is worded when
    it is read (`notification_text`), so each reader gets it in their language and time zone.
    `text` is the words it quotes (a comment, a task's description); the actor's name is kept
    as it was. Nobody is told of their own doing, nor is an inactive user."""
    if user is None or (actor is not None and user.pk == actor.pk) or not user.is_active:
        return None
    if actor is not None:
        params = {"actor": str(actor), **params}
    return Notification.objects.create(user=user, kind=kind, actor=actor, params=params, text=text[:300], url=url)


def client_params(client) -> dict:
    """A client as notifications keep it: the name as it was and the id (to hide it, when read,
    from a reader who may no longer see the client)."""
    return {"client": client.name, "client_id": client.pk}


def utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _when(value: str) -> str:
    """An ISO UTC datetime in the active time zone and language's short format."""
    return formats.date_format(timezone.localtime(datetime.fromisoformat(value)), "SHORT_DATETIME_FORMAT")


def notification_text(notification: Notification) -> str:
    """The notification's sentence in the active language and time zone. Rows written before
    `params` show their stored text. A client the reader may not see (`client_hidden`, set by
    crm.selectors.hide_unseen_clients) is not named and nothing of it is quoted."""
    p = notification.params
    if not p:
        return notification.text
    hidden = getattr(notification, "client_hidden", False)
    actor = p.get("actor") or (str(notification.actor) if notification.actor_id else "")
    about = p.get("about", "")
    text = notification.text
    kind = notification.kind
    if kind == Notification.Kind.MENTION:
        if hidden:
            return _("%(actor)s mentioned you on a client you cannot see") % {"actor": actor}
        return _("%(actor)s mentioned you on %(client)s: %(text)s") % {
            "actor": actor, "client": p.get("client", ""), "text": text}
    if kind == Notification.Kind.REMINDER:
        values = {"when": _when(p["due"]), "text": text, "client": p.get("client", "")}
        if hidden or not values["client"]:
            if about == "overdue":
                return _("Task overdue since %(when)s: %(text)s") % values
            return _("Task due %(when)s: %(text)s") % values
        if about == "overdue":
            return _("Task overdue since %(when)s: %(text)s (%(client)s)") % values
        return _("Task due %(when)s: %(text)s (%(client)s)") % values
    if about == "client":
        if hidden:
            return _("%(actor)s made you responsible for a client you cannot see") % {"actor": actor}
        return _("%(actor)s made you responsible for the client %(client)s") % {"actor": actor, "client": p.get("client", "")}
    if about == "clients":
        n = p.get("n", 0)
        return ngettext(
            "%(actor)s made you responsible for %(n)s client", "%(actor)s made you responsible for %(n)s clients", n
        ) % {"actor": actor, "n": formats.number_format(n)}
    if about == "deal":
        return _("%(actor)s made you responsible for the deal #%(n)s %(name)s") % {
            "actor": actor, "n": p.get("deal_id", ""), "name": p.get("deal", "")}
    if about == "distributed":
        n = p.get("n", 1)
        line = _(p["line"]) if p.get("line") else ""  # a default line's name ("1st line") in the reader's language
        if n == 1:
            return _("A new deal is yours: #%(n)s %(name)s (%(line)s)") % {
                "n": p.get("deal_id", ""), "name": p.get("deal", ""), "line": line}
        return ngettext("%(n)s new deal is yours in %(line)s", "%(n)s new deals are yours in %(line)s", n) % {
            "n": formats.number_format(n), "line": line}
    if kind == Notification.Kind.MESSAGE:
        if hidden:
            return _("A new message from a client you cannot see")
        return _("New message from %(client)s in %(channel)s: %(text)s") % {
            "client": p.get("client", ""), "channel": p.get("channel", ""), "text": text}
    if kind == Notification.Kind.SHIFT:
        sentence = _("Your shift was closed after %(hours)s hours without activity.") % {"hours": p.get("hours", "")}
        handed = p.get("handed", 0)
        if handed:
            sentence += " " + ngettext("%(n)s deal not yet worked went to a colleague or back to the queue.",
                                       "%(n)s deals not yet worked went to colleagues or back to the queue.", handed) % {
                "n": formats.number_format(handed)}
        return sentence
    if kind == Notification.Kind.PARTNER:
        amount = p.get("amount", "")
        try:  # kept as plain digits ("49.90"), shown as the reader writes numbers ("49,90" in Russian)
            amount = formats.number_format(Decimal(amount), 2, force_grouping=True) if amount else ""
        except ArithmeticError:
            pass
        values = {"partner": p.get("partner", ""), "n": p.get("deal_id", ""), "deal": p.get("deal", ""),
                  "amount": amount, "currency": p.get("currency", ""), "client": p.get("client", "")}
        if hidden:
            return _("A partner's event on a client you cannot see")
        if about == "registered":
            return _("%(client)s registered with %(partner)s (deal #%(n)s %(deal)s)") % values
        if about == "purchase":
            return _("%(client)s bought for %(amount)s %(currency)s with %(partner)s (deal #%(n)s %(deal)s)") % values
        return _("%(partner)s rejected the purchase of %(client)s (deal #%(n)s %(deal)s)") % values
    if kind == Notification.Kind.ROBOT:
        values = {"robot": p.get("robot", ""), "n": p.get("deal_id", ""), "deal": p.get("deal", ""), "text": text}
        if about == "loop":
            return _("Robot “%(robot)s” was stopped on the deal #%(n)s %(deal)s: a loop of robots") % values
        if about == "suspended":
            return _("Robot “%(robot)s” fired too often on the deal #%(n)s %(deal)s and is suspended for it") % values
        return _("Robot “%(robot)s” on the deal #%(n)s %(deal)s: %(text)s") % values
    if about == "task":
        return _("%(actor)s gave you a task: %(text)s") % {"actor": actor, "text": text}
    if about == "tasks":
        return _("%(actor)s gave you %(n)s tasks: %(text)s") % {
            "actor": actor, "n": formats.number_format(p.get("n", 0)), "text": text}
    if kind == Notification.Kind.JOB:
        values = {"job": str(Job.Kind(p["job_kind"]).label) if p.get("job_kind") in Job.Kind.values else "",
                  "n": formats.number_format(p.get("n", 0))}
        if p.get("failed"):
            return _("%(job)s failed: open it to see why") % values
        return _("%(job)s is ready (%(n)s)") % values
    return text or str(notification.get_kind_display())


def notification_text_for(user, notification: Notification) -> str:
    """The sentence as `user` reads it outside a request (an email, a worker): in their language
    and time zone, and without a client they may not see."""
    from .selectors import hide_unseen_clients

    hide_unseen_clients(user, [notification])
    try:
        zone = ZoneInfo(user.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = timezone.get_default_timezone()
    with translation.override(user.language), timezone.override(zone):
        return notification_text(notification)


def mentioned_users(text: str, *, exclude=None) -> list[User]:
    """Active users named by @username in the text (any case), in one query."""
    from django.db.models.functions import Lower

    names = {m.rstrip(".").lower() for m in MENTION.findall(text)}
    if not names:
        return []
    users = User.objects.annotate(lower_name=Lower("username")).filter(is_active=True, lower_name__in=names)
    return [u for u in users if exclude is None or u.pk != exclude.pk]


@transaction.atomic
def notifications_mark_read(*, user, pk=None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if pk is not None:
        qs = qs.filter(pk=pk)
    return qs.update(read_at=timezone.now())
