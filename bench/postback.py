"""Partner postbacks (issue 17, point 7; DESIGN §12: postback p95 ≤ 30 ms; 0 duplicate effects
under replays).

    .venv/bin/python bench/postback.py [--events 1000] [--senders 1] [--workers 3]
    .venv/bin/python bench/postback.py --senders 4     # the saturation run: 8 connections on 3 workers
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/postback.py   # Redis cache and broker, as production

Self-contained: the database (`BENCH_DATABASE_URL`) is created if missing and migrated; what the
script makes is removed at the start (should a killed run have left it) and at the end: a partner
"Bench postback" (slug `bench-postback`) with a signing secret, a funnel "Bench postback" (one line,
one stage), a manager `bench-postback-manager` (responsible for the deals: every purchase notifies
them), `--events` fresh clients (source "Bench postback", phones +7 5xx: none of the other benches'
numbers) with one deal each, each deal with a registration link to the partner and one click, all
inserted set-based (INSERT … SELECT, as bench/robot_runs.py); and what the postbacks made: the
log, conversions, sales, feed entries, events, notifications.

1. **The server**: gunicorn (`crm.wsgi`, `--workers` sync workers as the Dockerfile runs them) on
   127.0.0.1 with the bench settings and persistent database connections (DB_CONN_MAX_AGE=600, as
   crm.settings.prod keeps them), POSTBACK_RATE_PER_MINUTE raised to 10,000,000 so the per-partner
   rate limit never answers 429 here. With REDIS_URL the cache is Redis (the rate limit's counter
   is then shared by the workers, as in production) and the broker too; the events' worker job goes
   to a queue of its own, `bench-postback`, emptied before and after (no worker runs). Each server
   process is warmed by postbacks with a wrong token (403) first.
2. **Posting**: `--events` purchases (status=sale, a payout, a unique tid, a player_id; the click id
   we gave out) as a tracker sends them: a urlencoded POST body, the token in the query string,
   signed (`X-Postback-Timestamp`, `X-Postback-Signature` = partners.postbacks.signature(secret,
   timestamp, body); signed just before it is sent, as a tracker's retry signs again). Each event is
   sent three times:
   - **first and concurrent duplicate**: `--senders` threads (default 1: a tracker's connection sends
     as fast as it is answered, ~150 requests a second here, far above an affiliate program's peak)
     take events in turn, each with a twin
     thread; sender and twin (each on its own HTTP connection) meet at a barrier and post the same
     event at the same moment: one must be answered "accepted", the other "duplicate" (it waited on
     the link's row lock);
   - **later replay**: once every event was sent twice, `--senders` threads send each event again:
     every answer must be "duplicate".
   Every request's round trip is recorded: `postback_p50_ms` / `postback_p95_ms` over all of them,
   `postback_first_p95_ms` over the accepted ones, `postback_duplicate_p95_ms` over the duplicates
   (concurrent and replayed), `postback_replay_p95_ms` over the replays alone. `postback_per_s`:
   requests answered per second over both phases; `postback_accepted_per_s`: events accepted per
   second in the concurrent phase. CPU during the posting: the server's processes and their
   PostgreSQL backends per request, and what other processes took (`postback_others_cpu_s` of
   `postback_machine_cpu_s`, as bench/inbound.py).
3. **Checks** (exit status 1 when one fails): answers exactly `--events` "accepted" and 2 × `--events`
   "duplicate", no other status or verdict; the log the same; exactly one conversion and one sale per
   event, every deal's and client's sales_count 1 and sales_sum the amount sent, the deal's
   registration date and the client's Player ID set; one sale feed entry, one sale event, one
   notification per deal. `postback_duplicates` counts effects beyond one per event (sales,
   conversions, counts above 1, feed entries, events, notifications) and must be 0;
   `postback_missing` counts events without their effect.
4. **One postback's statements** (`postback_queries`, `_sql_ms`, `_sql_planning_ms`; the same for a
   duplicate): one more event, for a probe deal outside the checks, posted in this process through
   Django's test client, its statements captured and replayed under EXPLAIN ANALYZE
   (common.sql_times), then posted again (a duplicate).

Times in ms unless the key ends in `_s`; the last line is one JSON object.
"""

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from common import BENCH_DB, OUT, ROOT, emit, ensure_database, fail, purge_queue, setup_django, sql_times, stop, summary, wait_answering
from inbound import CpuMeter, free_port
from robot_runs import execute, insert_select

HERE = Path(__file__).resolve().parent
NAME = "Bench postback"
SLUG = "bench-postback"
MANAGER = "bench-postback-manager"
QUEUE = "bench-postback"
SECRET = "bench-postback-signing-secret-0123456789"
PHONE_PREFIX = "75"  # +7 5xx: generate_clients.py has 9xx, inbound.py 70x, robot_runs.py 6xx
BUDGET_P95_MS = 30.0  # DESIGN §12
RATE = "10000000"


# What the bench makes, and removes ---------------------------------------------------------------


def cleanup() -> None:
    """Remove everything a run of this script made, in one transaction."""
    from django.db import transaction

    from clients.models import Client
    from crm.models import Activity, Event, Notification, User
    from deals.models import Deal, Funnel, Sale
    from partners.models import Click, Conversion, Link, Partner, Postback

    def table(model) -> str:
        return model._meta.db_table

    with transaction.atomic():
        partners = f"SELECT id FROM {table(Partner)} WHERE slug = %s"
        clients = f"SELECT id FROM {table(Client)} WHERE source = %s AND phone_digits LIKE %s"
        deals = f"SELECT id FROM {table(Deal)} WHERE client_id IN ({clients})"
        marker = [NAME, f"{PHONE_PREFIX}%"]
        execute(f"DELETE FROM {table(Postback)} WHERE partner_id IN ({partners})", [SLUG])
        execute(f"DELETE FROM {table(Conversion)} WHERE partner_id IN ({partners}) OR deal_id IN ({deals})", [SLUG, *marker])
        execute(f"DELETE FROM {table(Click)} WHERE link_id IN (SELECT id FROM {table(Link)} WHERE partner_id IN ({partners}) "
                f"OR deal_id IN ({deals}))", [SLUG, *marker])
        execute(f"DELETE FROM {table(Link)} WHERE partner_id IN ({partners}) OR deal_id IN ({deals})", [SLUG, *marker])
        execute(f"DELETE FROM {table(Sale)} WHERE client_id IN ({clients})", marker)
        execute(f"DELETE FROM {table(Activity)} WHERE client_id IN ({clients})", marker)
        execute(f"DELETE FROM {table(Event)} WHERE client_id IN ({clients})", marker)
        execute(f"DELETE FROM {table(Notification)} WHERE user_id IN (SELECT id FROM {table(User)} WHERE username = %s)", [MANAGER])
        execute(f"DELETE FROM {table(Deal)} WHERE id IN ({deals})", marker)
        execute(f"DELETE FROM {table(Client)} WHERE id IN ({clients})", marker)
        Partner.objects.filter(slug=SLUG).delete()
        Funnel.objects.filter(name=NAME).delete()
        User.objects.filter(username=MANAGER).delete()
    purge_queue(QUEUE)


def make_world(count: int) -> dict:
    """The partner, the manager, the funnel and `count` + 1 clients, each with a deal, a link and a
    click (the last is the probe's); per deal (deal id, client id, click key), in order."""
    from clients.models import Client
    from crm.models import User
    from deals.models import Deal, Funnel, Line, Stage
    from messenger import secrets
    from partners.models import Click, Link, Partner

    manager = User.objects.create_user(username=MANAGER, password=None, language="en", first_name="Bench", last_name="Postback")
    funnel = Funnel.objects.create(name=NAME, position=500)
    line = Line.objects.create(funnel=funnel, name="1st line", position=1)
    stage = Stage.objects.create(line=line, name="Sent the link", position=1)
    partner = Partner(name=NAME, slug=SLUG, url_template="https://partner.invalid/reg?click={click_id}&sub1={deal_id}",
                      currency="RUB")
    secrets.write(partner, {"signing_secret": SECRET})
    partner.save()
    number = "lpad(g::text, 9, '0')"
    clients = insert_select(
        Client, {"name": "'Postback client ' || g", "phone": f"'+{PHONE_PREFIX}' || {number}",
                 "phone_digits": f"'{PHONE_PREFIX}' || {number}", "source": ("%s", [NAME]), "channel": "'telegram'",
                 "responsible_id": ("%s", [manager.pk])},
        "generate_series(0, %s - 1) AS g ORDER BY g", [count + 1], returning=True)
    clients.sort()
    deals = insert_select(
        Deal, {"client_id": "c.ids[g + 1]", "stage_id": ("%s", [stage.pk]), "name": "'Postback deal ' || g", "budget": "1000",
               "position": "g::float8", "responsible_id": ("%s", [manager.pk]), "channel": "'telegram'"},
        "generate_series(0, %s - 1) AS g, (SELECT %s::bigint[] AS ids) AS c ORDER BY g", [count + 1, clients], returning=True)
    insert_select(Link, {"deal_id": "d.id", "partner_id": ("%s", [partner.pk]), "clicks": "1",
                         "token": "substr(md5(random()::text || d.id::text || clock_timestamp()::text), 1, 24)"},
                  "unnest(%s::bigint[]) AS d(id)", [deals])
    insert_select(Click, {"link_id": "l.id", "key": "md5(random()::text || l.id::text || clock_timestamp()::text)",
                          "user_agent": "'Mozilla/5.0 (bench)'", "ip_hash": "md5(l.id::text) || md5(l.token)"},
                  f"{Link._meta.db_table} l WHERE l.partner_id = %s", [partner.pk])
    rows = list(Click.objects.filter(link__partner=partner).order_by("link__deal_id")
                .values_list("link__deal_id", "link__deal__client_id", "key"))
    execute("ANALYZE clients_client, deals_deal, partners_link, partners_click")
    return {"partner": partner, "manager": manager, "rows": rows}


# Events and posting -------------------------------------------------------------------------------


def make_events(rows: list, run: str) -> list[dict]:
    """One purchase per (deal, client, click): the body as a tracker posts it, and what it must do."""
    events = []
    for i, (deal_id, client_id, key) in enumerate(rows):
        amount = Decimal(100 + (i * 37) % 9000) + Decimal(i % 100) / 100
        player = f"bp-{run}-{i}"
        body = urlencode({"click_id": key, "status": "sale", "payout": format(amount, "f"), "tid": f"{run}-t{i}",
                          "player_id": player})
        events.append({"i": i, "deal": deal_id, "client": client_id, "amount": amount, "player": player, "body": body})
    return events


def signed(body: str) -> dict:
    from partners.postbacks import signature

    stamp = str(int(time.time()))
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Postback-Timestamp": stamp,
            "X-Postback-Signature": signature(SECRET, stamp, body)}


class Sender:
    """One thread's HTTP connection (reopened when the server closes it: sync workers close after
    each answer); every answer recorded as (phase, status, result, ms)."""

    def __init__(self, port: int, path: str, record: list, lock: threading.Lock):
        self.port, self.path, self.record, self.lock = port, path, record, lock
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, phase: str, body: str, headers: dict) -> None:
        started = time.perf_counter()
        try:
            self.conn.request("POST", self.path, body=body.encode(), headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
            ms = (time.perf_counter() - started) * 1000
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
            import json

            try:
                result = json.loads(raw).get("result", "?")
            except ValueError:
                result = "?"
            entry = (phase, response.status, result, ms)
        except (OSError, http.client.HTTPException) as error:
            self.conn.close()
            entry = (phase, 0, f"{type(error).__name__}: {error}", (time.perf_counter() - started) * 1000)
        with self.lock:
            self.record.append(entry)

    def close(self) -> None:
        self.conn.close()


def concurrent_phase(port: int, path: str, events: list[dict], senders: int, record: list, lock) -> float:
    """Each event posted by a sender and its twin at the same moment; the phase's seconds."""
    pending = iter(events)
    take = threading.Lock()
    start = threading.Barrier(2 * senders + 1)

    def pair(index: int) -> None:
        meet = threading.Barrier(2)
        slot: list[dict | None] = [None]

        def run(first: bool) -> None:
            sender = Sender(port, path, record, lock)
            start.wait()
            while True:
                if first:
                    with take:
                        slot[0] = next(pending, None)
                meet.wait()  # the twin now sees the sender's event
                event = slot[0]
                if event is None:
                    break
                headers = signed(event["body"])
                meet.wait()  # both signed: post at the same moment
                sender.post("concurrent", event["body"], headers)
                meet.wait()  # both answered before the next event is taken
            sender.close()

        twins = [threading.Thread(target=run, args=(first,)) for first in (True, False)]
        for thread in twins:
            thread.start()
        threads.extend(twins)

    threads: list[threading.Thread] = []
    for index in range(senders):
        pair(index)
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def replay_phase(port: int, path: str, events: list[dict], senders: int, record: list, lock) -> float:
    """Every event posted once more, later, by `senders` threads; the phase's seconds."""
    pending = iter(events)
    take = threading.Lock()
    start = threading.Barrier(senders + 1)

    def run() -> None:
        sender = Sender(port, path, record, lock)
        start.wait()
        while True:
            with take:
                event = next(pending, None)
            if event is None:
                break
            sender.post("replay", event["body"], signed(event["body"]))
        sender.close()

    threads = [threading.Thread(target=run) for _ in range(senders)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


# The server ------------------------------------------------------------------------------------


def start_server(port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DB,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}",
        "DB_CONN_MAX_AGE": "600",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "POSTBACK_RATE_PER_MINUTE": RATE,
        "BENCH_REDIS_CACHE": "1" if os.environ.get("REDIS_URL") else "",
    }
    command = [sys.executable, "-m", "gunicorn", "crm.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers",
               str(workers), "--log-level", "warning", "--error-logfile", str(log)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def wait_ready(port: int, path: str, process: subprocess.Popen, log: Path, connections: int) -> None:
    """Until the server answers a wrong token with 403; then as many from `connections` connections
    at once, so that every worker has loaded the application and opened its database connection."""
    bad = path.split("?")[0] + "?token=wrong"
    def ask() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", bad, body=b"status=sale", headers={"Content-Type": "application/x-www-form-urlencoded"})
        status = conn.getresponse().status
        conn.close()
        return status

    wait_answering(process, log, ask, 403, "a wrong token")

    def warm():
        for _ in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", bad, body=b"status=sale", headers={"Content-Type": "application/x-www-form-urlencoded"})
            conn.getresponse().read()
            conn.close()

    threads = [threading.Thread(target=warm) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# Checks ---------------------------------------------------------------------------------------


def check(world: dict, events: list[dict]) -> dict:
    """Effects against what was sent: missing ones and ones beyond one per event."""
    from django.db import connection

    partner, manager = world["partner"], world["manager"]
    deals = [e["deal"] for e in events]
    amounts = [e["amount"] for e in events]
    players = [e["player"] for e in events]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH sent AS (SELECT * FROM unnest(%s::bigint[], %s::numeric[], %s::text[]) AS s(deal_id, amount, player))
            SELECT
              count(*) FILTER (WHERE d.sales_count = 0),
              coalesce(sum(d.sales_count - 1) FILTER (WHERE d.sales_count > 1), 0),
              count(*) FILTER (WHERE d.sales_count = 1 AND d.sales_sum <> s.amount),
              count(*) FILTER (WHERE c.sales_count = 0),
              coalesce(sum(c.sales_count - 1) FILTER (WHERE c.sales_count > 1), 0),
              count(*) FILTER (WHERE c.sales_count = 1 AND c.sales_sum <> s.amount),
              count(*) FILTER (WHERE d.registration_date IS NULL),
              count(*) FILTER (WHERE c.external_id <> s.player)
            FROM sent s JOIN deals_deal d ON d.id = s.deal_id JOIN clients_client c ON c.id = d.client_id
            """, [deals, amounts, players])
        (deal_none, deal_extra, deal_wrong_sum, client_none, client_extra, client_wrong_sum, no_registration,
         wrong_player) = cursor.fetchone()

        def per_deal(sql: str, params: list) -> tuple[int, int]:
            """(deals with none, rows beyond one per deal) of `sql`'s deal ids."""
            cursor.execute(f"WITH sent AS (SELECT unnest(%s::bigint[]) AS deal_id), rows AS ({sql}) "
                           "SELECT count(*) FILTER (WHERE n IS NULL), coalesce(sum(n - 1) FILTER (WHERE n > 1), 0) "
                           "FROM sent LEFT JOIN (SELECT deal_id, count(*) AS n FROM rows GROUP BY deal_id) r USING (deal_id)",
                           [deals, *params])
            none, extra = cursor.fetchone()
            return int(none), int(extra)

        sales = per_deal("SELECT deal_id FROM deals_sale WHERE reversed_at IS NULL", [])
        conversions = per_deal("SELECT deal_id FROM partners_conversion WHERE partner_id = %s", [partner.pk])
        feed = per_deal("SELECT deal_id FROM crm_activity WHERE kind = 'sale'", [])
        emitted = per_deal("SELECT deal_id FROM crm_event WHERE kind = 'sale'", [])
        told = per_deal("SELECT (params->>'deal_id')::bigint AS deal_id FROM crm_notification WHERE user_id = %s", [manager.pk])
        cursor.execute("SELECT count(*) FROM deals_sale s JOIN deals_deal d ON d.id = s.deal_id WHERE d.id = ANY(%s) "
                       "AND s.amount <> (SELECT amount FROM unnest(%s::bigint[], %s::numeric[]) AS x(deal_id, amount) "
                       "WHERE x.deal_id = d.id)", [deals, deals, amounts])
        (sale_wrong_amount,) = cursor.fetchone()
        cursor.execute("SELECT verdict, count(*) FROM partners_postback WHERE partner_id = %s AND verdict <> 'bad_token' "
                       "GROUP BY verdict", [partner.pk])
        log = dict(cursor.fetchall())
    deal_extra, client_extra = int(deal_extra), int(client_extra)
    missing = (deal_none + client_none + deal_wrong_sum + client_wrong_sum + no_registration + wrong_player + sale_wrong_amount
               + sales[0] + conversions[0] + feed[0] + emitted[0] + told[0])
    duplicates = deal_extra + client_extra + sales[1] + conversions[1] + feed[1] + emitted[1] + told[1]
    detail = {"deals_without_sale": deal_none, "deal_sales_beyond_one": deal_extra, "deal_wrong_sum": deal_wrong_sum,
              "clients_without_sale": client_none, "client_sales_beyond_one": client_extra, "client_wrong_sum": client_wrong_sum,
              "no_registration_date": no_registration, "wrong_player_id": wrong_player, "sale_wrong_amount": sale_wrong_amount,
              "sales": sales, "conversions": conversions, "feed": feed, "events": emitted, "notifications": told}
    return {"missing": missing, "duplicates": duplicates, "detail": detail, "log": log}


def probe(world: dict, event: dict, path: str) -> dict:
    """One accepted postback's and one duplicate's statements, through Django's test client in this process."""
    from django.db import connection
    from django.test import Client as TestClient
    from django.test.utils import CaptureQueriesContext

    http = TestClient()
    figures = {}
    for key, verdict in (("postback", "accepted"), ("postback_duplicate", "duplicate")):
        headers = signed(event["body"])
        with CaptureQueriesContext(connection) as queries:
            response = http.post(path, event["body"], content_type=headers.pop("Content-Type"),
                                 headers={k: v for k, v in headers.items()})
        answer = response.json().get("result")
        if answer != verdict:
            fail(f"the probe's {key} was answered {response.status_code} {answer}, not {verdict}")
        execution, planning = sql_times(queries.captured_queries)
        figures.update({f"{key}_queries": len(queries), f"{key}_sql_ms": execution, f"{key}_sql_planning_ms": planning})
    return figures


# Main ----------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="purchase events, each sent 3 times (default 1000)")
    parser.add_argument("--senders", type=int, default=1, help="sender threads, each with a twin for the concurrent duplicate (default 1; 4 saturates 2 cores)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync worker processes (default 3, as the Dockerfile)")
    args = parser.parse_args()
    if args.events < 10 or args.senders < 1 or args.workers < 1:
        parser.error("--events must be at least 10; --senders and --workers at least 1")
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
    os.environ["POSTBACK_RATE_PER_MINUTE"] = RATE
    if os.environ.get("REDIS_URL"):
        os.environ.setdefault("BENCH_REDIS_CACHE", "1")
    ensure_database()
    setup_django()
    import logging

    from django.conf import settings
    from django.core.management import call_command
    from django.urls import reverse

    call_command("migrate", verbosity=0)
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"broker {settings.CELERY_BROKER_URL.split(':', 1)[0]}, cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}",
          flush=True)
    cleanup()
    log = Path(tempfile.mkstemp(prefix="postback-gunicorn-", suffix=".log", dir=OUT)[1])
    record: list[tuple[str, int, str, float]] = []
    lock = threading.Lock()
    try:
        started = time.perf_counter()
        world = make_world(args.events)
        print(f"world made in {time.perf_counter() - started:.1f} s: {args.events} deals with a link and a click", flush=True)
        partner = world["partner"]
        path = f"{reverse('partner-postback', kwargs={'slug': SLUG})}?token={partner.token}"
        everything = make_events(world["rows"], uuid.uuid4().hex[:8])
        events, probe_event = everything[:-1], everything[-1]
        port = free_port()
        server = start_server(port, args.workers, log)
        try:
            wait_ready(port, path, server, log, 2 * args.senders)
            load = os.getloadavg()[0]
            with CpuMeter(server) as cpu:
                concurrent_s = concurrent_phase(port, path, events, args.senders, record, lock)
                replay_s = replay_phase(port, path, events, args.senders, record, lock)
        finally:
            stop(server)
        checked = check(world, events)
        probed = probe(world, probe_event, path)
    finally:
        cleanup()
    if not log.read_text().strip():
        log.unlink()  # kept when gunicorn had something to say

    answers = Counter((status, result) for _phase, status, result, _ms in record)
    accepted = answers.get((200, "accepted"), 0)
    duplicate = answers.get((200, "duplicate"), 0)
    other = {f"{status} {result}": n for (status, result), n in answers.items() if (status, result) not in
             ((200, "accepted"), (200, "duplicate"))}
    replay_answers = Counter(result for phase, _status, result, _ms in record if phase == "replay")
    all_ms = [ms for *_rest, ms in record]
    first_ms = [ms for _p, status, result, ms in record if status == 200 and result == "accepted"]
    duplicate_ms = [ms for _p, status, result, ms in record if status == 200 and result == "duplicate"]
    concurrent_duplicate_ms = [ms for phase, status, result, ms in record if phase == "concurrent" and result == "duplicate"]
    replay_ms = [ms for phase, _status, _result, ms in record if phase == "replay"]
    p50, p95 = summary(all_ms)
    cores = os.cpu_count() or 1
    spent = cpu.spent
    others_s = max(0.0, spent["machine"] - spent["server"] - spent["database"] - spent["senders"])
    seconds = concurrent_s + replay_s
    requests = len(record)
    n = args.events
    print(f"posting: {requests} requests ({n} events × 3) from {args.senders} senders and their twins to gunicorn "
          f"({args.workers} sync workers): concurrent phase {concurrent_s:.2f} s, replays {replay_s:.2f} s; "
          f"answers {dict(answers)}", flush=True)
    print(f"round trip: all p50 {p50} ms, p95 {p95} ms; accepted p95 {summary(first_ms)[1] if first_ms else None} ms; "
          f"duplicates p95 {summary(duplicate_ms)[1] if duplicate_ms else None} ms (concurrent "
          f"{summary(concurrent_duplicate_ms)[1] if concurrent_duplicate_ms else None}, replays "
          f"{summary(replay_ms)[1] if replay_ms else None})", flush=True)
    print(f"CPU per request: server {spent['server'] * 1000 / requests:.2f} ms, PostgreSQL {spent['database'] * 1000 / requests:.2f} "
          f"ms, senders {spent['senders'] * 1000 / requests:.2f} ms; other processes used {others_s:.1f} CPU s of the "
          f"{seconds * cores:.1f} the machine had (load average {load:.2f} at the start)", flush=True)
    print(f"one postback in this process: {probed}", flush=True)
    print(f"checks: missing {checked['missing']}, duplicates {checked['duplicates']}; {checked['detail']}; log {checked['log']}",
          flush=True)
    met = p95 <= BUDGET_P95_MS
    print(f"budget, postback_p95_ms: {p95} (≤ {BUDGET_P95_MS:.0f}): {'met' if met else 'MISSED'}; postback_duplicates "
          f"{checked['duplicates']} (0)", flush=True)
    problems = []
    if accepted != n or duplicate != 2 * n or other:
        problems.append(f"answers: {accepted} accepted, {duplicate} duplicate (want {n} and {2 * n}), other {other}")
    if replay_answers.get("duplicate", 0) != n:
        problems.append(f"replays answered {dict(replay_answers)}, not all duplicate")
    if checked["log"] != {"accepted": n, "duplicate": 2 * n}:
        problems.append(f"the log holds {checked['log']}")
    if checked["missing"] or checked["duplicates"]:
        problems.append(f"missing {checked['missing']}, duplicates {checked['duplicates']}: {checked['detail']}")
    emit({
        "postback_p50_ms": p50, "postback_p95_ms": p95,
        "postback_first_p50_ms": summary(first_ms)[0] if first_ms else None,
        "postback_first_p95_ms": summary(first_ms)[1] if first_ms else None,
        "postback_duplicate_p50_ms": summary(duplicate_ms)[0] if duplicate_ms else None,
        "postback_duplicate_p95_ms": summary(duplicate_ms)[1] if duplicate_ms else None,
        "postback_concurrent_duplicate_p95_ms": summary(concurrent_duplicate_ms)[1] if concurrent_duplicate_ms else None,
        "postback_replay_p95_ms": summary(replay_ms)[1] if replay_ms else None,
        "postback_duplicates": checked["duplicates"], "postback_missing": checked["missing"],
        "postback_accepted": accepted, "postback_answered_duplicate": duplicate, "postback_other_answers": sum(other.values()),
        "postback_per_s": round(requests / seconds, 1), "postback_accepted_per_s": round(n / concurrent_s, 1),
        "postback_concurrent_s": round(concurrent_s, 2), "postback_replay_s": round(replay_s, 2), **probed,
        "postback_server_cpu_ms_per_request": round(spent["server"] * 1000 / requests, 2),
        "postback_db_cpu_ms_per_request": round(spent["database"] * 1000 / requests, 2),
        "postback_others_cpu_s": round(others_s, 1), "postback_machine_cpu_s": round(seconds * cores, 1),
        "load_average": round(load, 2), "events": n, "requests": requests, "senders": args.senders,
        "gunicorn_workers": args.workers, "postback_budget_met": met and not checked["duplicates"],
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0], "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "cpus": cores, "db": BENCH_DB.rsplit("/", 1)[-1],
    })
    if problems:
        fail("; ".join(problems))


if __name__ == "__main__":
    main()
