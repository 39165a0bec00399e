"""Writes to robots (admins: gate.CONFIGURE_ROBOTS), and the dry run, which writes nothing.

`data` for create and update is what robots.forms.RobotForm.robot_data() gives: name, trigger,
idle_minutes, conditions and actions in the JSON shapes robots.models documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import permissions as gate
from deals.models import Deal, Stage

from . import actions, conditions, engine, texts
from .models import Robot, Run

FIELDS = ("name", "trigger", "idle_minutes", "conditions", "actions")


def _configure(actor) -> None:
    gate.require(actor, gate.CONFIGURE_ROBOTS)


def _next_position(stage: Stage) -> int:
    last = Robot.objects.filter(stage=stage).aggregate(last=Max("position"))["last"]
    return 0 if last is None else last + 1


def _clean(data: dict) -> dict:
    values = {key: data[key] for key in FIELDS if key in data}
    if values.get("trigger") != Robot.Trigger.IDLE:
        values["idle_minutes"] = None
    if not values.get("actions"):
        raise ValidationError(_("A robot needs at least one action."))
    return values


@transaction.atomic
def robot_create(*, actor, stage: Stage, data: dict, apply_existing: bool = False) -> Robot:
    """A new robot, last in its stage. With `apply_existing`, the deals already in the stage are
    planned as if they had just entered it (engine.plan_existing), in the same transaction."""
    _configure(actor)
    robot = Robot.objects.create(stage=stage, position=_next_position(stage), created_by=actor, **_clean(data))
    if apply_existing:
        engine.plan_existing(robot)
    return robot


@transaction.atomic
def robot_update(*, actor, robot: Robot, data: dict) -> None:
    """Save the robot. Its timed runs waiting for the minutes follow the change: a new number of
    minutes moves their due time by the difference; a robot no longer timed cancels them."""
    _configure(actor)
    values = _clean(data)
    if robot.trigger == Robot.Trigger.IDLE:
        # (not those waiting for working hours: their due time is the opening, whatever the minutes)
        waiting = Run.objects.filter(robot=robot, state=Run.State.WAITING).filter(
            Q(detail__code__isnull=True) | ~Q(detail__code="hours"))
        if values.get("trigger") != Robot.Trigger.IDLE:
            waiting.update(state=Run.State.CANCELLED, finished_at=timezone.now(), detail={"code": "changed"})
        elif values.get("idle_minutes") != robot.idle_minutes:
            shift = timedelta(minutes=(values.get("idle_minutes") or 1) - (robot.idle_minutes or 1))
            waiting.update(due_at=F("due_at") + shift)
    Robot.objects.filter(pk=robot.pk).update(**values, modified_at=timezone.now())
    for key, value in values.items():
        setattr(robot, key, value)


@transaction.atomic
def robot_toggle(*, actor, robot: Robot, on: bool) -> bool:
    """Switch the robot on or off; False when it already was. Its pending runs are cancelled when
    they come up (the engine asks whether it is on)."""
    _configure(actor)
    changed = Robot.objects.filter(pk=robot.pk, is_active=not on).update(is_active=on, modified_at=timezone.now())
    robot.is_active = on
    return bool(changed)


def _renumber(ids: list[int], positions: dict[int, int]) -> None:
    """Positions 0, 1, … in the order of `ids`; only the robots whose place changed are written."""
    for position, pk in enumerate(ids):
        if positions.get(pk) != position:
            Robot.objects.filter(pk=pk).update(position=position)


def _stage_robots(stage_id: int) -> dict[int, int]:
    """The stage's robots (id → position) in order, locked: two reorders in a row do not interleave."""
    return dict(Robot.objects.select_for_update().filter(stage_id=stage_id).order_by("position", "pk")
                .values_list("pk", "position"))


@transaction.atomic
def robots_reorder(*, actor, stage: Stage, robot_ids: list[int]) -> None:
    """The stage's robots in the order given (every robot of the stage, each once)."""
    _configure(actor)
    current = _stage_robots(stage.pk)
    if sorted(current) != sorted(robot_ids) or len(set(robot_ids)) != len(robot_ids):
        raise ValidationError(_("The robots changed meanwhile: reload the page."))
    _renumber(robot_ids, current)


@transaction.atomic
def robot_move(*, actor, robot: Robot, up: bool) -> bool:
    """One place up or down within its stage; False at the edge."""
    _configure(actor)
    current = _stage_robots(robot.stage_id)
    ids = list(current)
    index = ids.index(robot.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(ids):
        return False
    ids[index], ids[other] = ids[other], ids[index]
    _renumber(ids, current)
    return True


@transaction.atomic
def robot_copy(*, actor, robot: Robot, stage: Stage) -> Robot:
    """A copy of the robot (name, trigger, conditions, actions, on / off) last in another stage of
    the same funnel."""
    _configure(actor)
    if stage.line.funnel_id != robot.stage.line.funnel_id:
        raise ValidationError(_("Choose a stage of the same funnel."))
    return Robot.objects.create(stage=stage, position=_next_position(stage), created_by=actor, name=robot.name,
                                trigger=robot.trigger, idle_minutes=robot.idle_minutes, conditions=robot.conditions,
                                actions=robot.actions, is_active=robot.is_active)


@transaction.atomic
def robot_delete(*, actor, robot: Robot) -> None:
    """The robot, its log and its suspensions go; what it did stays in the deals' feeds."""
    _configure(actor)
    Robot.objects.filter(pk=robot.pk).delete()


@transaction.atomic
def suspension_resume(*, actor, robot: Robot, deal: Deal) -> bool:
    """Let a robot suspended for a deal (it fired too often) fire for it again."""
    _configure(actor)
    return engine.resume(robot, deal)


# The dry run --------------------------------------------------------------------------------


@dataclass
class Check:
    label: str
    ok: bool


@dataclass
class DryRun:
    deal: Deal
    in_stage: bool
    checks: list[Check] = field(default_factory=list)
    failed: str = ""  # the label of the condition that stops it, as the engine would name it
    hours_open_at: datetime | None = None  # outside working hours: when they begin
    outcomes: list[str] = field(default_factory=list)

    @property
    def would_fire(self) -> bool:
        return not self.failed


# Which keys of Robot.conditions each condition reads (conditions.ORDER).
CONDITION_KEYS = {
    "channel": ("channels",),
    "tag": ("tags",),
    "responsible": ("responsibles",),
    "budget": ("budget_min", "budget_max"),
    "field": ("field", "field_value"),
}


def dry_run(*, actor, robot: Robot, deal: Deal) -> DryRun:
    """What the robot would do to the deal now: each condition it has, met or not (the first that
    fails is the one the log would name), working hours, and each action's outcome worded as the
    log words it. Nothing is written: the previews only read, and run in a transaction rolled
    back all the same."""
    _configure(actor)
    result = DryRun(deal=deal, in_stage=deal.stage_id == robot.stage_id)
    with transaction.atomic():
        given = robot.conditions or {}
        for code in conditions.ORDER:
            part = {key: given[key] for key in CONDITION_KEYS[code] if key in given}
            if not any(value not in (None, "", []) for value in part.values()):
                continue
            alone = Robot(stage=robot.stage, conditions=part)
            result.checks.append(Check(label=str(texts.CONDITION_LABELS[code]), ok=conditions.failed(alone, deal) is None))
        failing = conditions.failed(robot, deal)
        if failing:
            result.failed = str(texts.CONDITION_LABELS.get(failing, failing))
        result.hours_open_at = conditions.hours_open_at(robot, timezone.now())
        if result.hours_open_at is not None or given.get("hours_from") or given.get("hours_to") or given.get("days"):
            result.checks.append(Check(label=str(texts.CONDITION_LABELS["hours"]), ok=result.hours_open_at is None))
        result.outcomes = [texts.outcome_text(actions.preview(item, deal)) for item in robot.actions or []]
        transaction.set_rollback(True)
    return result
