"""Time lead distribution (issue 14, DESIGN §12): one deal given to the next manager under the
line's row lock, and a queue of 10,000 deals handed out when managers start their shifts.

    .venv/bin/python bench/distribute.py [--deals 10000] [--runs 200]

Self-contained: the database (`BENCH_DATABASE_URL`) is created if missing and migrated, and the
script makes what it measures and removes it again at the end (also when it fails half way, and
at the start, should a killed run have left anything): a funnel "Bench distribution" with one line
(round robin, no cap, "keep my deals" at shift end) of five open stages and a closing one, opened
to the Manager role as the default funnel is; five active managers `dist-manager0…4` (the built-in
Manager role, own visibility) and `dist-admin` (Admin) who creates the clients; one fresh client,
nobody's, per deal (the manager who receives the deal receives the client with it).

1. **One deal** (`distribute_*`): the five managers start their shifts (`deals.shifts.start`), then
   `--runs` times, after a few unmeasured ones: an unsaved deal in the line's first stage, nobody
   responsible, and timed, in one transaction committed inside the timing: `assign_new` (the
   line's row lock, who is eligible, the decision), the deal's INSERT, `after_insert` (the
   feed entry saying why, the notification, the client handed over, the round robin pointer).
   `distribute_before_commit_*` is the same without the COMMIT (the deferred foreign-key
   checks). Of one more such deal: its statements (`distribute_queries`, transaction control
   aside) and their execution and planning time in PostgreSQL (`distribute_sql_ms`,
   `distribute_sql_planning_ms`, common.sql_times); `eligible_*` times the eligibility read alone,
   the part of a decision that grows with the rule. The same with a cap on the line (`distribute_capped_*`, high enough that nobody reaches
   it during the run: it is the load read under the lock that is timed, not the queue), in
   least-loaded mode (`distribute_least_loaded_*`), and through the service the quick deal form
   calls, `deals.services.deal_create(distribute=True)` as the admin (`deal_create_distributed_*`:
   the permission checks, the model's validation and the creation's own feed entry besides).
   Each round robin loop checks that the managers' counts differ by at most one.
2. **The queue** (`queue_drain_*`): the five shifts end (`shifts.end`), `--deals` deals are
   inserted queued (nobody responsible, `queued_at` one microsecond apart, one `bulk_create`) and
   the table analysed, then timed from the first of the five managers calling `shifts.start` to
   the queue (`distribution.queued`) being empty (the starts' own time; the queue is counted
   between them, untimed). The managers start one after another, each start draining every queue
   at once; without a cap the first one to start receives the whole queue (the others arrive after
   it is empty), so the round robin's fairness is checked where it applies: a second drain, every
   deal so far moved to the closing stage (nobody has an open deal) and the line's cap at
   `--deals` / 5, where the i-th manager to start must receive the i-th fifth of the queue, in its
   order (`queue_drain_capped_*`). Both check that every deal has exactly one responsible, one of
   the five, none is still queued, and each has exactly one feed entry of its assignment; anything
   else exits with status 1.

Times in ms unless the key ends in `_s`; the last line is one JSON object.
"""

import argparse
import sys
import time
from datetime import timedelta

import psycopg
from common import BENCH_DB, emit, setup_django, sql_times, summary

FUNNEL = "Bench distribution"
MANAGERS = 5
PREFIX = "dist-"  # not "bench-": generate_deals.py hands its deals to every "bench-" user
WARMUP = 5
DISTRIBUTE_BUDGET_MS = 10.0  # DESIGN §12: one assignment p95
DRAIN_BUDGET_S = 10.0  # DESIGN §12: 10,000 queued deals handed out


def label(count: int) -> str:
    return {10_000: "10k", 100_000: "100k"}.get(count, str(count))


def ensure_database() -> None:
    base, _slash, name = BENCH_DB.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# What the bench makes, and removes ---------------------------------------------------------------


def cleanup() -> None:
    """Remove everything a run of this script made (its funnel, deals, clients, their feed, the
    users' notifications and shifts, the users themselves)."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import remove_perm

    from clients.models import Client
    from crm import permissions as gate
    from crm.models import Activity, Notification, User
    from deals.models import Deal, Funnel

    users = User.objects.filter(username__startswith=PREFIX)
    admin = users.filter(username=f"{PREFIX}admin").first()
    for funnel in Funnel.objects.filter(name=FUNNEL):
        deals = Deal.objects.filter(stage__line__funnel=funnel)
        Activity.objects.filter(deal__in=deals).delete()
        deals.delete()
        remove_perm(gate.ACCESS_FUNNEL, Group.objects.get(name="Manager"), funnel)
        funnel.delete()
    if admin is not None:
        clients = Client.objects.filter(created_by=admin)
        Activity.objects.filter(client__in=clients).delete()
        clients.delete()
    Notification.objects.filter(user__in=users).delete()
    users.delete()


def make_world(clients: int):
    """The funnel, its line, its first and its closing stage, the users, `clients` fresh clients
    (their ids)."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from clients.models import Client
    from crm import permissions as gate
    from deals.models import Funnel, Line, Stage
    from tests.factories import UserFactory, role  # the same factories as the tests

    funnel = Funnel.objects.create(name=FUNNEL, position=200)
    line = Line.objects.create(funnel=funnel, name="1st line", position=1, distribution=Line.Distribution.ROUND_ROBIN,
                               cap=None, shift_end=Line.ShiftEnd.KEEP)
    stages = [Stage.objects.create(line=line, name=f"Stage {i}", position=i) for i in range(1, 6)]
    sold = Stage.objects.create(line=line, name="Sold", position=6, closes=True)
    assign_perm(gate.ACCESS_FUNNEL, Group.objects.get(name="Manager"), funnel)
    admin = UserFactory(username=f"{PREFIX}admin", role=role("Admin"))
    managers = [UserFactory(username=f"{PREFIX}manager{i}", role=role("Manager")) for i in range(MANAGERS)]
    made = Client.objects.bulk_create(
        [Client(name=f"Lead {i}", name_key=f"{i} lead", phone=f"+7900{i:07d}", phone_digits=f"7900{i:07d}", channel="website",
                created_by=admin, modified_by=admin) for i in range(clients)],
        batch_size=2000,
    )
    return line, stages[0], sold, admin, managers, [c.pk for c in made]


# 1. One deal ------------------------------------------------------------------------------------


def one_deal(line, stage, client_id: int, actor=None):
    """Distribute one new deal; (ms with the commit, ms before it, the decision)."""
    from django.db import transaction

    from deals import distribution
    from deals.models import Deal
    from deals.services import new_position

    deal = Deal(client_id=client_id, stage=stage, name=f"Lead for client {client_id}", responsible=None,
                channel="website", position=new_position())
    started = time.perf_counter()
    with transaction.atomic():
        decision = distribution.assign_new(deal, line=line, actor=actor)
        deal.save()
        distribution.after_insert([deal], actor=actor)
        before_commit = time.perf_counter()
    done = time.perf_counter()
    return (done - started) * 1000, (before_commit - started) * 1000, decision


def distribute_loop(key: str, line, stage, clients, runs: int, managers, *, fair: bool) -> dict:
    """`runs` deals, one at a time, after WARMUP unmeasured ones: p50 / p95 (ms)."""
    from collections import Counter

    samples, inner = [], []
    received: Counter = Counter()
    for i in range(WARMUP + runs):
        total_ms, before_ms, decision = one_deal(line, stage, next(clients))
        if decision.assignee is None:
            fail(f"{key}: a deal was queued with five managers on shift ({decision})")
        if i >= WARMUP:
            samples.append(total_ms)
            inner.append(before_ms)
            received[decision.assignee.pk] += 1
    if fair:
        counts = [received[m.pk] for m in managers]
        if max(counts) - min(counts) > 1:
            fail(f"{key}: round robin gave {counts} deals to the five managers")
    p50, p95 = summary(samples)
    inner50, inner95 = summary(inner)
    print(f"{key:30} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms   (before the commit: p50 {inner50:6.2f}, p95 {inner95:6.2f})",
          flush=True)
    return {f"{key}_p50_ms": p50, f"{key}_p95_ms": p95, f"{key}_before_commit_p50_ms": inner50,
            f"{key}_before_commit_p95_ms": inner95}


def deal_create_loop(line, stage, admin, clients, runs: int) -> dict:
    from django.db import transaction

    from clients.models import Client
    from deals import services

    samples = []
    for i in range(WARMUP + runs):
        client = Client.objects.get(pk=next(clients))
        started = time.perf_counter()
        with transaction.atomic():
            deal = services.deal_create(actor=admin, client=client, stage=stage, name="Quick deal", distribute=True)
        elapsed = (time.perf_counter() - started) * 1000
        if deal.responsible_id is None:
            fail("deal_create(distribute=True) queued a deal with five managers on shift")
        if i >= WARMUP:
            samples.append(elapsed)
    p50, p95 = summary(samples)
    print(f"{'deal_create_distributed':30} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms", flush=True)
    return {"deal_create_distributed_p50_ms": p50, "deal_create_distributed_p95_ms": p95}


def statements_of_one(line, stage, client_id: int) -> dict:
    """One more deal's statements: how many (transaction control aside), and PostgreSQL's own
    execution and planning time of them (common.sql_times: replayed under EXPLAIN ANALYZE in a
    transaction rolled back; the feed entry's COPY is not replayed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        one_deal(line, stage, client_id)
    statements = [q for q in queries.captured_queries
                  if not q["sql"].lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    execution, planning = sql_times(statements)
    print(f"{'distribute (one more)':30} {len(statements)} statements, SQL execution {execution:.2f} ms, "
          f"planning {planning:.2f} ms", flush=True)
    return {"distribute_queries": len(statements), "distribute_sql_ms": execution, "distribute_sql_planning_ms": planning}


def eligible_loop(line, runs: int) -> dict:
    """`distribution.eligible` alone (no lock, no transaction): the one read every decision makes."""
    from deals import distribution

    samples = []
    for i in range(WARMUP + runs):
        started = time.perf_counter()
        distribution.eligible(line)
        if i >= WARMUP:
            samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = summary(samples)
    print(f"{'eligible (alone)':30} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms", flush=True)
    return {"eligible_p50_ms": p50, "eligible_p95_ms": p95}


def set_line(line, **values) -> None:
    from deals.models import Line

    Line.objects.filter(pk=line.pk).update(**values)
    for name, value in values.items():
        setattr(line, name, value)


def open_loads(line, managers) -> dict[int, int]:
    """Each manager's open deals in the line (live, in stages that do not close a deal)."""
    from django.db.models import Count

    from deals.models import Deal

    found = dict(Deal.objects.filter(responsible__in=managers, stage__line=line, stage__closes=False, deleted_at__isnull=True)
                 .values_list("responsible_id").annotate(n=Count("pk")).values_list("responsible_id", "n"))
    return {m.pk: found.get(m.pk, 0) for m in managers}


# 2. The queue -----------------------------------------------------------------------------------


def fill_queue(stage, client_ids: list[int], count: int) -> list[int]:
    """`count` queued deals, first in first out by `queued_at`; their ids."""
    from django.db import connection
    from django.utils import timezone

    from deals.models import Deal

    base = timezone.now() - timedelta(hours=1)
    made = Deal.objects.bulk_create(
        [Deal(client_id=client_ids[i], stage=stage, name=f"Queued lead {i}", responsible=None, channel="website",
              position=-i, queued_at=base + timedelta(microseconds=i)) for i in range(count)],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deals_deal")
    return [d.pk for d in made]


def drain(key: str, line, managers, deal_ids: list[int], *, cap: int | None = None) -> dict:
    """Time the five shift starts from the first until the queue is empty, then check the result.
    With a cap (and no open deals before), the i-th manager to start must have received the i-th
    `cap` deals of the queue, in its order."""
    from django.db.models import Count

    from crm.models import Activity
    from deals import distribution, shifts
    from deals.models import Deal

    count = len(deal_ids)
    if distribution.queued(line).count() != count:
        fail(f"{key}: {distribution.queued(line).count()} deals queued, {count} expected")
    mark = Activity.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    remaining = []
    all_started = 0.0  # the starts' own time: the counts between them are not timed
    emptied = None
    for manager in managers:
        started = time.perf_counter()
        shifts.start(user=manager)
        all_started += time.perf_counter() - started
        if emptied is None:
            left = distribution.queued(line).count()
            remaining.append(left)
            if left == 0:
                emptied = all_started
    if emptied is None:
        fail(f"{key}: {distribution.queued(line).count()} deals still queued after five managers started")

    deals = Deal.objects.filter(pk__in=deal_ids)
    unassigned = deals.filter(responsible__isnull=True).count()
    still_queued = deals.filter(queued_at__isnull=False).count()
    per_manager = dict(deals.values_list("responsible_id").annotate(n=Count("pk")).values_list("responsible_id", "n"))
    counts = [per_manager.get(m.pk, 0) for m in managers]
    outsiders = sum(n for pk, n in per_manager.items() if pk not in {m.pk for m in managers})
    entries = Activity.objects.filter(pk__gt=mark, deal_id__in=deal_ids, kind=Activity.Kind.ASSIGNED)
    per_deal = entries.values("deal_id").annotate(n=Count("pk"))
    twice = per_deal.filter(n__gt=1).count()
    logged = per_deal.count()
    print(f"{key:30} {emptied:6.2f} s to an empty queue ({all_started:.2f} s for the five starts); "
          f"queue after each start: {remaining}; per manager: {counts}", flush=True)
    if unassigned or still_queued or outsiders or twice or logged != count or sum(counts) != count:
        fail(f"{key}: {unassigned} without a responsible, {still_queued} still queued, {outsiders} given to others, "
             f"{logged} of {count} with a feed entry, {twice} with more than one")
    if cap is not None:
        owners = dict(deals.values_list("pk", "responsible_id"))
        wanted = [m.pk for m in managers for _ in range(cap)][:count]
        if max(counts) - min(counts) > 1 or [owners[pk] for pk in deal_ids] != wanted:
            fail(f"{key}: the five managers received {counts}, not {cap} each from the head of the queue in turn")
    return {f"{key}_s": round(emptied, 2), f"{key}_all_started_s": round(all_started, 2), f"{key}_per_manager": counts,
            f"{key}_queue_after_each_start": remaining}


def end_shifts(managers) -> None:
    from deals import shifts

    for manager in managers:
        shifts.end(user=manager)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=10_000, help="queued deals handed out (default 10,000)")
    parser.add_argument("--runs", type=int, default=200, help="deals distributed one at a time per figure (default 200)")
    args = parser.parse_args()
    if args.deals < MANAGERS or args.runs < 1:
        parser.error(f"--deals must be at least {MANAGERS} and --runs at least 1")
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import logging

    from deals import shifts
    from deals.models import Deal, Line

    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    per_loop = WARMUP + args.runs
    cleanup()
    try:
        line, stage, sold, admin, managers, client_ids = make_world(4 * per_loop + 1 + 2 * args.deals)
        clients = iter(client_ids)
        result: dict = {"deals_queued": args.deals, "runs": args.runs, "managers": MANAGERS}

        # 1. One deal, five managers on shift.
        for manager in managers:
            shifts.start(user=manager)
        result.update(distribute_loop("distribute", line, stage, clients, args.runs, managers, fair=True))
        result.update(statements_of_one(line, stage, next(clients)))
        result.update(eligible_loop(line, args.runs))
        loads = open_loads(line, managers)
        set_line(line, cap=max(loads.values()) + args.runs + WARMUP + 1)
        result.update(distribute_loop("distribute_capped", line, stage, clients, args.runs, managers, fair=True))
        set_line(line, cap=None, distribution=Line.Distribution.LEAST_LOADED)
        result.update(distribute_loop("distribute_least_loaded", line, stage, clients, args.runs, managers, fair=False))
        set_line(line, distribution=Line.Distribution.ROUND_ROBIN)
        result.update(deal_create_loop(line, stage, admin, clients, args.runs))
        result["distribute_budget_met"] = result["distribute_p95_ms"] <= DISTRIBUTE_BUDGET_MS

        # 2. The queue: nobody on shift while it fills, then the five start.
        rest = list(clients)
        size = label(args.deals)
        end_shifts(managers)
        queued = fill_queue(stage, rest[: args.deals], args.deals)
        result.update(drain(f"queue_drain_{size}", line, managers, queued))
        end_shifts(managers)
        # Every deal so far sold: nobody has an open deal, so each start takes exactly the cap.
        Deal.objects.filter(stage__line=line).update(stage=sold)
        cap = args.deals // MANAGERS
        set_line(line, cap=cap)
        queued = fill_queue(stage, rest[args.deals: args.deals + cap * MANAGERS], cap * MANAGERS)
        result.update(drain(f"queue_drain_capped_{size}", line, managers, queued, cap=cap))
        end_shifts(managers)
        result["queue_drain_budget_met"] = result[f"queue_drain_{size}_s"] <= DRAIN_BUDGET_S if args.deals == 10_000 else None
    finally:
        cleanup()
    emit(result)


if __name__ == "__main__":
    main()
