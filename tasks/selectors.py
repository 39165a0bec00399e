"""Reads for tasks. Every queryset starts from the permission gate."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Case, Count, Q, Value, When
from django.utils import timezone

# "<ISO moment>_<pk>": the clients table's cursor parser, not a second copy of it
from clients.selectors import _cursor as deadline_cursor
from crm import permissions as gate

from .models import Task, TaskType

PAGE = 50
VIEWS = ("mine", "today", "overdue", "all")
OPEN = Task.Status.OPEN


def task_types() -> list[TaskType]:
    return list(TaskType.objects.all())


def day_bounds(day):
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


@dataclass
class TaskPage:
    rows: list
    view: str
    next_cursor: str | None = None
    prev_cursor: str | None = None


def task_cursor(task) -> str:
    """Where a page ends: "<status>_<deadline ISO>_<pk>" (the All view sorts open tasks first)."""
    return f"{task.status}_{task.deadline.isoformat()}_{task.pk}"


def _task_cursor(value: str | None) -> tuple[str, datetime, int] | None:
    """Parse task_cursor's form; anything malformed means the first page."""
    status, _sep, rest = (value or "").partition("_")
    parsed = deadline_cursor(rest) if status in Task.Status.values else None
    return (status, *parsed) if parsed else None


def _beyond(cursor: tuple[str, datetime, int], *, grouped: bool, forward: bool) -> Q:
    """The tasks after (forward) or before the cursor in the list's order: (deadline, pk), or
    (open first, deadline, pk) when grouped. Without grouping the condition is a plain range on
    deadline, which the deadline indexes serve."""
    status, moment, pk = cursor
    if forward:
        beyond = Q(deadline__gt=moment) | Q(deadline=moment, pk__gt=pk)
    else:
        beyond = Q(deadline__lt=moment) | Q(deadline=moment, pk__lt=pk)
    if not grouped:
        return beyond
    is_open, is_done = Q(status=OPEN), ~Q(status=OPEN)
    if status == OPEN:
        return is_done | (is_open & beyond) if forward else is_open & beyond
    return is_done & beyond if forward else is_open | (is_done & beyond)


def tasks_section(user, params) -> TaskPage:
    """One page of the tasks section: Mine, Today, Overdue, All (by permission), filtered,
    deadline first, keyset-paginated by ?after= / ?before= (task_cursor)."""
    view = params.get("view") if params.get("view") in VIEWS else "mine"
    now = timezone.now()
    qs = gate.visible_tasks(user).select_related("client", "type", "responsible")
    if view == "mine":
        qs = qs.filter(responsible=user, status=OPEN)
    elif view == "today":
        start, end = day_bounds(timezone.localdate())
        qs = qs.filter(status=OPEN, deadline__gte=start, deadline__lt=end)
    elif view == "overdue":
        qs = qs.filter(status=OPEN, deadline__lt=now)
    if params.get("type", "").isdigit():
        qs = qs.filter(type_id=int(params["type"]))
    if params.get("responsible", "").isdigit():
        qs = qs.filter(responsible_id=int(params["responsible"]))
    for key, lookup in (("from", "deadline__gte"), ("to", "deadline__lt")):
        value = params.get(key, "")
        try:
            day = datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            continue
        start, end = day_bounds(day)
        qs = qs.filter(**{lookup: start if key == "from" else end})

    grouped = view == "all"  # open tasks first, then done ones
    order = ["deadline", "pk"]
    if grouped:
        qs = qs.annotate(is_done=Case(When(status=OPEN, then=Value(0)), default=Value(1)))
        order = ["is_done", *order]
    after, before = _task_cursor(params.get("after")), _task_cursor(params.get("before"))
    if before:
        # The page before the cursor: read backwards, then put it back in the list's order.
        reverse = [f"-{field}" for field in order]
        rows = list(qs.filter(_beyond(before, grouped=grouped, forward=False)).order_by(*reverse)[: PAGE + 1])
        more_before, more_after = len(rows) > PAGE, True
        rows = rows[:PAGE][::-1]
    else:
        if after:
            qs = qs.filter(_beyond(after, grouped=grouped, forward=True))
        rows = list(qs.order_by(*order)[: PAGE + 1])
        more_before, more_after = after is not None, len(rows) > PAGE
        rows = rows[:PAGE]
    for task in rows:
        task.is_overdue = task.status == OPEN and task.deadline < now
    return TaskPage(
        rows=rows,
        view=view,
        next_cursor=task_cursor(rows[-1]) if rows and more_after else None,
        prev_cursor=task_cursor(rows[0]) if rows and more_before else None,
    )


def task_counts(user) -> dict:
    """The navigation's counts: the user's open tasks and how many of them are overdue (one query)."""
    if not gate.can(user, gate.VIEW_TASKS):
        return {"open": 0, "overdue": 0}
    now = timezone.now()
    return Task.objects.filter(responsible=user, status=Task.Status.OPEN, client__deleted_at__isnull=True).aggregate(
        open=Count("pk"), overdue=Count("pk", filter=Q(deadline__lt=now))
    )


def client_tasks(user, client) -> list:
    if not gate.can(user, gate.VIEW_TASKS):
        return []
    now = timezone.now()
    rows = list(gate.visible_tasks(user).filter(client=client).select_related("type", "responsible")
                .order_by("status", "deadline")[:50])
    for task in rows:
        task.is_overdue = task.status == Task.Status.OPEN and task.deadline < now
    return rows


def type_or_404(pk) -> TaskType:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(TaskType, pk=pk)
