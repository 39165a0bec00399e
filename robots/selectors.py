"""Reads for the robots' pages (admins only: the views ask the gate before any of these).

The Robots view is the board's columns with each stage's robots: one query for the robots of the
line (with the time each last fired, from one grouped subquery), and the names their conditions
and actions point at (tags, users, lines, task types, fields) read once for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Max, Q
from django.http import Http404

from clients.models import CustomField, Tag
from crm.models import User
from deals.models import Funnel, Line, Stage

from .models import Robot, Run, Suspension

LOG_PAGE = 30


def robot_or_404(funnel: Funnel, pk) -> Robot:
    """A robot of this funnel (a robot of another funnel in the URL is missing: 404)."""
    robot = (Robot.objects.select_related("stage__line__funnel")
             .filter(pk=pk, stage__line__funnel=funnel).first())
    if robot is None:
        raise Http404
    return robot


def stage_or_404(funnel: Funnel, pk) -> Stage:
    stage = Stage.objects.select_related("line__funnel").filter(pk=pk, line__funnel=funnel).first()
    if stage is None:
        raise Http404
    return stage


def robots_of(stages: list[Stage]) -> dict[int, list[Robot]]:
    """Each stage's robots in order, with `last_fired` (their newest finished firing), in one query."""
    by_stage: dict[int, list[Robot]] = {stage.pk: [] for stage in stages}
    robots = (Robot.objects.filter(stage__in=[stage.pk for stage in stages])
              .annotate(last_fired=Max("runs__finished_at", filter=Q(runs__state=Run.State.DONE)))
              .order_by("stage_id", "position", "pk"))
    stage_of = {stage.pk: stage for stage in stages}
    for robot in robots:
        robot.stage = stage_of[robot.stage_id]  # known already: no query per robot
        by_stage[robot.stage_id].append(robot)
    return by_stage


@dataclass
class Names:
    """What the robots' conditions and actions name, by id: read once for a page."""

    stages: dict[int, str] = field(default_factory=dict)
    lines: dict[int, str] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    task_types: dict[int, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def _ids(values) -> set[int]:
    return {int(v) for v in values if str(v).isdigit() and int(v)}


def names_for(robots: list[Robot], *, stages: list[Stage], lines: list[Line]) -> Names:
    """The names a set of robots refers to: the funnel's stages and lines are given; the rest is
    read in one query per kind of thing, only for the ids the robots use."""
    from tasks.models import TaskType

    tag_ids: set[int] = set()
    user_ids: set[int] = set()
    type_ids: set[int] = set()
    field_keys: set[str] = set()
    for robot in robots:
        c = robot.conditions or {}
        tag_ids |= _ids(c.get("tags") or [])
        user_ids |= _ids(c.get("responsibles") or [])
        if c.get("field"):
            field_keys.add(str(c["field"]))
        for action in robot.actions or []:
            tag_ids |= _ids([action.get("tag")])
            user_ids |= _ids([action.get("user"), *(action.get("users") or [])])
            type_ids |= _ids([action.get("task_type")])
    names = Names(stages={s.pk: str(s) for s in stages}, lines={line.pk: str(line) for line in lines})
    if tag_ids:
        names.tags = dict(Tag.objects.filter(pk__in=tag_ids).values_list("pk", "name"))
    if user_ids:
        names.users = {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids)}
    if type_ids:
        names.task_types = {t.pk: str(t) for t in TaskType.objects.filter(pk__in=type_ids)}
    field_pks = _ids(key.removeprefix("cf_") for key in field_keys)
    if field_pks:
        names.fields = {f"cf_{pk}": label for pk, label in CustomField.objects.filter(pk__in=field_pks).values_list("pk", "label")}
    return names


def log_page(robot: Robot, *, before: str | None) -> tuple[list[Run], str | None]:
    """The robot's runs, newest first, LOG_PAGE at a time (keyset on the id: run_log_idx), with the
    deal of each; and the cursor of the next page, or None."""
    qs = Run.objects.filter(robot=robot).select_related("deal").order_by("-id")
    if before and before.isdigit():
        qs = qs.filter(id__lt=int(before))
    runs = list(qs[:LOG_PAGE + 1])
    more = len(runs) > LOG_PAGE
    runs = runs[:LOG_PAGE]
    return runs, (str(runs[-1].pk) if more and runs else None)


def suspensions_of(robot: Robot) -> list[Suspension]:
    return list(Suspension.objects.filter(robot=robot).select_related("deal").order_by("-created_at"))
