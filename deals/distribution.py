"""Lead distribution (issue 14, DESIGN §3 "Shifts"): who receives a deal nobody is responsible for.

One rule decides who may receive a line's deals (`eligible`): on shift and not paused, active,
allowed to see deals and to open the line's funnel, a member of one of the line's teams when it
names any, and under the line's cap of open deals. The import, the quick deal, and later the inbox,
the API and robots all come through `assign_new` / `assign_many`; the queue is drained by `drain`.

Every decision is taken under the line's row lock (SELECT … FOR UPDATE on deals_line), in the
transaction that writes it: two deals created at once, or two managers starting a shift at once,
are served one after the other, so the round robin pointer and the caps are never read stale and
no queued deal is handed out twice.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from crm import activity
from crm import permissions as gate
from crm.models import Activity, Notification

from .models import Deal, Line, Shift, Stage

log = logging.getLogger(__name__)

QUEUE = "queue"  # the feed's word for "nobody eligible: it waits"
OFF = "off"  # distribution is off in the line: the deal stays without a responsible, outside any queue
HANDBACK = "handback"


@dataclass
class Candidate:
    pk: int
    name: str
    load: int = 0  # open deals in the line (stages that do not close a deal)


@dataclass
class Decision:
    """Who gets one deal and why: the feed entry and the notification say it."""

    assignee: Candidate | None
    mode: str  # Line.Distribution value, or QUEUE
    at_cap: list[str] = field(default_factory=list)  # those passed over because of the cap


def _role_holds(perm: str):
    app_label, codename = perm.split(".")
    return Exists(Permission.objects.filter(group__role__id=OuterRef("role_id"), content_type__app_label=app_label,
                                            codename=codename))


def _opens_funnel(funnel_id: int):
    """The gate's may_open_funnel as SQL over every user: funnel settings (the role), or
    deals.access_funnel granted on this funnel to the user or one of their groups (guardian)."""
    grant = {"permission__codename": "access_funnel", "permission__content_type__app_label": "deals",
             "object_pk": str(funnel_id)}
    return (_role_holds(gate.CONFIGURE_FUNNELS)
            | Exists(UserObjectPermission.objects.filter(user=OuterRef("pk"), **grant))
            | Exists(GroupObjectPermission.objects.filter(group__user=OuterRef("pk"), **grant)))


def _load(line: Line):
    """A user's open deals in the line, as a subquery: the board's counters (deals.StageLoad,
    exact by trigger) on PostgreSQL, the deals themselves elsewhere."""
    open_stages = Stage.objects.filter(line_id=line.pk, closes=False).values("pk")
    total: QuerySet
    if connection.vendor == "postgresql":
        from .models import StageLoad

        counted = StageLoad.objects.filter(responsible=OuterRef("pk"), stage_id__in=open_stages)
        total = counted.order_by().values("responsible").annotate(n=Sum("deals")).values("n")
    else:
        deals = Deal.objects.filter(responsible=OuterRef("pk"), stage_id__in=open_stages, deleted_at__isnull=True)
        total = deals.order_by().values("responsible").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(total, output_field=IntegerField()), Value(0))


def receivers(line: Line, *, on_shift: bool = True) -> QuerySet:
    """Users who may receive the line's deals, with their open deals in it (`load`), cap aside.
    on_shift=False: the same without the shift (who could, once they start one)."""
    User = get_user_model()
    qs = User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | (_role_holds(gate.VIEW_DEALS) & _opens_funnel(line.funnel_id))
    )
    if on_shift:
        qs = qs.filter(Exists(Shift.objects.filter(user=OuterRef("pk"), ended_at__isnull=True, paused_at__isnull=True)))
    teams = [team.pk for team in line.teams.all()]
    if teams:
        qs = qs.filter(team_id__in=teams)
    return qs.annotate(load=_load(line)).order_by("pk")


def eligible(line: Line) -> list[Candidate]:
    """Everyone who may receive a deal of the line now, under the cap or not (`decide` skips those
    at the cap, and says so)."""
    return [Candidate(pk=u.pk, name=str(u), load=u.load) for u in receivers(line)]


def may_receive(user, line: Line) -> bool:
    """The same rule for one user: on shift, not paused, active, allowed, under the cap."""
    found = receivers(line).filter(pk=user.pk).first()
    return found is not None and (line.cap is None or found.load < line.cap)


def decide(line: Line, candidates: list[Candidate], count: int) -> list[Decision]:
    """Who gets each of `count` deals, in order; moves line.served_last (the caller saves it) and
    the candidates' loads as it goes. Round robin: the next candidate after the one served last
    (by user id, wrapping), passing over those at the cap. Least loaded: the fewest open deals,
    ties broken in round robin order. Nobody under the cap: the deal waits (assignee None)."""
    if line.distribution == Line.Distribution.OFF:
        return [Decision(None, OFF) for _ in range(count)]
    if not candidates:
        return [Decision(None, QUEUE) for _ in range(count)]
    ring = sorted(candidates, key=lambda c: c.pk)
    decisions = []
    for _ in range(count):
        last = line.served_last_id or 0
        start = next((i for i, c in enumerate(ring) if c.pk > last), 0)
        order = ring[start:] + ring[:start]
        open_ = [c for c in order if line.cap is None or c.load < line.cap]
        at_cap = [c.name for c in order if c not in open_]
        if not open_:
            decisions.append(Decision(None, QUEUE, at_cap))
            continue
        if line.distribution == Line.Distribution.LEAST_LOADED:
            chosen = min(open_, key=lambda c: c.load)  # min keeps the first of equals: round robin order
        else:
            chosen = open_[0]
        chosen.load += 1
        line.served_last_id = chosen.pk
        decisions.append(Decision(chosen, line.distribution, at_cap))
    return decisions


def lock(line_id: int) -> Line:
    """The line, its row locked until the transaction ends: the one place distribution waits."""
    return Line.objects.select_for_update().select_related("funnel").get(pk=line_id)


# Writing the decisions ----------------------------------------------------------------------------


def _feed_rows(deals: list[Deal], decisions: list[Decision], line: Line, actor) -> list[Activity]:
    return [
        activity.entry(client_id=deal.client_id, deal_id=deal.pk, actor=actor, kind=Activity.Kind.ASSIGNED,
                       field=decision.mode, field_label=line.name, new=decision.assignee.name if decision.assignee else "",
                       text="; ".join(decision.at_cap))
        for deal, decision in zip(deals, decisions, strict=True)
    ]


def _notify(deals: list[Deal], decisions: list[Decision], line: Line, actor) -> None:
    """One notification per manager who received something: the deal, or how many."""
    received: dict[int, list[Deal]] = defaultdict(list)
    for deal, decision in zip(deals, decisions, strict=True):
        if decision.assignee is not None:
            received[decision.assignee.pk].append(deal)
    rows = []
    for user_id, theirs in received.items():
        if actor is not None and actor.pk == user_id:
            continue  # nobody is told of their own doing
        first = theirs[0]
        # the line's stored name: a default one ("1st line") is translated when read
        params = {"about": "distributed", "n": len(theirs), "line": line.name, "deal_id": first.pk, "deal": first.name}
        url = first.get_absolute_url() if len(theirs) == 1 else line.funnel.get_absolute_url() + f"?line={line.pk}"
        rows.append(Notification(user_id=user_id, kind=Notification.Kind.ASSIGNED, actor=actor, params=params, url=url))
    Notification.objects.bulk_create(rows)


def _client_follows(deals: list[Deal], decisions: list[Decision], previous: dict[int, int | None]) -> None:
    """A client nobody is responsible for, or whose responsible was the deal's previous one, goes
    with the deal: the manager who receives it can open the client to work it."""
    from clients.models import Client

    by_user: dict[int | None, list[int]] = defaultdict(list)
    for deal, decision in zip(deals, decisions, strict=True):
        if decision.assignee is not None:
            by_user[decision.assignee.pk].append(deal.pk)
    for user_id, deal_ids in by_user.items():
        for before, ids in _group_by(deal_ids, previous).items():
            clients = Deal.objects.filter(pk__in=ids).values("client_id")
            who = Q(responsible__isnull=True) if before is None else Q(responsible__isnull=True) | Q(responsible_id=before)
            Client.objects.filter(who, pk__in=clients).update(responsible_id=user_id)


def _group_by(deal_ids, previous) -> dict:
    groups: dict = defaultdict(list)
    for pk in deal_ids:
        groups[previous.get(pk)].append(pk)
    return groups


def assign_new(deal: Deal, *, line: Line | None = None, actor=None) -> Decision:
    """Before a new deal without a responsible is saved: decide who gets it (or queue it) and set
    its fields; `after_insert` writes the rest once it has its id. Call inside the transaction
    that saves it: the line stays locked until it commits."""
    line = lock(line.pk if line else deal.stage.line_id)
    decision = decide(line, eligible(line), 1)[0]
    _apply_to_unsaved(deal, decision)
    deal._distribution = (line, decision)  # type: ignore[attr-defined]  # read by after_insert
    return decision


def _apply_to_unsaved(deal: Deal, decision: Decision) -> None:
    now = timezone.now()
    deal.responsible_id = decision.assignee.pk if decision.assignee else None
    deal.assigned_at = now if decision.assignee else None
    deal.queued_at = now if decision.mode == QUEUE else None


def after_insert(deals: list[Deal], *, actor=None, previous: dict[int, int | None] | None = None) -> None:
    """The feed entries, notifications, client hand-over and round robin pointer of deals that
    assign_new / assign_many decided, now saved. `previous`: deal id → who the client's
    responsible stands for (an import's new clients are the importer's until their deal is given)."""
    by_line: dict[int, tuple[Line, list[Deal], list[Decision]]] = {}
    for deal in deals:
        planned = getattr(deal, "_distribution", None)
        if planned is None:
            continue
        line, decision = planned
        by_line.setdefault(line.pk, (line, [], []))
        by_line[line.pk][1].append(deal)
        by_line[line.pk][2].append(decision)
    for line, line_deals, decisions in by_line.values():
        _record(line, line_deals, decisions, actor, previous=previous or {})


def assign_many(deals: list[Deal], line: Line, *, actor=None) -> list[Decision]:
    """assign_new for many unsaved deals of one line (an import chunk): one lock, one read of who
    is eligible. Call after_insert once they are saved."""
    line = lock(line.pk)
    decisions = decide(line, eligible(line), len(deals))
    for deal, decision in zip(deals, decisions, strict=True):
        _apply_to_unsaved(deal, decision)
        deal._distribution = (line, decision)  # type: ignore[attr-defined]
    return decisions


def _record(line: Line, deals: list[Deal], decisions: list[Decision], actor, previous: dict[int, int | None]) -> None:
    Line.objects.filter(pk=line.pk).update(served_last_id=line.served_last_id)
    activity.record_many(_feed_rows(deals, decisions, line, actor))
    _notify(deals, decisions, line, actor)
    _client_follows(deals, decisions, previous)


def _reassign(line: Line, deals: list[Deal], decisions: list[Decision], actor, previous: dict[int, int | None]) -> None:
    """Write decisions about deals already saved (the queue, the deals handed back)."""
    now = timezone.now()
    groups: dict[int | str, list[int]] = defaultdict(list)
    for deal, decision in zip(deals, decisions, strict=True):
        groups[decision.assignee.pk if decision.assignee else decision.mode].append(deal.pk)
    for user_id, ids in groups.items():
        if user_id == QUEUE:  # waits (a deal handed back joins the queue now; a queued one keeps its place)
            Deal.objects.filter(pk__in=ids).update(responsible_id=None, assigned_at=None,
                                                   queued_at=Coalesce("queued_at", Value(now)), modified_at=now)
        elif user_id == OFF:
            Deal.objects.filter(pk__in=ids).update(responsible_id=None, assigned_at=None, queued_at=None, modified_at=now)
        else:
            Deal.objects.filter(pk__in=ids).update(responsible_id=user_id, assigned_at=now, queued_at=None, modified_at=now)
    _record(line, deals, decisions, actor, previous)


# The queue -------------------------------------------------------------------------------------


def queued(line: Line) -> QuerySet:
    """The line's queue, first in first out."""
    return Deal.objects.filter(stage__line_id=line.pk, queued_at__isnull=False, responsible__isnull=True,
                               deleted_at__isnull=True).order_by("queued_at", "pk")


def drain(line_id: int, *, actor=None) -> int:
    """Hand the line's queued deals, oldest first, to those eligible now, as far as their caps
    allow. Returns how many were handed out. Idempotent; safe to call from any process at any time."""
    with transaction.atomic():
        line = lock(line_id)
        if line.distribution == Line.Distribution.OFF:
            return 0
        candidates = eligible(line)
        if line.cap is None:
            room = None if candidates else 0
        else:
            room = sum(max(0, line.cap - c.load) for c in candidates)
        if room == 0:
            return 0
        waiting = queued(line).select_related(None).only("pk", "client_id", "name", "stage_id")
        deals = list((waiting[:room] if room is not None else waiting).select_for_update(of=("self",)))
        if not deals:
            return 0
        decisions = decide(line, candidates, len(deals))
        _reassign(line, deals, decisions, actor, previous={})
        return sum(1 for d in decisions if d.assignee)


def lines_with_queue() -> list[int]:
    return list(
        Line.objects.exclude(distribution=Line.Distribution.OFF)
        .filter(Exists(Deal.objects.filter(stage__line=OuterRef("pk"), queued_at__isnull=False, responsible__isnull=True,
                                           deleted_at__isnull=True)))
        .values_list("pk", flat=True)
    )


def drain_all(*, actor=None) -> int:
    """Every line with a queue (a shift started or resumed; the beat's sweep)."""
    return sum(drain(line_id, actor=actor) for line_id in lines_with_queue())


def drain_after_commit(line_id: int | None) -> None:
    """A deal left a manager's open deals (moved, closed, deleted, reassigned): once that commits,
    the line's queue gets the room. A failure here is logged; the beat's sweep drains again."""
    if line_id is None:
        return

    def run():
        try:
            if queued(Line(pk=line_id)).exists():
                drain(line_id)
        except Exception:
            log.exception("draining the queue of line %s failed", line_id)

    transaction.on_commit(run)


# The end of a shift -------------------------------------------------------------------------------


def not_worked(user, lines: list[int]) -> QuerySet:
    """The user's deals in these lines that received no stage change and no outbound message since
    they were assigned to them."""
    since = OuterRef("assigned_at")
    moved = Activity.objects.filter(deal_id=OuterRef("pk"), kind=Activity.Kind.STAGE, created_at__gte=since)
    written = Activity.objects.filter(client_id=OuterRef("client_id"), kind=Activity.Kind.MESSAGE, created_at__gte=since)
    return Deal.objects.filter(responsible=user, stage__line_id__in=lines, deleted_at__isnull=True,
                               assigned_at__isnull=False).exclude(Exists(moved)).exclude(Exists(written))


def hand_back(user, *, actor=None) -> int:
    """At the end of the user's shift: in every line that says so, their deals not yet worked go to
    the next eligible manager, or back to the queue. Call after the shift is closed (they are no
    longer eligible). Returns how many deals left them."""
    lines = list(Line.objects.filter(shift_end=Line.ShiftEnd.HAND_BACK).values_list("pk", flat=True))
    moved = 0
    for line_id in lines:
        with transaction.atomic():
            line = lock(line_id)
            deals = list(not_worked(user, [line_id]).order_by("assigned_at", "pk").select_for_update(of=("self",))
                         .only("pk", "client_id", "name", "stage_id"))
            if not deals:
                continue
            activity.record_many([
                activity.entry(client_id=d.client_id, deal_id=d.pk, actor=actor, kind=Activity.Kind.ASSIGNED,
                               field=HANDBACK, field_label=line.name, old=str(user))
                for d in deals
            ])
            decisions = decide(line, eligible(line), len(deals))
            _reassign(line, deals, decisions, actor, previous={d.pk: user.pk for d in deals})
            moved += len(deals)
    return moved
