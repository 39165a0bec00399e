"""Reads for tasks. Every queryset starts from the permission gate."""

from datetime import datetime, time, timedelta

from django.db.models import Case, Count, Q, Value, When
from django.utils import timezone

from crm import permissions as gate

from .models import BulkTaskJob, Task, TaskType

PAGE = 50
VIEWS = ("mine", "today", "overdue", "all")


def task_types() -> list[TaskType]:
    return list(TaskType.objects.all())


def day_bounds(day):
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def tasks_section(user, params) -> tuple[list, str]:
    """The tasks section: Mine, Today, Overdue, All (by permission), filtered, deadline first."""
    view = params.get("view") if params.get("view") in VIEWS else "mine"
    now = timezone.now()
    qs = gate.visible_tasks(user).select_related("client", "type", "responsible")
    if view == "mine":
        qs = qs.filter(responsible=user, status=Task.Status.OPEN)
    elif view == "today":
        start, end = day_bounds(timezone.localdate())
        qs = qs.filter(status=Task.Status.OPEN, deadline__gte=start, deadline__lt=end)
    elif view == "overdue":
        qs = qs.filter(status=Task.Status.OPEN, deadline__lt=now)
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
    if view == "all":  # open tasks first, then done ones
        qs = qs.annotate(is_done=Case(When(status=Task.Status.OPEN, then=Value(0)), default=Value(1)))
        rows = list(qs.order_by("is_done", "deadline", "pk")[:PAGE])
    else:
        rows = list(qs.order_by("deadline", "pk")[:PAGE])
    for task in rows:
        task.is_overdue = task.status == Task.Status.OPEN and task.deadline < now
    return rows, view


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


def job_for(user, pk) -> BulkTaskJob:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(BulkTaskJob, pk=pk, created_by=user)


def type_or_404(pk) -> TaskType:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(TaskType, pk=pk)
