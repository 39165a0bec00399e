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

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from crm import activity
from crm import permissions as gate
from crm.models import Activity, Notification, Role

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


# Who may receive a line's deals, as one statement written by hand: the ORM's version of it (four
# correlated EXISTS over guardian's and the roles' tables) cost PostgreSQL 7 ms to plan on every
# deal, ten times what it takes to run. Tested equal to the gate (test_funnel_access_is_the_gates_rule).
RECEIVERS_SQL = """
WITH perm AS (SELECT p.id, p.codename FROM {permission} p JOIN {content_type} ct ON ct.id = p.content_type_id
               WHERE ct.app_label = 'deals' AND p.codename IN (%(view)s, %(configure)s, %(access)s))
SELECT u.id, u.first_name, u.last_name, u.username, {open_deals} AS open_deals
  FROM {user} u
  JOIN {shift} s ON s.user_id = u.id AND s.ended_at IS NULL AND s.paused_at IS NULL
 WHERE u.is_active {only_user}
   AND (u.is_superuser OR (
        EXISTS (SELECT 1 FROM {role} r JOIN {group_perm} gp ON gp.group_id = r.group_id
                 WHERE r.id = u.role_id AND gp.permission_id = (SELECT id FROM perm WHERE codename = %(view)s))
        AND (EXISTS (SELECT 1 FROM {role} r JOIN {group_perm} gp ON gp.group_id = r.group_id
                      WHERE r.id = u.role_id AND gp.permission_id = (SELECT id FROM perm WHERE codename = %(configure)s))
             OR EXISTS (SELECT 1 FROM {user_grant} g WHERE g.user_id = u.id AND g.object_pk = %(funnel)s
                           AND g.permission_id = (SELECT id FROM perm WHERE codename = %(access)s))
             OR EXISTS (SELECT 1 FROM {group_grant} g JOIN {user_group} ug ON ug.group_id = g.group_id
                         WHERE ug.user_id = u.id AND g.object_pk = %(funnel)s
                           AND g.permission_id = (SELECT id FROM perm WHERE codename = %(access)s)))))
   AND (NOT EXISTS (SELECT 1 FROM {line_team} lt WHERE lt.line_id = %(line)s)
        OR u.team_id IN (SELECT lt.team_id FROM {line_team} lt WHERE lt.line_id = %(line)s))
 ORDER BY u.id
"""
# A user's open deals in the line: the board's counters (deals.StageLoad, exact by trigger) on
# PostgreSQL, the deals themselves elsewhere.
LOAD_COUNTED = """COALESCE((SELECT sum(c.deals) FROM {load} c WHERE c.responsible_id = u.id AND c.stage_id IN
    (SELECT st.id FROM {stage} st WHERE st.line_id = %(line)s AND NOT st.closes)), 0)"""
LOAD_AGGREGATED = """(SELECT count(*) FROM {deal} d WHERE d.responsible_id = u.id AND d.deleted_at IS NULL AND d.stage_id IN
    (SELECT st.id FROM {stage} st WHERE st.line_id = %(line)s AND NOT st.closes))"""

def _receivers(line: Line, user_id: int | None = None) -> list[Candidate]:
    from .models import StageLoad

    User = get_user_model()
    tables = {
        "user": User._meta.db_table, "shift": Shift._meta.db_table, "role": Role._meta.db_table,
        "group_perm": Group.permissions.through._meta.db_table, "user_grant": UserObjectPermission._meta.db_table,
        "group_grant": GroupObjectPermission._meta.db_table, "user_group": User.groups.through._meta.db_table,
        "line_team": Line.teams.through._meta.db_table, "stage": Stage._meta.db_table, "deal": Deal._meta.db_table,
        "load": StageLoad._meta.db_table, "permission": Permission._meta.db_table,
        "content_type": ContentType._meta.db_table,
    }
    load = (LOAD_COUNTED if connection.vendor == "postgresql" else LOAD_AGGREGATED).format(**tables)
    sql = RECEIVERS_SQL.format(open_deals=load, only_user="AND u.id = %(user)s" if user_id else "", **tables)
    codes = {key: perm.split(".")[1] for key, perm in
             (("view", gate.VIEW_DEALS), ("configure", gate.CONFIGURE_FUNNELS), ("access", gate.ACCESS_FUNNEL))}
    params = {**codes, "funnel": str(line.funnel_id), "line": line.pk, "user": user_id}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [Candidate(pk=pk, name=f"{first} {last}".strip() or username, load=int(load or 0))
            for pk, first, last, username, load in rows]


def eligible(line: Line) -> list[Candidate]:
    """Everyone who may receive a deal of the line now: on shift and not paused, active, allowed to
    see deals and to open the funnel (the role's permissions, or guardian's access_funnel granted to
    them or one of their groups), in one of the line's teams when it names any; each with their open
    deals in the line. The cap is `decide`'s to apply (it says whom it passed over)."""
    return _receivers(line)


def may_receive(user, line: Line) -> bool:
    """The same rule for one user, the cap included."""
    found = _receivers(line, user.pk)
    return bool(found) and (line.cap is None or found[0].load < line.cap)


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
    """The line, its row locked until the transaction ends: the one place distribution waits.
    Written by hand: it runs for every distributed deal, and the ORM's compiling cost more than it."""
    quoted = ", ".join(connection.ops.quote_name(field.column or field.attname) for field in Line._meta.concrete_fields)
    sql = f"SELECT {quoted} FROM {connection.ops.quote_name(Line._meta.db_table)} WHERE id = %s"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [line_id])
        row = cursor.fetchone()
    if row is None:
        raise Line.DoesNotExist(f"line {line_id}")
    return Line.from_db(connection.alias, [field.attname for field in Line._meta.concrete_fields], row)


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
        url = first.get_absolute_url() if len(theirs) == 1 else reverse("deals:board", args=[line.funnel_id]) + f"?line={line.pk}"
        rows.append(Notification(user_id=user_id, kind=Notification.Kind.ASSIGNED, actor=actor, params=params, url=url))
    Notification.objects.bulk_create(rows)


def _client_follows(deals: list[Deal], decisions: list[Decision], previous: dict[int, int | None]) -> None:
    """A client nobody is responsible for, or whose responsible was the deal's previous one, goes
    with the deal: the manager who receives it can open the client to work it."""
    from clients.models import Client

    groups: dict[tuple[int, int | None], set[int]] = defaultdict(set)  # (new owner, previous) → clients
    for deal, decision in zip(deals, decisions, strict=True):
        if decision.assignee is not None:
            groups[(decision.assignee.pk, previous.get(deal.pk))].add(deal.client_id)
    for (user_id, before), client_ids in groups.items():
        who = Q(responsible__isnull=True) if before is None else Q(responsible__isnull=True) | Q(responsible_id=before)
        Client.objects.filter(who, pk__in=sorted(client_ids)).update(responsible_id=user_id)


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


# One deal's decision written in one statement on PostgreSQL (a new deal is the common case: the
# inbox, a form, the quick deal): the round robin pointer, the feed entry saying why, the
# notification and the client handed over, where four statements cost four round trips.
RECORD_ONE_SQL = """
WITH pointer AS (UPDATE {line} SET served_last_id = %(served)s WHERE id = %(line)s RETURNING 1),
feed AS (INSERT INTO {activity} (client_id, deal_id, actor_id, kind, field, field_label, old_value, new_value, text, created_at)
         VALUES (%(client)s, %(deal)s, %(actor)s, %(kind)s, %(mode)s, %(label)s, '', %(who)s, %(at_cap)s, %(now)s) RETURNING 1),
told AS (INSERT INTO {notification} (user_id, kind, actor_id, text, params, url, created_at)
         SELECT %(assignee)s, %(notice)s, %(actor)s, '', %(params)s, %(url)s, %(now)s WHERE %(notify)s RETURNING 1),
follows AS (UPDATE {client} SET responsible_id = %(assignee)s
             WHERE id = %(client)s AND %(assigned)s AND (responsible_id IS NULL OR responsible_id = %(before)s) RETURNING 1)
SELECT (SELECT count(*) FROM pointer), (SELECT count(*) FROM feed), (SELECT count(*) FROM told), (SELECT count(*) FROM follows)
"""


def _record_one(line: Line, deal: Deal, decision: Decision, actor, before: int | None) -> None:
    from clients.models import Client

    assignee = decision.assignee.pk if decision.assignee else None
    notify = assignee is not None and not (actor is not None and actor.pk == assignee)
    params = {"about": "distributed", "n": 1, "line": line.name, "deal_id": deal.pk, "deal": deal.name}
    sql = RECORD_ONE_SQL.format(line=Line._meta.db_table, activity=Activity._meta.db_table,
                                notification=Notification._meta.db_table, client=Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, {
            "served": line.served_last_id, "line": line.pk, "client": deal.client_id, "deal": deal.pk,
            "actor": actor.pk if actor is not None else None, "kind": Activity.Kind.ASSIGNED, "mode": decision.mode,
            "label": line.name[:60], "who": decision.assignee.name if decision.assignee else "",
            "at_cap": "; ".join(decision.at_cap), "now": timezone.now(), "assignee": assignee,
            "notice": Notification.Kind.ASSIGNED, "params": json.dumps(params), "url": deal.get_absolute_url(),
            "notify": notify, "assigned": assignee is not None, "before": before,
        })


def _record(line: Line, deals: list[Deal], decisions: list[Decision], actor, previous: dict[int, int | None]) -> None:
    if len(deals) == 1 and connection.vendor == "postgresql":
        _record_one(line, deals[0], decisions[0], actor, previous.get(deals[0].pk))
        return
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


DRAIN_BATCH = 500  # deals handed out per transaction: a long queue does not hold the line's lock for seconds


def drain(line_id: int, *, actor=None) -> int:
    """Hand the line's queued deals, oldest first, to those eligible now, as far as their caps
    allow, DRAIN_BATCH at a time (each batch its own transaction: a deal created meanwhile waits
    for one batch, not for the whole queue). Returns how many were handed out. Idempotent; safe to
    call from any process at any time."""
    handed = 0
    while True:
        batch, more = _drain_batch(line_id, actor)
        handed += batch
        if not more:
            return handed


def _drain_batch(line_id: int, actor) -> tuple[int, bool]:
    """One batch: (deals handed out, whether another batch may find room)."""
    with transaction.atomic():
        line = lock(line_id)
        if line.distribution == Line.Distribution.OFF:
            return 0, False
        candidates = eligible(line)
        if line.cap is None:
            room = None if candidates else 0
        else:
            room = sum(max(0, line.cap - c.load) for c in candidates)
        if room == 0:
            return 0, False
        take = DRAIN_BATCH if room is None else min(room, DRAIN_BATCH)
        waiting = queued(line).select_related(None).only("pk", "client_id", "name", "stage_id")
        deals = list(waiting[:take].select_for_update(of=("self",)))
        if not deals:
            return 0, False
        decisions = decide(line, candidates, len(deals))
        _reassign(line, deals, decisions, actor, previous={})
        handed = sum(1 for d in decisions if d.assignee)
        return handed, handed == DRAIN_BATCH  # a short batch: the queue or everyone's room ran out


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
    written = Activity.objects.filter(client_id=OuterRef("client_id"), kind=Activity.Kind.MESSAGE, created_at__gte=since).exclude(
        field="chat_in")  # the client's own message is not the manager's work
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


def assign_again(deals: list[Deal], line: Line, *, actor=None) -> list[Decision]:
    """Give saved deals out again by the line's rules (a client back from the ignore list): to
    whoever is next on shift, or the queue."""
    line = lock(line.pk)
    decisions = decide(line, eligible(line), len(deals))
    _reassign(line, deals, decisions, actor, {deal.pk: deal.responsible_id for deal in deals})
    return decisions
