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
    "changes": ["created", "change", "deleted", "restored"],
    "notes": ["note"],
    "deals": ["deal", "stage", "sale"],
    "tasks": ["task"],
    "messages": ["message"],
}


def feed_page(client, *, kind: str = "", before: str = "") -> tuple[list, int | None]:
    """A client's feed, newest first, FEED_PAGE entries; the id to continue from, if any.
    Stage moves show the stages' current names: one query for every stage on the page."""
    from deals.models import Stage

    from .models import Activity

    qs = Activity.objects.filter(client=client).select_related("actor")
    if kind in FEED_FILTERS:
        qs = qs.filter(kind__in=FEED_FILTERS[kind])
    if before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs.order_by("-pk")[: FEED_PAGE + 1])
    more = len(rows) > FEED_PAGE
    rows = rows[:FEED_PAGE]
    stage_ids = {int(v) for r in rows if r.kind == "stage" for v in (r.old_value, r.new_value) if v.isdigit()}
    if stage_ids:
        names = {s.pk: str(s) for s in Stage.objects.filter(pk__in=stage_ids)}
        for row in rows:
            if row.kind == "stage":
                row.old_label = names.get(int(row.old_value), "—") if row.old_value.isdigit() else row.old_value
                row.new_label = names.get(int(row.new_value), "—") if row.new_value.isdigit() else row.new_value
    return rows, (rows[-1].pk if more and rows else None)


def last_contact(client):
    """When someone last commented or added a sale on the client (the card's indicator)."""
    from .models import Activity

    return (
        Activity.objects.filter(client=client, kind__in=["comment", "sale"])
        .order_by("-pk").values_list("created_at", flat=True).first()
    )


def unread_count(user) -> int:
    from .models import Notification

    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_of(user, limit: int = 50) -> list:
    from .models import Notification

    return list(Notification.objects.filter(user=user).select_related("actor")[:limit])
