"""Robots (issue 16, point 8; DESIGN §12): the sweep of timed robots, 10,000 entries each firing a
"send a message" robot through real Celery workers, and no double fire after a worker is killed.

    .venv/bin/python bench/robot_runs.py [--deals 100000] [--entries 10000] [--workers 2] [--sweeps 9]
    REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/robot_runs.py   # Redis broker and cache

Self-contained: the database (`BENCH_DATABASE_URL`) is created if missing and migrated; what the
script makes is removed at the start (should a killed run have left it) and at the end: a funnel
"Bench robots" (one line: four "Idle" stages with a timed robot each, a "Start" stage and an
"Entry" stage whose robot, on entry, sends "Hello, {name}!"), a console channel "Bench robots",
clients whose source is "Bench robots" (external id "bench-robots-…", so none of
generate_clients.py's), their deals, conversations, messages, feed entries and events, the robots'
runs. Everything is inserted set-based (INSERT … SELECT); a column the script does not name gets
the model's default, and a NOT NULL column without one stops the script with its name.

The broker is what bench_settings picks: Redis when REDIS_URL is set (then the cache is Redis too,
BENCH_REDIS_CACHE, so the kicks of crm.events and robots.engine are deduplicated across processes
as in production), else the on-disk broker under bench/out/ with a cache per process (every kick
queues a task). Either way on a queue of its own, `bench-robots`, emptied before and after.

1. **Sweep** (`robot_sweep_100k_ms`, budget ≤ 200 per sweep): `--deals` live deals spread over the
   four Idle stages (one client per ten deals), each with a waiting run of its stage's timed robot
   ("60 minutes without activity"): 1 % due, the rest due in an hour; ANALYZE. Then `--sweeps` calls
   of `robots.engine.sweep()` (after one untimed), p50 and max; before each, the runs the previous
   sweep queued wait again (due in an hour) and the next 1 % of the runs are made due, so every
   sweep queues exactly 1 %. `_queries` are one sweep's statements and `_sql_ms` their execution
   time in PostgreSQL (common.sql_times, replayed with the same runs due). The sweep's kick
   (`robots_drain.delay()`) is inside the time; no worker runs yet and the queue is emptied after.
   The 100,000 waiting runs stay (due in a day) through the rounds below, as timed robots would in
   production: every outbound message's event looks for its client's waiting runs.
2. **Firing** (`robot_fire_10k_s`, budget ≤ 60): `--workers` real Celery workers
   (`celery -A crm worker --pool=solo`, processes of their own, the bench settings) are started
   and pinged until each answers. `--entries` deals of as many fresh clients, each with a
   conversation in the console channel, wait in Start; one transaction moves them all into Entry
   (an UPDATE setting the stage and `entered_at` as deals.services.deal_to_stage does) and emits
   their stage events (`crm.events.emit_many`); the clock starts when it commits, and
   `crm.events.kick(again=True)` is sent. Timed until every run of the Entry robot for those deals
   is final (`robot_fire_s`; for 10,000 entries also `robot_fire_10k_s`), polled every 0.1 s; then
   at most `--sent-wait` (60 s) more until every message the runs wrote has left the queue
   (`robot_fire_messages_sent_s`, sent by the console channel's backend, which prints it in the
   worker's log; else null, and `_messages_unsent` says how many were not; the round after starts
   regardless, behind them). `_queue_peak`: the most tasks seen queued (sampled every second). Beat is played by this process:
   crm.events.sweep and robots.engine.sweep every 30 s, messenger.sweep every 10 s, as
   crm/celery.py schedules them.
3. **A worker killed** (`robot_double_fires`, must be 0): the same with as many other new clients;
   once a third of the runs are done, the first worker is killed with SIGKILL and started again at
   once. Once every run is final (the sweeps take back the dead worker's runs once claimed longer
   than robots.engine.STALE, 60 s, and its message once sending longer than JOB_STALE_SECONDS) and
   the messages are sent or `--sent-wait` has passed, checked for both rounds: every deal has exactly one run, DONE; every run has
   its message (key `robots.engine.message_key(run, 0)`), and no client more than one;
   `robot_double_fires` counts messages beyond one per deal, runs beyond one per deal and robot
   feed entries beyond one per deal (an action done twice); `robot_missing` deals without a DONE
   run or without their message. `robot_resume_after_kill_s` is this round's time to its last run
   final minus the first round's. `robot_messages_delivered_twice` (informational) counts messages
   whose "sent" feed entry is there twice: the console backend is idempotent, a message claimed by
   the killed worker is sent again after it is stale. Exit status 1 when double fires or missing
   are not 0 (or a deadline passes).

Where the machine's CPU went during each round: `_others_cpu_s` of `_machine_cpu_s` is what
processes other than the workers, their database backends and this script took (other sessions'
tests, say); the load average at the start is printed. Times in ms unless the key ends in `_s`;
the last line is one JSON object.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import BENCH_DB, OUT, ROOT, broker, emit, ensure_database, fail, purge_queue, setup_django, sql_times, stop

HERE = Path(__file__).resolve().parent
NAME = "Bench robots"
MARK = "bench-robots-"
QUEUE = "bench-robots"
IDLE_STAGES = 4
IDLE_MINUTES = 60
DEALS_PER_SWEEP_CLIENT = 10
SWEEP_BUDGET_MS = 200.0  # DESIGN §12
FIRE_BUDGET_S = 60.0  # DESIGN §12
POLL_S = 0.1
BEAT_S = {"events": 30.0, "robots": 30.0, "messenger": 10.0}  # crm/celery.py's beat_schedule
GREETING = "Hello, {name}! We got your request."


def label(count: int) -> str:
    return {10_000: "10k", 100_000: "100k"}.get(count, str(count))


# Set-based inserts ------------------------------------------------------------------------------


def insert_select(model, exprs: dict[str, str | tuple[str, list]], source: str, params: list | tuple = (), *,
                  returning: bool = False):
    """INSERT INTO the model's table (columns) SELECT expressions FROM `source`: `exprs` maps
    attnames to SQL over the source (or (SQL, its parameters)); every other NOT NULL column gets
    the model's default (as a parameter; now() for auto_now fields). A NOT NULL column with neither
    stops the script. `params` are the source's."""
    from django.db import connection

    columns, values, defaults = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.attname not in exprs:
            continue
        if field.attname in exprs:
            given = exprs[field.attname]
            sql, own = (given, []) if isinstance(given, str) else given
            defaults.extend(own)
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            sql = "now()"
        elif field.null:
            continue
        elif field.has_default() or field.get_default() is not None:  # a text field's default is ""
            sql = "%s"
            defaults.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            fail(f"{model._meta.db_table}.{field.column} is NOT NULL without a default: name it in bench/robot_runs.py")
        columns.append(connection.ops.quote_name(field.column))
        values.append(sql)
    statement = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}"
    with connection.cursor() as cursor:
        cursor.execute(statement + (" RETURNING id" if returning else ""), [*defaults, *params])
        return [row[0] for row in cursor.fetchall()] if returning else cursor.rowcount


def execute(sql: str, params: list | tuple = ()) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# What the bench makes, and removes ---------------------------------------------------------------


def cleanup() -> None:
    """Remove everything a run of this script made, in one transaction (the big tables by plain
    DELETEs, the funnel and the channel through the ORM)."""
    from django.db import transaction

    from clients.models import Client
    from crm.models import Activity, Event
    from deals.models import Deal, Funnel
    from messenger.models import Channel, Conversation, Message, Unread
    from robots.models import Robot, Run, Suspension

    def table(model) -> str:
        return model._meta.db_table

    with transaction.atomic():
        stages = ("SELECT s.id FROM deals_stage s JOIN deals_line l ON l.id = s.line_id JOIN deals_funnel f ON f.id = l.funnel_id "
                  "WHERE f.name = %s")
        robots = f"SELECT id FROM {table(Robot)} WHERE stage_id IN ({stages})"
        clients = f"SELECT id FROM {table(Client)} WHERE source = %s AND external_id LIKE %s"
        deals = f"SELECT id FROM {table(Deal)} WHERE client_id IN ({clients}) OR stage_id IN ({stages})"
        channels = f"SELECT id FROM {table(Channel)} WHERE name = %s"
        conversations = f"SELECT id FROM {table(Conversation)} WHERE channel_id IN ({channels}) OR client_id IN ({clients})"
        marker = [NAME, f"{MARK}%"]
        execute(f"DELETE FROM {table(Run)} WHERE robot_id IN ({robots}) OR deal_id IN ({deals})", [NAME, *marker, NAME])
        execute(f"DELETE FROM {table(Suspension)} WHERE robot_id IN ({robots})", [NAME])
        execute(f"DELETE FROM {table(Activity)} WHERE client_id IN ({clients}) OR deal_id IN ({deals})", [*marker, *marker, NAME])
        execute(f"DELETE FROM {table(Event)} WHERE client_id IN ({clients})", marker)
        execute(f"DELETE FROM {table(Message)} WHERE conversation_id IN ({conversations})", [NAME, *marker])
        execute(f"DELETE FROM {table(Unread)} WHERE conversation_id IN ({conversations})", [NAME, *marker])
        execute(f"DELETE FROM {table(Conversation)} WHERE id IN ({conversations})", [NAME, *marker])
        execute(f"DELETE FROM {table(Deal)} WHERE id IN ({deals})", [*marker, NAME])
        execute(f"DELETE FROM {table(Client)} WHERE id IN ({clients})", marker)
        Funnel.objects.filter(name=NAME).delete()
        Channel.objects.filter(name=NAME).delete()
    purge_queue(QUEUE)


def make_world(sweep_clients: int, entries: int):
    """The funnel and its robots, the console channel, the clients (sweep ones, then two rounds' of
    `entries` each, each round's client with a conversation in the channel)."""
    from clients.models import Client
    from deals.models import Funnel, Line, Stage
    from messenger.models import Channel, Conversation
    from robots.models import Robot

    funnel = Funnel.objects.create(name=NAME, position=400)
    line = Line.objects.create(funnel=funnel, name="1st line", position=1)
    idle = [Stage.objects.create(line=line, name=f"Idle {i}", position=i) for i in range(1, IDLE_STAGES + 1)]
    start = Stage.objects.create(line=line, name="Start", position=IDLE_STAGES + 1)
    entry = Stage.objects.create(line=line, name="Entry", position=IDLE_STAGES + 2)
    for stage in idle:
        Robot.objects.create(stage=stage, name=f"Reminder {stage.name}", trigger=Robot.Trigger.IDLE, idle_minutes=IDLE_MINUTES,
                             actions=[{"kind": Robot.Action.MESSAGE, "text": "Still there, {name}?"}])
    greeter = Robot.objects.create(stage=entry, name="Greeting", trigger=Robot.Trigger.ENTERED,
                                   actions=[{"kind": Robot.Action.MESSAGE, "text": GREETING}])
    channel = Channel.objects.create(kind=Channel.Kind.CONSOLE, name=NAME, line=line)
    groups = {"sweep": sweep_clients, "r1": entries, "r2": entries}
    clients = {}
    for offset, (group, count) in enumerate(groups.items()):
        number = f"lpad((g + {offset * 10_000_000})::text, 9, '0')"  # +7 6xx: none of the other benches' numbers
        clients[group] = insert_select(
            Client,
            {"name": "'Robot client ' || g", "phone": f"'+76' || {number}", "phone_digits": f"'76' || {number}",
             "source": ("%s", [NAME]), "external_id": f"'{MARK}{group}-' || g", "channel": "'telegram'"},
            "generate_series(0, %s - 1) AS g ORDER BY g", [count], returning=True)
        clients[group].sort()
        if group != "sweep":
            insert_select(Conversation, {"channel_id": ("%s", [channel.pk]), "client_id": "c.id",
                                         "external_chat_id": f"'{MARK}' || c.id"},
                          "unnest(%s::bigint[]) AS c(id)", [clients[group]])
    return {"idle": idle, "start": start, "entry": entry, "greeter": greeter, "channel": channel, "clients": clients}


def insert_deals(client_ids: list[int], stages: list[int], count: int, entered_ago_s: float) -> list[int]:
    """`count` live deals of the clients (in turn) spread over the stages; their ids."""
    from deals.models import Deal

    return insert_select(
        Deal,
        {"client_id": "c.ids[(g %% array_length(c.ids, 1)) + 1]", "stage_id": "s.ids[(g %% array_length(s.ids, 1)) + 1]",
         "name": "'Robot deal ' || g", "budget": "1000", "position": "g::float8",
         "entered_at": ("now() - make_interval(secs => %s)", [entered_ago_s])},
        "generate_series(0, %s - 1) AS g, (SELECT %s::bigint[] AS ids) AS c, (SELECT %s::bigint[] AS ids) AS s ORDER BY g",
        [count, client_ids, stages], returning=True)


# The broker and the workers -------------------------------------------------------------------------


def end_others_jobs() -> int:
    """Fail the imports and jobs other benches left unfinished in this database (a killed worker's,
    in `.ci/run`'s shared one). Every worker resumes such jobs when it starts (crm.celery), and this
    script's workers take its queue as their default: they would run another bench's work in the
    middle of this one's rounds, and none of it is what this bench measures."""
    from crm.models import Job
    from imports.models import ImportJob

    ended = ImportJob.objects.filter(status__in=ImportJob.ACTIVE).update(
        status=ImportJob.Status.FAILED, error="left unfinished by another bench")
    ended += Job.objects.exclude(state__in=Job.FINAL).update(state=Job.State.FAILED, error="left unfinished by another bench")
    return ended


def start_worker(index: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DB,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}",
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
    }
    handle = open(log, "ab")  # the worker writes to it until it is stopped
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool=solo", "-Q", QUEUE, "-n", f"{QUEUE}-{index}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=info"],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
    )


def wait_ready(workers: list[subprocess.Popen], logs: list[Path], deadline_s: float = 90.0) -> float:
    """Until every worker says in its log that it is ready (its consumer is up): seconds waited.
    Not by `control.ping`: on the on-disk broker its replies are lost once a first ping is over
    (kombu drops the reply queue's binding, and a kept connection never binds it again), so a
    worker that came up after the first ping was never heard."""
    import socket

    started = time.monotonic()
    names = {i: f"{QUEUE}-{i}@{socket.gethostname()}" for i in range(len(workers))}
    waiting = set(names)
    while waiting:
        for i in sorted(waiting):
            if workers[i].poll() is not None:
                fail(f"worker {i} exited with status {workers[i].returncode} before it was ready")
            if f"{names[i]} ready." in logs[i].read_text(errors="replace"):
                waiting.discard(i)
        if waiting and time.monotonic() - started > deadline_s:
            fail(f"workers not ready after {deadline_s:.0f} s: {sorted(names[i] for i in waiting)} did not say so in their logs")
        if waiting:
            time.sleep(0.1)  # polling the logs, with the deadline above
    return time.monotonic() - started


# CPU accounting (a simple version of bench/inbound.py's) ------------------------------------------------


def process_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def backend_pids() -> set[int]:
    """The bench database's client backends (the workers' connections and this script's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'")
        return {pid for (pid,) in cursor.fetchall()}


class CpuMeter:
    """CPU seconds during a round: the machine's, and ours (the workers, the bench database's
    backends, this process), sampled at every poll so that processes that come and go (a killed
    worker, its connection) count with their last reading."""

    def __init__(self, workers: list[subprocess.Popen]):
        self.workers = workers
        self.start_machine = machine_busy_s()
        self.start_self = sum(os.times()[:2])
        self.seen: dict[int, float] = {}  # pid -> its last reading
        self.base: dict[int, float] = {}  # pid -> its reading when first seen (before the round: its start)
        self.sample(first=True)

    def sample(self, first: bool = False) -> None:
        for pid in {w.pid for w in self.workers} | backend_pids():
            cpu = process_cpu_s(pid)
            if pid not in self.base:
                self.base[pid] = cpu if first else 0.0
            if cpu:
                self.seen[pid] = cpu

    def result(self) -> dict:
        self.sample()
        ours = sum(self.seen.get(pid, base) - base for pid, base in self.base.items()) + sum(os.times()[:2]) - self.start_self
        machine = machine_busy_s() - self.start_machine
        return {"machine_cpu_s": round(machine, 1), "ours_cpu_s": round(ours, 1), "others_cpu_s": round(max(0.0, machine - ours), 1)}


# 1. The sweep -----------------------------------------------------------------------------------------


def sweep_phase(world: dict, deals: int, sweeps: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from robots import engine
    from robots.models import Robot, Run

    size = label(deals)
    started = time.perf_counter()
    sweep_clients = world["clients"]["sweep"]
    deal_ids = insert_deals(sweep_clients, [s.pk for s in world["idle"]], deals, entered_ago_s=600)
    planned = insert_select(
        Run,
        {"robot_id": "r.id", "deal_id": "d.id", "entry": "d.entered_at", "state": ("%s", [Run.State.WAITING]),
         "due_at": f"d.entered_at + make_interval(mins => {IDLE_MINUTES})"},
        f"deals_deal d JOIN {Robot._meta.db_table} r ON r.stage_id = d.stage_id AND r.trigger = %s WHERE d.id = ANY(%s)",
        [Robot.Trigger.IDLE, deal_ids])
    run_ids = list(Run.objects.filter(robot__stage__in=world["idle"]).order_by("pk").values_list("pk", flat=True))
    execute(f"ANALYZE {Run._meta.db_table}")
    execute("ANALYZE deals_deal")
    print(f"sweep: {deals} deals and {planned} waiting runs made in {time.perf_counter() - started:.1f} s", flush=True)
    share = max(1, len(run_ids) // 100)
    slices = [run_ids[i * share:(i + 1) * share] for i in range(100)]

    def make_due(n: int) -> list[int]:
        """The runs the last sweep queued wait again; the n-th 1 % are due."""
        execute(f"UPDATE {Run._meta.db_table} SET state = %s, due_at = now() + interval '1 hour' WHERE id = ANY(%s) AND state = %s",
                [Run.State.WAITING, run_ids, Run.State.QUEUED])
        due = slices[n % len(slices)]
        execute(f"UPDATE {Run._meta.db_table} SET due_at = now() - interval '1 minute' WHERE id = ANY(%s)", [due])
        return due

    samples, queued = [], []
    for n in range(sweeps + 1):
        due = make_due(n)
        begin = time.perf_counter()
        outcome = engine.sweep()
        elapsed = (time.perf_counter() - begin) * 1000
        if outcome["due"] != len(due):
            fail(f"sweep {n} queued {outcome['due']} runs, {len(due)} were due")
        if n:  # the first is a warm-up
            samples.append(elapsed)
            queued.append(outcome["due"])
    due = make_due(sweeps + 1)
    with CaptureQueriesContext(connection) as captured:
        engine.sweep()
    queries = [q for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    make_due(sweeps + 1)  # the same runs due again: the statements replayed find what the sweep found
    sql_ms, planning_ms = sql_times(captured.captured_queries)
    # The rest wait on, due tomorrow: they neither fire nor get in the way of the rounds below.
    execute(f"UPDATE {Run._meta.db_table} SET state = %s, due_at = now() + interval '1 day' WHERE id = ANY(%s)",
            [Run.State.WAITING, run_ids])
    purge_queue(QUEUE)  # the sweeps' kicks: no worker ran
    p50 = sorted(samples)[len(samples) // 2]
    result = {f"robot_sweep_{size}_ms": round(p50, 1), f"robot_sweep_{size}_max_ms": round(max(samples), 1),
              f"robot_sweep_{size}_queries": len(queries), f"robot_sweep_{size}_sql_ms": sql_ms,
              f"robot_sweep_{size}_sql_planning_ms": planning_ms, "robot_sweep_deals": deals, "robot_sweep_waiting_runs": planned,
              "robot_sweep_due_per_sweep": queued[0], "robot_sweeps": len(samples)}
    print(f"sweep over {planned} waiting runs, {queued[0]} due: p50 {p50:.1f} ms, max {max(samples):.1f} ms over {len(samples)} "
          f"sweeps; {len(queries)} statements, SQL {sql_ms} ms (planning {planning_ms} ms); budget ≤ {SWEEP_BUDGET_MS:.0f} ms: "
          f"{'met' if max(samples) <= SWEEP_BUDGET_MS else 'MISSED'}", flush=True)
    for q in queries:
        print(f"    {q['time']:>7} s  {q['sql'][:150]}", flush=True)
    return result


# 2 and 3. Rounds of entries ---------------------------------------------------------------------------


class Beat:
    """This process plays beat: it queues crm/celery.py's sweeps on the workers' queue, each every
    its period counted from the round's start, as `celery beat` would (the workers run them, behind
    whatever the queue already holds)."""

    def __init__(self):
        now = time.monotonic()
        self.next = {name: now + period for name, period in BEAT_S.items()}

    def tick(self) -> None:
        from crm.tasks import events_sweep
        from messenger.tasks import messenger_sweep
        from robots.tasks import robots_sweep

        tasks = {"events": events_sweep, "robots": robots_sweep, "messenger": messenger_sweep}
        now = time.monotonic()
        for name, due in self.next.items():
            if now >= due:
                tasks[name].delay()
                self.next[name] = now + BEAT_S[name]


def queued_tasks() -> int:
    with broker() as conn:
        return conn.default_channel.queue_declare(queue=QUEUE, durable=True, auto_delete=False).message_count


def run_round(key: str, world: dict, client_ids: list[int], workers: list, logs: list, deadline_s: float,
              sent_wait_s: float, kill: bool = False) -> dict:
    """Move len(client_ids) new deals into Entry at once and wait until every run is final and
    every message sent (killing and restarting the first worker once a third are done)."""
    from django.db import transaction
    from django.db.models import Count
    from django.utils import timezone

    from crm import events
    from crm.models import Event
    from deals.models import Deal
    from messenger.models import Message
    from robots.models import Run

    n = len(client_ids)
    greeter, channel = world["greeter"], world["channel"]
    deal_ids = sorted(insert_deals(client_ids, [world["start"].pk], n, entered_ago_s=3600))
    if deal_ids[-1] - deal_ids[0] + 1 != n:
        fail("the round's deals did not get consecutive ids")
    first, last = deal_ids[0], deal_ids[-1]
    watermark = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    client_of = dict(Deal.objects.filter(pk__gte=first, pk__lte=last).values_list("pk", "client_id"))
    runs = Run.objects.filter(robot=greeter, deal_id__gte=first, deal_id__lte=last)
    messages = Message.objects.filter(channel=channel, pk__gt=watermark)
    meter = CpuMeter(workers)
    load = os.getloadavg()[0]
    marks: dict[str, float] = {}
    at = timezone.now()
    with transaction.atomic():
        execute("UPDATE deals_deal SET stage_id = %s, entered_at = %s, modified_at = %s, version = version + 1 "
                "WHERE id BETWEEN %s AND %s", [world["entry"].pk, at, at, first, last])
        transaction.on_commit(lambda: marks.setdefault("committed", time.monotonic()))  # before emit_many's own kick
        events.emit_many(Event.Kind.STAGE, [(client_of[d], d, world["entry"].pk) for d in deal_ids], at=at)
    events.kick(again=True)
    started = marks["committed"]
    beat = Beat()  # from the commit: the sweeps' clock
    killed: dict = {}
    fired_s = sent_s = None
    peak, peeked = 0, 0.0
    while True:
        beat.tick()
        meter.sample()
        if time.monotonic() - peeked >= 1.0:
            peak, peeked = max(peak, queued_tasks()), time.monotonic()
        states = dict(runs.values_list("state").annotate(n=Count("pk")).order_by())
        total, final = sum(states.values()), sum(states.get(s, 0) for s in Run.FINAL)
        if kill and not killed and states.get(Run.State.DONE, 0) >= n / 3:
            meter.sample()
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed = {"killed_after_s": round(time.monotonic() - started, 1), "killed_after_runs": states.get(Run.State.DONE, 0),
                      "running_at_kill": states.get(Run.State.RUNNING, 0)}
            workers[0] = start_worker(0, logs[0])
            meter.workers = workers
            print(f"{key}: worker killed after {killed['killed_after_s']} s, {killed['killed_after_runs']} runs done, "
                  f"{killed['running_at_kill']} running; started again", flush=True)
        if fired_s is None and total == n and final == total:
            fired_s = time.monotonic() - started
            print(f"{key}: {n} runs final after {fired_s:.1f} s: {states}", flush=True)
        if fired_s is not None and messages.filter(status=Message.Status.SENT).count() >= n \
                and not messages.exclude(status=Message.Status.SENT).exists():
            sent_s = time.monotonic() - started
            break
        if fired_s is not None and time.monotonic() - started > fired_s + sent_wait_s:
            break  # the messages still queued are reported, not waited for
        if fired_s is None and time.monotonic() - started > deadline_s:
            sent = dict(messages.values_list("status").annotate(n=Count("pk")).order_by())
            fail(f"{key}: not settled after {deadline_s:.0f} s: runs {states} (of {n}), messages {sent}")
        time.sleep(POLL_S)
    cpu = meter.result()
    taken_back = runs.filter(attempts__gt=1).count()
    unsent = messages.exclude(status=Message.Status.SENT).count()
    print(f"{key}: " + (f"every message sent after {sent_s:.1f} s" if sent_s is not None else
                        f"{unsent} messages not sent yet {sent_wait_s:.0f} s after the last run (not waited for)")
          + f"; at most {peak} tasks queued; load average {load:.2f} at the start; CPU: {cpu}; "
          f"{taken_back} runs claimed more than once (taken back from a dead worker)", flush=True)
    return {"n": n, "first": first, "last": last, "clients": client_ids, "watermark": watermark, "fired_s": fired_s,
            "sent_s": sent_s, "unsent": unsent, "queue_peak": peak, "load": load, "cpu": cpu, "taken_back": taken_back, **killed}


def check(world: dict, done: dict) -> dict:
    """Exactly once: per deal one run, DONE, one robot feed entry, one message with the run's key."""
    from crm.models import Activity
    from messenger.models import Message
    from robots import engine
    from robots.models import Run

    first, last, n = done["first"], done["last"], done["n"]
    runs = list(Run.objects.filter(robot=world["greeter"], deal_id__gte=first, deal_id__lte=last).only("pk", "deal_id", "state"))
    per_deal = Counter(run.deal_id for run in runs)
    states = Counter(run.state for run in runs)
    done_deals = {run.deal_id for run in runs if run.state == Run.State.DONE}
    msgs = list(Message.objects.filter(channel=world["channel"], conversation__client_id__in=done["clients"],
                                       direction=Message.Direction.OUT).values_list("key", "conversation__client_id"))
    keys = {key for key, _client in msgs}
    per_client = Counter(client for _key, client in msgs)
    without_message = sum(1 for run in runs if run.state == Run.State.DONE and engine.message_key(run, 0) not in keys)
    feed = Counter(Activity.objects.filter(kind=Activity.Kind.ROBOT, deal_id__gte=first, deal_id__lte=last)
                   .values_list("deal_id", flat=True))
    sent_feed = Counter(Activity.objects.filter(kind=Activity.Kind.MESSAGE, field="chat_out", client_id__in=done["clients"])
                        .values_list("client_id", flat=True))
    double = (sum(c - 1 for c in per_client.values() if c > 1) + sum(c - 1 for c in per_deal.values() if c > 1)
              + sum(c - 1 for c in feed.values() if c > 1))
    missing = (n - len(done_deals)) + without_message
    return {"double_fires": double, "missing": missing, "states": dict(states), "messages": len(msgs),
            "delivered_twice": sum(c - 1 for c in sent_feed.values() if c > 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000, help="deals with a waiting timed run for the sweep (default 100,000)")
    parser.add_argument("--entries", type=int, default=10_000, help="deals entering the stage per round (default 10,000)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--sweeps", type=int, default=9, help="timed sweeps (default 9)")
    parser.add_argument("--sent-wait", type=float, default=60.0,
                        help="seconds to wait, once every run is final, for the messages to be sent (default 60)")
    args = parser.parse_args()
    if args.deals < 100 or args.entries < 10 or args.workers < 1 or args.sweeps < 1:
        parser.error("--deals must be at least 100, --entries at least 10, --workers and --sweeps at least 1")
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
    if os.environ.get("REDIS_URL"):
        os.environ.setdefault("BENCH_REDIS_CACHE", "1")  # the kicks deduplicated across processes, as in production
    ensure_database()
    setup_django()
    import logging

    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    logging.getLogger("robots.engine").setLevel(logging.CRITICAL)  # a failed run is counted, not printed
    deadline_s = 300 + args.entries / 10  # until every run is final
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"broker {settings.CELERY_BROKER_URL.split(':', 1)[0]}, cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}",
          flush=True)
    cleanup()
    logs = [Path(tempfile.mkstemp(prefix=f"robots-worker{i}-", suffix=".log", dir=OUT)[1]) for i in range(args.workers)]
    workers: list[subprocess.Popen] = []
    result: dict = {}
    try:
        started = time.perf_counter()
        world = make_world(max(1, args.deals // DEALS_PER_SWEEP_CLIENT), args.entries)
        print(f"world made in {time.perf_counter() - started:.1f} s", flush=True)
        result.update(sweep_phase(world, args.deals, args.sweeps))

        if ended := end_others_jobs():
            print(f"{ended} unfinished jobs of other benches marked failed before the workers start", flush=True)
        # One after the other: kombu's on-disk broker rewrites an exchange's table in a file as each
        # worker binds its queues, and two workers starting together race on those files.
        ready_s = 0.0
        for i, log in enumerate(logs):
            workers.append(start_worker(i, log))
            ready_s += wait_ready(workers, logs[:len(workers)])
        print(f"{args.workers} workers ready after {ready_s:.1f} s", flush=True)
        first = run_round("fire", world, world["clients"]["r1"], workers, logs, deadline_s, args.sent_wait)
        second = run_round("kill", world, world["clients"]["r2"], workers, logs, deadline_s, args.sent_wait, kill=True)
        for worker in workers:
            stop(worker, 20)
        checked = [check(world, first), check(world, second)]
    finally:
        for worker in workers:
            stop(worker, 20)
        cleanup()
    for log in logs:
        log.unlink(missing_ok=True)  # the console channel's "sent" lines, one per message
    size = label(args.entries)
    fired, resume = first["fired_s"], second["fired_s"] - first["fired_s"]
    double = checked[0]["double_fires"] + checked[1]["double_fires"]
    missing = checked[0]["missing"] + checked[1]["missing"]
    print(f"checks: fire round {checked[0]}; kill round {checked[1]}", flush=True)
    print(f"budget, robot_fire_{size}_s: {fired:.1f} s (≤ {FIRE_BUDGET_S:.0f} s): {'met' if fired <= FIRE_BUDGET_S else 'MISSED'}; "
          f"robot_double_fires {double}, robot_missing {missing}; the kill cost {resume:.1f} s", flush=True)
    fire = {"robot_fire_s": round(fired, 1)}
    if size == "10k":
        fire["robot_fire_10k_s"] = round(fired, 1)
    result.update({
        **fire, "robot_fire_per_s": round(first["n"] / fired, 1), "robot_fire_messages_sent_s": first["sent_s"] and round(first["sent_s"], 1),
        "robot_fire_messages_unsent": first["unsent"], "robot_fire_queue_peak": first["queue_peak"],
        "robot_double_fires": double, "robot_missing": missing, "robot_resume_after_kill_s": round(resume, 1),
        "robot_kill_round_s": round(second["fired_s"], 1), "robot_kill_round_messages_sent_s": second["sent_s"] and round(second["sent_s"], 1),
        "robot_kill_round_messages_unsent": second["unsent"], "robot_kill_round_queue_peak": second["queue_peak"],
        "robot_killed_after_s": second.get("killed_after_s"), "robot_killed_after_runs": second.get("killed_after_runs"),
        "robot_running_at_kill": second.get("running_at_kill"), "robot_stale_taken_back": second["taken_back"],
        "robot_messages_delivered_twice": checked[0]["delivered_twice"] + checked[1]["delivered_twice"],
        "entries": args.entries, "workers": args.workers,
        "fire_load_average": round(first["load"], 2), "fire_machine_cpu_s": first["cpu"]["machine_cpu_s"],
        "fire_others_cpu_s": first["cpu"]["others_cpu_s"], "kill_load_average": round(second["load"], 2),
        "kill_machine_cpu_s": second["cpu"]["machine_cpu_s"], "kill_others_cpu_s": second["cpu"]["others_cpu_s"],
        "robot_sweep_budget_met": result[f"robot_sweep_{label(args.deals)}_max_ms"] <= SWEEP_BUDGET_MS,
        "robot_fire_budget_met": fired <= FIRE_BUDGET_S,
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0], "cpus": os.cpu_count(), "db": BENCH_DB.rsplit("/", 1)[-1],
    })
    emit(result)
    if double or missing:
        fail(f"robot_double_fires {double}, robot_missing {missing} (fire round {checked[0]}, kill round {checked[1]})")


if __name__ == "__main__":
    main()
