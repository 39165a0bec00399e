"""Reads for users, roles and teams (the admin pages)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Role, Team


def users_for_admin() -> QuerySet:
    return get_user_model().objects.select_related("role__group", "team").order_by("username")


def user_or_404(pk):
    return get_object_or_404(get_user_model(), pk=pk)


def roles_all() -> QuerySet:
    return Role.objects.select_related("group").order_by("group__name")


def role_or_404(pk) -> Role:
    return get_object_or_404(Role.objects.select_related("group"), pk=pk)


def role_permission_codes(role: Role) -> set[str]:
    rows = Permission.objects.filter(group=role.group_id).values_list("content_type__app_label", "codename")
    return {f"{app}.{code}" for app, code in rows}


def teams_all() -> QuerySet:
    return Team.objects.all()


FEED_PAGE = 30
FEED_FILTERS = {
    "comments": ["comment"],
    "changes": ["created", "change", "deleted", "restored", "step", "conversion"],
    "notes": ["note"],
    "deals": ["deal", "stage", "sale", "assigned"],
    "tasks": ["task"],
    "messages": ["message"],
}


def feed_page(client, *, kind: str = "", before: str = "", hidden=None) -> tuple[list, int | None]:
    """A client's feed, newest first, FEED_PAGE entries; the id to continue from, if any.
    Stage moves show the stages' current names: one query for every stage on the page.
    hidden (gate.hidden_by_block): changes of fields the reader may not see are left out, and a
    sale's player ID is blanked when the card's Player ID is hidden from them."""
    from deals.models import Stage

    from . import permissions as gate
    from .models import Activity

    qs = Activity.objects.filter(client=client).select_related("actor")
    hidden = hidden or {gate.CONTACT: set(), gate.DEAL: set()}
    if hidden[gate.CONTACT]:
        qs = qs.exclude(kind=Activity.Kind.CHANGE, deal__isnull=True, field__in=hidden[gate.CONTACT])
    if hidden[gate.DEAL]:
        attributes = [gate.DEAL_ATTRIBUTE.get(key, key) for key in hidden[gate.DEAL]]
        qs = qs.exclude(kind=Activity.Kind.CHANGE, deal__isnull=False, field__in=attributes)
    if kind in FEED_FILTERS:
        qs = qs.filter(kind__in=FEED_FILTERS[kind])
    if before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs.order_by("-pk")[: FEED_PAGE + 1])
    more = len(rows) > FEED_PAGE
    rows = rows[:FEED_PAGE]
    if "external_id" in hidden[gate.CONTACT]:
        for row in rows:
            if row.kind == Activity.Kind.SALE:
                row.text = ""
    stage_ids = {int(v) for r in rows if r.kind == "stage" for v in (r.old_value, r.new_value) if v.isdigit()}
    if stage_ids:
        names = {s.pk: str(s) for s in Stage.objects.filter(pk__in=stage_ids)}
        for row in rows:
            if row.kind == "stage":
                row.old_label = names.get(int(row.old_value), "—") if row.old_value.isdigit() else row.old_value
                row.new_label = names.get(int(row.new_value), "—") if row.new_value.isdigit() else row.new_value
    return rows, (rows[-1].pk if more and rows else None)


def last_contact(client):
    """When someone last commented, added a sale, or wrote or received a message (the card's indicator)."""
    from .models import Activity

    return (
        Activity.objects.filter(client=client, kind__in=["comment", "sale", "message"])
        .order_by("-pk").values_list("created_at", flat=True).first()
    )


def unread_count(user) -> int:
    from .models import Notification

    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_of(user, limit: int = 50) -> list:
    """The user's latest notifications, each marked whether the client it names is hidden from
    them (at most one more query, for the clients on the page)."""
    from .models import Notification

    rows = list(Notification.objects.filter(user=user).select_related("actor")[:limit])
    return hide_unseen_clients(user, rows)


def hide_unseen_clients(user, notifications: list) -> list:
    """Mark (`client_hidden`) the notifications that name a client the reader may not see now:
    the client was handed to someone else, or the reader's role changed. One query for all the
    clients named, none when there are none or the reader sees every client."""
    from . import permissions as gate
    from .models import Role

    ids = {n.params.get("client_id") for n in notifications if n.params} - {None}
    if not ids or not gate.can(user, gate.VIEW_CLIENTS):
        visible = set()
    elif gate.visibility(user) == Role.Visibility.ALL:
        visible = ids
    else:
        from clients.models import Client

        visible = set(gate.scope_to_user(user, Client.objects.filter(pk__in=ids)).values_list("pk", flat=True))
    for n in notifications:
        n.client_hidden = bool(n.params) and n.params.get("client_id") is not None and n.params["client_id"] not in visible
    return notifications


MENTION_OPTIONS = 8


def mention_candidates(*, client, query: str, exclude=None) -> list:
    """Whom a comment on the client may @mention, for the autocomplete: active users who may see
    the client (crm.permissions.users_who_may_see_client), by username or name starting with the
    query; at most MENTION_OPTIONS, in one query."""
    from django.db.models import Q

    from . import permissions as gate

    query = query.strip().lstrip("@")
    users = get_user_model().objects.filter(is_active=True)
    if query:
        users = users.filter(Q(username__istartswith=query) | Q(first_name__istartswith=query) | Q(last_name__istartswith=query))
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return list(gate.users_who_may_see_client(client, users).order_by("username")[:MENTION_OPTIONS])


def job_status(job) -> dict:
    """What the progress partial says besides the numbers: whether a worker is on it."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    now = timezone.now()
    quiet = (now - job.heartbeat_at).total_seconds() if job.heartbeat_at else 0
    scheduled = job.heartbeat_at is not None and job.heartbeat_at > now  # paused until then (a retry)
    waiting = not job.is_final and not scheduled and (
        (job.state == job.State.QUEUED and (now - job.created_at) > timedelta(seconds=settings.JOB_HEARTBEAT_SECONDS * 2))
        or (job.state == job.State.RUNNING and quiet > settings.JOB_HEARTBEAT_SECONDS * 4)
    )
    return {"waiting_for_worker": waiting, "scheduled_at": job.heartbeat_at if scheduled else None}
