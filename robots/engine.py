"""How robots fire (DESIGN §8): planned from events, run exactly once per entry, on time, no loops.

**Planning** (`on_events`, a crm.events listener, in the events' own transaction):
- a deal entering a stage gets a run of each active robot of the stage that fires on entry
  (queued) and of each timed robot (waiting, due N minutes later); its waiting runs of earlier
  entries are cancelled (it left that stage);
- an inbound message, a sale or a registration gets a run of the matching robots of the deal's
  current stage, keyed by the deal's current entry;
- any activity (a message in or out, a comment, a stage change) pushes the due time of the deal's
  waiting timed runs: "N minutes without activity" counts from the last of it.
Runs are inserted with ON CONFLICT DO NOTHING on (robot, deal, entry): a replayed event, or one
processed twice after a crash, plans nothing new. A robot fires at most once per entry.

**Claiming**: queued runs are claimed in batches with `SELECT … FOR UPDATE SKIP LOCKED` (several
workers drain at once). Beat's `sweep` (every 30 s) queues the waiting runs that are due (those of
a client with unprocessed events wait for them: activity may have pushed them), and takes back
runs whose worker died (claimed longer than STALE ago).

**Running** (`execute`): first the checks, which end the run without doing anything: the deal left
the stage or was deleted (cancelled), the robot was switched off, a condition failed (skipped,
naming it), outside working hours (waiting again, until they start), a chain of robots DEPTH_LIMIT
deep (stopped: loop), more than RATE_LIMIT firings for this deal in an hour (suspended for the
deal). Then each action in its own transaction, with the run's row locked and its `step` moved
on in the same transaction: a worker killed mid-run leaves every action done or undone, and the
run resumes at the first action not done. Side effects outside the database carry the run's key
(the message's idempotency key is derived from it).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from crm import activity, events, queueing
from crm.models import Activity, Event, Notification, User
from deals.models import Deal

from . import actions, conditions
from .models import Robot, Run, Suspension

log = logging.getLogger(__name__)

DEPTH_LIMIT = 5
RATE_LIMIT = 20  # firings of one robot for one deal within RATE_WINDOW
RATE_WINDOW = timedelta(hours=1)
STALE = timedelta(seconds=60)
DRAIN_BATCH = 50
DRAIN_SECONDS = 50.0
SWEEP_BATCH = 1000
KICK_KEY = "robots:drain"
KICK_SECONDS = 2
TRIGGER_OF: dict[str, str] = {Event.Kind.MESSAGE_IN: Robot.Trigger.MESSAGE_IN, Event.Kind.SALE: Robot.Trigger.SALE,
              Event.Kind.REGISTRATION: Robot.Trigger.REGISTRATION}


def entry_of(deal) -> datetime:
    """The deal's current stay in its stage (deals older than robots: since their creation)."""
    return deal.entered_at or deal.created_at


def idle_due(robot: Robot, since: datetime) -> datetime:
    return since + timedelta(minutes=robot.idle_minutes or 1)


# Planning ------------------------------------------------------------------------------------


def on_events(batch: list[Event]) -> None:
    now = timezone.now()
    entered = {}  # deal id -> its latest stage event in the batch
    for event in batch:
        if event.kind == Event.Kind.STAGE and event.deal_id:
            entered[event.deal_id] = event
    if entered:
        _cancel_left(entered, now)
    active = [e for e in batch if e.kind in events.ACTIVITY]
    if active:
        _push_timers(active)
    runs = _plan(batch, entered)
    if runs:
        Run.objects.bulk_create(runs, ignore_conflicts=True, batch_size=1000)
        if any(run.state == Run.State.QUEUED for run in runs):
            transaction.on_commit(kick)


def _cancel_left(entered: dict[int, Event], now: datetime) -> None:
    """A deal that entered a stage left its earlier one: that entry's waiting runs are cancelled."""
    waiting = Run.objects.filter(state=Run.State.WAITING, deal_id__in=list(entered)).values_list("pk", "deal_id", "entry")
    gone = [pk for pk, deal_id, entry in waiting if entry < entered[deal_id].at]
    if gone:
        Run.objects.filter(pk__in=gone, state=Run.State.WAITING).update(
            state=Run.State.CANCELLED, finished_at=now, detail={"code": "left"})


def _push_timers(active: list[Event]) -> None:
    """Activity on a deal (or its client's chat) starts its timed robots' minutes again."""
    latest: dict[tuple[str, int], datetime] = {}
    for event in active:
        key = ("deal", event.deal_id) if event.deal_id and event.kind == Event.Kind.STAGE else ("client", event.client_id)
        latest[key] = max(latest.get(key, event.at), event.at)
    if not Robot.objects.filter(is_active=True, trigger=Robot.Trigger.IDLE).exists():
        return
    client_ids = [pk for kind, pk in latest if kind == "client"]
    # The clients' deals first (by their index), then those deals' runs: never a walk over every
    # waiting run (100,000 of them take 160 ms to scan; this, a few ms).
    client_of = dict(Deal.objects.filter(client_id__in=client_ids).values_list("pk", "client_id")) if client_ids else {}
    deal_ids = {pk for kind, pk in latest if kind == "deal"} | set(client_of)
    waiting = (Run.objects.filter(state=Run.State.WAITING, robot__trigger=Robot.Trigger.IDLE, deal_id__in=deal_ids)
               .select_related("robot").only("pk", "due_at", "entry", "deal_id", "robot__idle_minutes"))
    changed = []
    for run in waiting:
        client = client_of.get(run.deal_id)
        since = max(latest.get(("deal", run.deal_id), run.entry), latest.get(("client", client), run.entry) if client else run.entry)
        due = idle_due(run.robot, since)
        if run.due_at is None or due > run.due_at:
            run.due_at = due
            changed.append(run)
    if changed:
        Run.objects.bulk_update(changed, ["due_at"])


def _plan(batch: list[Event], entered: dict[int, Event]) -> list[Run]:
    # The deals each event is about, and the stage and entry it concerns.
    targets: list[tuple[Event, int, int, datetime, str]] = []  # event, deal, stage, entry, trigger
    reactive = [e for e in batch if e.kind in TRIGGER_OF]
    for event in batch:
        if event.kind == Event.Kind.STAGE and event.deal_id and event.stage_id:
            targets.append((event, event.deal_id, event.stage_id, event.at, Robot.Trigger.ENTERED))
    if reactive:
        by_deal = {e.deal_id for e in reactive if e.deal_id}
        by_client = {e.client_id for e in reactive if not e.deal_id}
        deals = (Deal.objects.filter(deleted_at__isnull=True).filter(Q(pk__in=by_deal) | Q(client_id__in=by_client))
                 .values_list("pk", "client_id", "stage_id", "entered_at", "created_at"))
        of_client: dict[int, list[tuple]] = {}
        of_deal = {}
        for row in deals:
            of_client.setdefault(row[1], []).append(row)
            of_deal[row[0]] = row
        for event in reactive:
            rows = [of_deal[event.deal_id]] if event.deal_id in of_deal else of_client.get(event.client_id, []) if not event.deal_id else []
            for pk, _client, stage_id, entered_at, created_at in rows:
                targets.append((event, pk, stage_id, entered_at or created_at, TRIGGER_OF[event.kind]))
    if not targets:
        return []
    robots: dict[int, list[Robot]] = {}
    for robot in Robot.objects.filter(is_active=True, stage_id__in={t[2] for t in targets}).only(
            "pk", "stage_id", "trigger", "idle_minutes"):
        robots.setdefault(robot.stage_id, []).append(robot)
    runs = []
    for event, deal_id, stage_id, entry, trigger in targets:
        for robot in robots.get(stage_id, ()):
            if trigger == Robot.Trigger.ENTERED and robot.trigger == Robot.Trigger.IDLE:
                runs.append(Run(robot=robot, deal_id=deal_id, entry=entry, state=Run.State.WAITING, depth=event.depth,
                                due_at=idle_due(robot, entry)))
            elif robot.trigger == trigger:
                runs.append(Run(robot=robot, deal_id=deal_id, entry=entry, state=Run.State.QUEUED, depth=event.depth))
    return runs


def plan_existing(robot: Robot) -> int:
    """"Apply to deals already in the stage": a run for each live deal there now, as if it had just
    entered (a timed robot counts its minutes from now). Returns the number planned."""
    now = timezone.now()
    deals = Deal.objects.filter(stage_id=robot.stage_id, deleted_at__isnull=True).values_list("pk", "entered_at", "created_at")
    if robot.trigger == Robot.Trigger.IDLE:
        runs = [Run(robot=robot, deal_id=pk, entry=entered or created, state=Run.State.WAITING, due_at=idle_due(robot, now))
                for pk, entered, created in deals]
    else:
        runs = [Run(robot=robot, deal_id=pk, entry=entered or created, state=Run.State.QUEUED)
                for pk, entered, created in deals]
    Run.objects.bulk_create(runs, ignore_conflicts=True, batch_size=1000)
    if runs and robot.trigger != Robot.Trigger.IDLE:
        transaction.on_commit(kick)
    return len(runs)


# Claiming ------------------------------------------------------------------------------------


def kick(*, again: bool = False) -> None:
    from .tasks import robots_drain

    queueing.kick(KICK_KEY, robots_drain, again=again, seconds=KICK_SECONDS)


def claim(limit: int = DRAIN_BATCH) -> list[int]:
    now = timezone.now()
    with transaction.atomic():
        ids = list(Run.objects.select_for_update(skip_locked=True).filter(state=Run.State.QUEUED)
                   .order_by("pk").values_list("pk", flat=True)[:limit])
        if ids:
            Run.objects.filter(pk__in=ids).update(state=Run.State.RUNNING, claimed_at=now, attempts=F("attempts") + 1)
    return ids


def drain(*, time_budget: float = DRAIN_SECONDS, limit: int = DRAIN_BATCH) -> int:
    """Run queued runs until none is left; a full batch asks another worker to join."""
    def step() -> int:
        ids = claim(limit)
        if len(ids) == limit:
            kick()  # another worker may join (at most one more queued per KICK_SECONDS with Redis)
        execute_many(ids)
        return len(ids)

    return queueing.drain(step, key=KICK_KEY, limit=limit, seconds=time_budget, kick_again=lambda: kick(again=True))


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Beat, every 30 s: due timed runs are queued; runs of a dead worker are queued again."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(Run.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(state=Run.State.WAITING, due_at__lte=now).order_by("due_at")
                   .values_list("pk", "deal__client_id")[:SWEEP_BATCH])
        busy = events.pending_for_clients({client for _pk, client in due}) if due else set()
        ready = [pk for pk, client in due if client not in busy]
        if ready:
            Run.objects.filter(pk__in=ready).update(state=Run.State.QUEUED)
    with transaction.atomic():
        stale = list(Run.objects.select_for_update(skip_locked=True)
                     .filter(state=Run.State.RUNNING, claimed_at__lt=now - STALE).values_list("pk", flat=True)[:SWEEP_BATCH])
        if stale:
            Run.objects.filter(pk__in=stale).update(state=Run.State.QUEUED)
    left = Run.objects.filter(state=Run.State.QUEUED).exists()
    if ready or stale or left:
        kick(again=True)
    return {"due": len(ready), "stale": len(stale)}


# Running -------------------------------------------------------------------------------------


RELATED = ("robot", "robot__stage", "robot__stage__line", "robot__stage__line__funnel",
           "deal", "deal__client", "deal__stage", "deal__stage__line", "deal__responsible")


class _Taken(Exception):
    """Another executor did this step first (a run taken back from a worker thought dead): the
    step's transaction is rolled back and this executor stops."""


def execute_many(run_ids: list[int]) -> None:
    """Claimed runs, with what their checks read loaded once for all of them: the runs with their
    robots and deals (one query), the robots' recent firings per deal and their suspensions (two)."""
    runs = list(Run.objects.select_related(*RELATED).filter(pk__in=run_ids).order_by("pk"))
    if not runs:
        return
    since = timezone.now() - RATE_WINDOW
    robots, deals = {r.robot_id for r in runs}, {r.deal_id for r in runs}
    fired: dict[tuple[int, int], int] = {}
    for robot_id, deal_id in (Run.objects.filter(robot_id__in=robots, deal_id__in=deals, state=Run.State.DONE,
                                                 finished_at__gte=since).values_list("robot_id", "deal_id")):
        fired[robot_id, deal_id] = fired.get((robot_id, deal_id), 0) + 1
    suspended = set(Suspension.objects.filter(robot_id__in=robots, deal_id__in=deals).values_list("robot_id", "deal_id"))
    for run in runs:
        execute(run.pk, run=run, fired=fired.get((run.robot_id, run.deal_id), 0),
                suspended=(run.robot_id, run.deal_id) in suspended)


def execute(run_id: int, *, run: Run | None = None, fired: int | None = None, suspended: bool | None = None) -> str:
    """Run one claimed run to its end; returns its state. `run` (loaded with RELATED), `fired` and
    `suspended` may come from execute_many; otherwise they are read here."""
    try:
        return _execute(run or Run.objects.select_related(*RELATED).get(pk=run_id), fired, suspended)
    except Exception as error:  # an action failed: the run says so (an outage leaves it for the sweep)
        log.exception("robot run %s failed", run_id)
        return _fail(run_id, error)


def _execute(run: Run, fired: int | None, suspended: bool | None) -> str:
    if run.state != Run.State.RUNNING:
        return run.state
    robot, deal = run.robot, run.deal
    if run.step == 0:
        verdict = _check(run, robot, deal, fired, suspended)
        if verdict is not None:
            return verdict
    steps = robot.actions or []
    detail = run.detail or {}
    for index in range(run.step, len(steps)):
        if index > run.step:  # the deal as the previous action left it
            deal = Deal.objects.select_related("client", "stage", "stage__line", "responsible").get(pk=deal.pk)
        try:
            with transaction.atomic():
                with events.caused_by(run.depth + 1):
                    outcome = actions.perform(run, index, steps[index], deal)
                detail = {**detail, "done": [*detail.get("done", []), outcome]}
                changes = {"step": index + 1, "detail": detail}
                if index == len(steps) - 1:
                    changes.update(state=Run.State.DONE, finished_at=timezone.now())
                # The step moves on only from where this executor found it: the row's lock, taken by
                # this UPDATE, makes a second executor wait, then find the step done and roll back.
                if not Run.objects.filter(pk=run.pk, state=Run.State.RUNNING, step=index).update(**changes):
                    raise _Taken
                _feed(robot, deal, outcome)
        except _Taken:
            return Run.State.RUNNING
    if not steps:
        Run.objects.filter(pk=run.pk, state=Run.State.RUNNING).update(state=Run.State.DONE, finished_at=timezone.now())
    return Run.State.DONE


def _check(run: Run, robot: Robot, deal: Deal, fired: int | None = None, suspended: bool | None = None) -> str | None:
    """Whether the run may go on; if not, it is ended (or made to wait) and its state returned."""
    now = timezone.now()
    if deal.deleted_at is not None or deal.stage_id != robot.stage_id or entry_of(deal) != run.entry:
        return _end(run, Run.State.CANCELLED, {"code": "left"})
    if not robot.is_active:
        return _end(run, Run.State.CANCELLED, {"code": "off"})
    failed = conditions.failed(robot, deal)
    if failed is not None:
        return _end(run, Run.State.SKIPPED, {"code": "condition", "condition": failed})
    opens = conditions.hours_open_at(robot, now)
    if opens is not None:
        Run.objects.filter(pk=run.pk, state=Run.State.RUNNING).update(
            state=Run.State.WAITING, due_at=opens, detail={"code": "hours", "until": activity.utc_iso(opens)})
        return Run.State.WAITING
    if run.depth >= DEPTH_LIMIT:
        _stopped(run, robot, deal, "loop")
        return _end(run, Run.State.LOOP, {"code": "loop", "depth": run.depth})
    if suspended is None:
        suspended = Suspension.objects.filter(robot=robot, deal=deal).exists()
    if suspended:
        return _end(run, Run.State.SUSPENDED, {"code": "suspended"})
    if fired is None:
        fired = Run.objects.filter(robot=robot, deal=deal, state=Run.State.DONE, finished_at__gte=now - RATE_WINDOW).count()
    if fired >= RATE_LIMIT:
        try:
            with transaction.atomic():
                Suspension.objects.create(robot=robot, deal=deal)
                _stopped(run, robot, deal, "suspended")
        except IntegrityError:  # suspended meanwhile by another run
            pass
        return _end(run, Run.State.SUSPENDED, {"code": "suspended", "fired": fired})
    return None


def _end(run: Run, state: str, detail: dict) -> str:
    Run.objects.filter(pk=run.pk, state=Run.State.RUNNING).update(state=state, detail=detail, finished_at=timezone.now())
    return state


def _fail(run_id: int, error: Exception) -> str:
    message = (str(error) or error.__class__.__name__)[:500]
    with transaction.atomic():
        run = Run.objects.select_for_update().select_related("robot", "deal").filter(pk=run_id).first()
        if run is None or run.state != Run.State.RUNNING:
            return run.state if run else Run.State.FAILED
        Run.objects.filter(pk=run_id).update(state=Run.State.FAILED, finished_at=timezone.now(),
                                             detail={**run.detail, "code": "error", "error": message})
        _feed(run.robot, run.deal, {"code": "failed", "error": message})
    return Run.State.FAILED


def _feed(robot: Robot, deal: Deal, outcome: dict) -> None:
    """The deal's feed says what the robot did (worded when read: robots.texts)."""
    activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=None, kind=Activity.Kind.ROBOT,
                    field=outcome.get("code", "")[:40], field_label=robot.name, new=outcome.get("value", ""),
                    text=outcome.get("error", "") or outcome.get("text", ""))


def _stopped(run: Run, robot: Robot, deal: Deal, why: str) -> None:
    """A loop stopped or a robot suspended for a deal: on the deal's feed, and every admin is told."""
    _feed(robot, deal, {"code": why, "value": str(run.depth if why == "loop" else RATE_LIMIT)})
    for admin in admins():
        activity.notify(user=admin, kind=Notification.Kind.ROBOT, actor=None, url=deal.get_absolute_url(),
                        params={"about": why, "robot": robot.name, "deal_id": deal.pk, "deal": deal.name,
                                **activity.client_params(deal.client)})


def admins():
    """Who is told of a stopped robot: active users who may configure robots."""
    return (User.objects.filter(is_active=True)
            .filter(Q(is_superuser=True) | Q(role__group__permissions__codename="configure_robots",
                                             role__group__permissions__content_type__app_label="robots"))
            .distinct())


def resume(robot: Robot, deal: Deal) -> bool:
    """An admin lets a suspended robot fire for the deal again."""
    return Suspension.objects.filter(robot=robot, deal=deal).delete()[0] > 0


def message_key(run: Run, index: int) -> uuid.UUID:
    """The idempotency key of the message a run's action sends: the same on every attempt."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"voronka:robot-run:{run.pk}:{index}")
