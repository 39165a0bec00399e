"""The activity feed and notifications: written by the services, in their transactions."""

import re
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from .models import Activity, Notification, User

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


def entry(*, client_id, actor, kind, deal_id=None, field="", field_label="", old="", new="", text="") -> Activity:
    return Activity(
        client_id=client_id, deal_id=deal_id, actor=actor, kind=kind, field=field, field_label=str(field_label)[:60],
        old_value=as_text(old), new_value=as_text(new), text=text,
    )


def record(**kwargs) -> Activity:
    activity = entry(**kwargs)
    activity.save()
    return activity


def record_many(activities: list[Activity]) -> None:
    """Many feed entries at once (a mass action): COPY on PostgreSQL."""
    from .bulk import copy_insert

    copy_insert(Activity, activities)


def record_bulk(*, rows: list[tuple], actor, kind, field="", field_label="") -> None:
    """Entries of one kind for many (client id, deal id, new value) rows: an import chunk's tens of
    thousands of lines, written as plain rows (no model instances) by COPY on PostgreSQL."""
    from .bulk import copy_rows

    now = timezone.now()
    columns = ["client_id", "deal_id", "actor_id", "kind", "field", "field_label", "old_value", "new_value", "text", "created_at"]
    label = str(field_label)[:60]
    copy_rows(Activity, columns, [(c, d, actor.pk, kind, field, label, "", as_text(new), "", now) for c, d, new in rows])


def notify(*, user, kind, actor, text, url="") -> None:
    if user is None or (actor is not None and user.pk == actor.pk) or not user.is_active:
        return
    Notification.objects.create(user=user, kind=kind, actor=actor, text=text[:300], url=url)


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
