"""Inbound messages through the signed webhook channel (issue 15, point 10; DESIGN §12: at least
300 per second stored and acknowledged, 0 lost, 0 doubled).

    .venv/bin/python bench/inbound.py [--messages 3000] [--senders 4] [--workers 3] [--threads 1] [--without-queue]

Self-contained: the database (`BENCH_DATABASE_URL`) is created if missing and migrated; what the
script makes is removed at the start (should a killed run have left it) and at the end: a webhook
channel "Bench inbound" with its signing secret, a funnel "Bench inbound" (one line, one stage) that
new senders' deals go to, and the clients, deals, conversations, messages and deliveries made
through the channel. Senders are Kazakh numbers (+7 70x), so none is one of generate_clients.py's
clients (all +7 9xx): every client the run makes is new, and only those are deleted.

1. **The server**: gunicorn (`crm.wsgi`, `--workers` sync workers as the Dockerfile runs it;
   `--threads` > 1 makes them gthread) in processes of its own on 127.0.0.1, with the bench
   settings and persistent database connections (DB_CONN_MAX_AGE=600, as crm.settings.prod keeps
   them). The ingress queues the worker's job on Redis when REDIS_URL (or CELERY_BROKER_URL) is
   set, as in production, else on the on-disk broker under bench/out/ (`broker`); either way on a
   queue of its own, `bench-inbound`, emptied before and after. Each server process is warmed by
   unsigned posts (401) first.
2. **Posting** (`inbound_*`): `--senders` threads, each on its own HTTP connection, post
   `--messages` messages signed per Standard Webhooks (with the `standardwebhooks` package, as a
   bridge would; made before the clock starts) from about a third as many chats, phones in mixed
   forms ("8 (701) …", "+7 701 …", "7701…"); 10 % of the posts are replays, byte for byte, of a
   delivery already acknowledged. Timed from the first post to the last answer: `inbound_per_s` is
   new deliveries stored and acknowledged (200, "duplicate": false) per second,
   `inbound_posts_per_s` every post answered, `inbound_post_p50_ms` / `_p95_ms` one post's round
   trip. Every answer must be 200, every replay answered "duplicate": true and every first post
   false; the rows stored must be exactly the distinct webhook-ids, and the broker must hold between
   one job and one per row (`inbound_queued_jobs`: with Redis as the cache, the ingress kicks one
   drain per burst, messenger.receive.kick; with a cache in each process's memory, one per row). Where the CPU went during the phase: per post, the
   server's processes (`inbound_server_cpu_ms_per_post`), their PostgreSQL backends (`_db_…`), the
   senders (`_sender_…`), hence at most `inbound_cpu_ceiling_posts_per_s` on this machine's cores;
   and what other processes took meanwhile (`inbound_others_cpu_s` of `inbound_machine_cpu_s`):
   much of it means the figure was taken on a busy machine.
3. `--without-queue` (a diagnosis, not a figure of record): the same posting again, against a
   server whose ingress does not queue the worker's job (the beat's sweep would find the rows):
   `inbound_without_queue_*`, what queueing the job costs.
4. **Processing**: every stored delivery is processed in this process, one after another, by
   `messenger.receive.process` (what the worker's task calls): `processed_per_s`. Then `lost` (a
   distinct message id without exactly one stored message), `doubled` (messages beyond one per id)
   and `failed` (deliveries not processed) must all be 0, else the exit status is 1.

The last line is one JSON object.
"""

import argparse
import base64
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from common import BENCH_DB, OUT, ROOT, broker, emit, ensure_database, fail, purge_queue, setup_django, stop, summary, wait_answering

HERE = Path(__file__).resolve().parent
NAME = "Bench inbound"
QUEUE = "bench-inbound"
REPLAY_SHARE = 0.10
BUDGET_PER_S = 300.0  # DESIGN §12
APP = "crm.wsgi:application"
SECRET = "whsec_" + base64.b64encode(b"voronka-bench-inbound-secret-32b").decode()
FIRST = ["Айгерим", "Данияр", "Анна", "Сергей", "Мария", "Ержан", "Ольга", "Timur", "Laura", "Алексей"]
LAST = ["Иванова", "Нурланов", "Петрова", "Ким", "Смирнов", "Абенова", "Волков", "Brown", "Сидорова", "Ли"]
TEXTS = ["Здравствуйте! Сколько стоит доставка?", "Есть в наличии?", "Хочу записаться на завтра",
         "Спасибо, всё получил 👍", "Can I pay by card?", "Перезвоните, пожалуйста", ""]


# What the bench makes, and removes ---------------------------------------------------------------


def cleanup() -> None:
    """Remove the bench's channels and everything made through them, and its funnel, in one
    transaction. Its clients are the ones whose source is the channel's name (receive sets it)."""
    from django.db import transaction
    from django.db.models import Q

    from clients.models import Client
    from crm.models import Activity
    from deals.models import Deal, Funnel
    from messenger.models import Channel, Conversation

    with transaction.atomic():
        channels = Channel.objects.filter(name=NAME)
        clients = Client.objects.filter(source=NAME)
        deals = Deal.objects.filter(Q(stage__line__funnel__name=NAME) | Q(client__in=clients))
        Activity.objects.filter(Q(client__in=clients) | Q(deal__in=deals)).delete()
        deals.delete()
        Conversation.objects.filter(Q(channel__in=channels) | Q(client__in=clients)).delete()  # messages, attachments, unread
        clients.delete()
        channels.delete()  # and their deliveries
        Funnel.objects.filter(name=NAME).delete()
    purge_queue(QUEUE)


def make_channel():
    from deals.models import Funnel, Line, Stage
    from messenger import secrets
    from messenger.models import Channel

    funnel = Funnel.objects.create(name=NAME, position=300)
    line = Line.objects.create(funnel=funnel, name="1st line", position=1)
    Stage.objects.create(line=line, name="New", position=1)
    channel = Channel(kind=Channel.Kind.WEBHOOK, name=NAME, line=line, settings={"outbound_url": "https://bridge.invalid/out"})
    secrets.write(channel, {"signing_secret": SECRET})
    channel.save()
    return channel


def queued_jobs() -> int:
    with broker() as conn:
        return conn.default_channel.queue_declare(queue=QUEUE, durable=True, auto_delete=False).message_count


# The server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(app: str, port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DB,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}",
        "DB_CONN_MAX_AGE": "600",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        # With REDIS_URL, the cache is Redis, as production's is (crm/settings/base.py): the
        # ingress then kicks one drain per burst (messenger.receive.kick), not one job per row.
        "BENCH_REDIS_CACHE": "1" if os.environ.get("REDIS_URL") else "",
    }
    command = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--log-level", "warning", "--error-logfile", str(log)]
    if threads > 1:
        command += ["--threads", str(threads)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    raw = response.read()
    if response.getheader("Connection", "").lower() == "close":
        conn.close()  # sync workers close after each answer: the next request opens a new connection
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {}


def wait_ready(port: int, path: str, process: subprocess.Popen, log: Path, senders: int) -> None:
    """Until the server answers; then unsigned posts (401) from `senders` connections at once, so
    that every server process has loaded the application and opened its database connection."""
    def ask() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        status, _answer = post(conn, path, b"{}", {})
        conn.close()
        return status

    wait_answering(process, log, ask, 401, "an unsigned request")

    def warm():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(25):
            post(conn, path, b"{}", {})
        conn.close()

    threads = [threading.Thread(target=warm) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# CPU accounting: where a post's CPU goes, and what else the machine did meanwhile ------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(process: subprocess.Popen) -> list[int]:
    """gunicorn's master and its workers."""
    try:
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as handle:
            return [process.pid, *(int(pid) for pid in handle.read().split())]
    except OSError:
        return [process.pid]


def backend_pids() -> list[int]:
    """The PostgreSQL backends of the bench database but this process's own: the server's kept connections."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                       "AND backend_type = 'client backend'")
        return [pid for (pid,) in cursor.fetchall()]


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot, all cores (from /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU spent during the posting phase by the server, its database backends, the senders (this
    process) and everything else on the machine."""

    def __init__(self, server: subprocess.Popen):
        self.server, self.databases = server_pids(server), backend_pids()

    def __enter__(self):
        self.start = self.read()
        return self

    def __exit__(self, *exc):
        self.spent = {key: value - self.start[key] for key, value in self.read().items()}

    def read(self) -> dict:
        usage = os.times()
        server = sum(process_cpu_s(pid) for pid in self.server)
        database = sum(process_cpu_s(pid) for pid in self.databases)
        return {"server": server, "database": database, "senders": usage.user + usage.system, "machine": machine_busy_s()}


# Posting ----------------------------------------------------------------------------------------


def phone(i: int) -> str:
    """A Kazakh mobile (+7 70x), never a generated client's +7 9xx, in one of the forms people write."""
    digits = f"70{i % 8}{5_000_000 + i:07d}"
    forms = [f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}", f"+7 {digits[:3]} {digits[3:6]} {digits[6:]}", f"7{digits}"]
    return forms[i % 3]


def make_requests(count: int, run: str) -> list[tuple[str, bytes, dict]]:
    """(message id, body, signed headers) of `count` distinct messages from about count / 3 chats."""
    from standardwebhooks.webhooks import Webhook

    hook = Webhook(SECRET)
    rnd = random.Random(7)
    chats = max(1, count // 3)
    made = []
    for i in range(count):
        chat = rnd.randrange(chats)
        msg_id = f"{run}-m{i}"
        body = json.dumps({
            "type": "message", "id": msg_id, "chat_id": f"{run}-chat{chat}",
            "from": {"name": f"{FIRST[chat % len(FIRST)]} {LAST[chat // len(FIRST) % len(LAST)]}", "phone": phone(chat),
                     "username": f"user{chat}"},
            "text": TEXTS[i % len(TEXTS)] or f"сообщение {i}", "sent_at": datetime.now(UTC).isoformat(),
        }, ensure_ascii=False)
        now = datetime.now(UTC)
        headers = {"webhook-id": f"{run}-evt{i}", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": hook.sign(f"{run}-evt{i}", now, body)}
        made.append((msg_id, body.encode(), headers))
    return made


def send_all(port: int, path: str, fresh: list, total: int, senders: int) -> dict:
    """Post every fresh request once and `total - len(fresh)` replays of acknowledged ones, from
    `senders` threads; the answers' tallies and the posting phase's time."""
    plan = ["new"] * len(fresh) + ["replay"] * (total - len(fresh))
    rnd = random.Random(11)
    head, tail = plan[:50], plan[50:]  # the first posts are new: a replay needs something acknowledged
    rnd.shuffle(tail)
    plan = sorted(head, key=lambda kind: kind == "replay") + tail
    lock = threading.Lock()
    pending = iter(fresh)
    slots = iter(plan)
    acknowledged: list[tuple[str, bytes, dict]] = []
    tally = {"new_acknowledged": 0, "replays_acknowledged": 0, "new_said_duplicate": 0, "replays_said_new": 0, "not_200": 0}
    errors: list[str] = []
    latencies: list[float] = []
    barrier = threading.Barrier(senders + 1)

    def sender(seed: int) -> None:
        pick = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        barrier.wait()
        while True:
            with lock:
                kind = next(slots, None)
                if kind is None:
                    break
                request = next(pending) if kind == "new" else pick.choice(acknowledged)
            started = time.perf_counter()
            try:
                status, answer = post(conn, path, request[1], request[2])
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
                    tally["not_200"] += 1
                continue
            mine.append((time.perf_counter() - started) * 1000)
            with lock:
                if status != 200:
                    tally["not_200"] += 1
                    errors.append(f"{status} {answer}")
                elif kind == "new":
                    tally["new_acknowledged"] += 1
                    tally["new_said_duplicate"] += bool(answer.get("duplicate"))
                    acknowledged.append(request)
                else:
                    tally["replays_acknowledged"] += 1
                    tally["replays_said_new"] += not answer.get("duplicate")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    p50, p95 = summary(latencies) if latencies else (None, None)
    return {**tally, "seconds": elapsed, "p50": p50, "p95": p95, "errors": errors[:5]}


# Processing and the checks ----------------------------------------------------------------------


def process_all(channel) -> tuple[float, dict]:
    from messenger.models import Inbound
    from messenger.receive import process

    ids = list(Inbound.objects.filter(channel=channel).order_by("pk").values_list("pk", flat=True))
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    for pk in ids:
        outcome = process(pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return time.perf_counter() - started, outcomes


def check(channel, message_ids: list[str]) -> dict:
    from django.db.models import Count

    from messenger.models import Inbound, Message

    counts = dict(Message.objects.filter(channel=channel, direction=Message.Direction.IN).values_list("external_id")
                  .annotate(n=Count("pk")).values_list("external_id", "n"))
    lost = sum(1 for msg_id in message_ids if counts.get(msg_id, 0) != 1)
    doubled = sum(n - 1 for n in counts.values() if n > 1) + sum(1 for msg_id in counts if msg_id not in set(message_ids))
    failed = Inbound.objects.filter(channel=channel).exclude(state=Inbound.State.DONE).count()
    return {"lost": lost, "doubled": doubled, "failed": failed}


def posting_phase(label: str, app: str, args, channel, path: str, log: Path) -> tuple[dict, list[str]]:
    """Start gunicorn on `app`, warm it, post, stop it: the phase's figures (keys prefixed by
    `label`) and its message ids."""
    from messenger.models import Inbound

    replays = round(args.messages * REPLAY_SHARE)
    unique = args.messages - replays
    fresh = make_requests(unique, uuid.uuid4().hex[:8])  # signed before the clock starts (within the 5-minute window)
    before, jobs_before = Inbound.objects.filter(channel=channel).count(), queued_jobs()
    port = free_port()
    server = start_server(app, port, args.workers, args.threads, log)
    try:
        wait_ready(port, path, server, log, args.senders)
        with CpuMeter(server) as cpu:
            sent = send_all(port, path, fresh, args.messages, args.senders)
    finally:
        stop(server)
    cores = os.cpu_count() or 1
    spent = cpu.spent
    others_s = max(0.0, spent["machine"] - spent["server"] - spent["database"] - spent["senders"])
    per_post = {key: spent[key] * 1000 / args.messages for key in ("server", "database", "senders")}
    ceiling = cores * 1000 / sum(per_post.values())
    stored = Inbound.objects.filter(channel=channel).count() - before
    jobs = queued_jobs() - jobs_before
    rate = sent["new_acknowledged"] / sent["seconds"]
    print(f"{label}: {args.messages} posts ({unique} new, {replays} replays) from {args.senders} senders to gunicorn ({args.workers} "
          f"workers × {args.threads} threads) in {sent['seconds']:.2f} s: {rate:.0f} new stored and acknowledged per s, "
          f"{args.messages / sent['seconds']:.0f} posts per s; one post p50 {sent['p50']} ms, p95 {sent['p95']} ms; "
          f"{stored} rows stored, {jobs} jobs queued", flush=True)
    print(f"{label}: CPU per post: server {per_post['server']:.2f} ms, PostgreSQL {per_post['database']:.2f} ms, senders "
          f"{per_post['senders']:.2f} ms: at most {ceiling:.0f} posts per s on {cores} cores with nothing else running; other "
          f"processes used {others_s:.1f} CPU s of the {sent['seconds'] * cores:.1f} the machine had meanwhile", flush=True)
    problems = []
    if sent["not_200"]:
        problems.append(f"{label}: {sent['not_200']} posts not answered 200: {sent['errors']}")
    if sent["new_said_duplicate"] or sent["replays_said_new"]:
        problems.append(f"{label}: {sent['new_said_duplicate']} first posts answered duplicate, {sent['replays_said_new']} replays answered new")
    if stored != unique:
        problems.append(f"{label}: {stored} deliveries stored for {unique} distinct webhook-ids")
    if not (1 <= jobs <= stored if app == APP else jobs == 0):
        problems.append(f"{label}: {jobs} jobs queued for {stored} stored deliveries")
    figures = {
        f"{label}_per_s": round(rate, 1), f"{label}_posts_per_s": round(args.messages / sent["seconds"], 1),
        f"{label}_stored": stored, f"{label}_queued_jobs": jobs, f"{label}_duplicates_acknowledged": sent["replays_acknowledged"],
        f"{label}_s": round(sent["seconds"], 2), f"{label}_post_p50_ms": sent["p50"], f"{label}_post_p95_ms": sent["p95"],
        f"{label}_server_cpu_ms_per_post": round(per_post["server"], 2), f"{label}_db_cpu_ms_per_post": round(per_post["database"], 2),
        f"{label}_sender_cpu_ms_per_post": round(per_post["senders"], 2), f"{label}_cpu_ceiling_posts_per_s": round(ceiling),
        f"{label}_others_cpu_s": round(others_s, 1), f"{label}_machine_cpu_s": round(sent["seconds"] * cores, 1),
    }
    if problems:
        figures[f"{label}_problems"] = problems
    return figures, [msg_id for msg_id, _body, _headers in fresh]


def without_queue(environ, start_response):
    """The application with the ingress's job not queued (left to the beat's sweep): gunicorn's
    `inbound:without_queue` for --without-queue, to show what queueing the worker's job costs."""
    global _plain
    if _plain is None:
        from crm.wsgi import application
        from messenger import ingress

        ingress._queue = lambda *args, **kwargs: None
        _plain = application
    return _plain(environ, start_response)


_plain = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="posts in all, 10 %% of them replays (default 3000)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent sender threads (default 4)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3, as the Dockerfile)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (default 1: sync workers)")
    parser.add_argument("--without-queue", action="store_true",
                        help="then the same again with the ingress not queueing the worker's job (a diagnosis, not a figure)")
    args = parser.parse_args()
    if args.messages < 100 or args.senders < 1 or args.workers < 1 or args.threads < 1:
        parser.error("--messages must be at least 100; --senders, --workers and --threads at least 1")
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
    ensure_database()
    setup_django()
    import logging

    from django.conf import settings
    from django.core.management import call_command
    from django.urls import reverse

    call_command("migrate", verbosity=0)
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    cleanup()
    log = Path(tempfile.mkstemp(prefix="inbound-gunicorn-", suffix=".log", dir=OUT)[1])
    try:
        channel = make_channel()
        path = reverse("hooks:hook", kwargs={"kind": channel.kind, "token": channel.token})
        result, message_ids = posting_phase("inbound", APP, args, channel, path, log)
        if args.without_queue:
            diagnosis, more = posting_phase("inbound_without_queue", "inbound:without_queue", args, channel, path, log)
            result.update(diagnosis)
            message_ids += more
        stored = result["inbound_stored"] + result.get("inbound_without_queue_stored", 0)
        processing_s, outcomes = process_all(channel)
        print(f"processing: {stored} deliveries in {processing_s:.1f} s ({stored / processing_s:.0f} per s): {outcomes}", flush=True)
        checked = check(channel, message_ids)
        print(f"checks: lost {checked['lost']}, doubled {checked['doubled']}, failed {checked['failed']}", flush=True)
    finally:
        cleanup()
    problems = result.pop("inbound_problems", []) + result.pop("inbound_without_queue_problems", [])
    if checked["lost"] or checked["doubled"] or checked["failed"]:
        problems.append(f"lost {checked['lost']}, doubled {checked['doubled']}, failed {checked['failed']}")
    met = result["inbound_per_s"] >= BUDGET_PER_S
    print(f"budget, inbound messages: {result['inbound_per_s']:.0f} per s (≥ {BUDGET_PER_S:.0f}): {'met' if met else 'MISSED'}; "
          f"lost {checked['lost']}, doubled {checked['doubled']}", flush=True)
    replays = round(args.messages * REPLAY_SHARE)
    if not log.read_text().strip():
        log.unlink()  # kept when gunicorn had something to say
    emit({
        "inbound_per_s": result.pop("inbound_per_s"), "lost": checked["lost"], "doubled": checked["doubled"], "failed": checked["failed"],
        "messages": args.messages, "unique_messages": args.messages - replays, "duplicates_sent": replays, **result,
        "processed_per_s": round(stored / processing_s, 1), "processing_s": round(processing_s, 1),
        "senders": args.senders, "gunicorn_workers": args.workers, "gunicorn_threads": args.threads,
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0], "cpus": os.cpu_count(), "inbound_budget_met": met,
        "db": BENCH_DB.rsplit("/", 1)[-1],
    })
    if problems:
        fail("; ".join(problems))


if __name__ == "__main__":
    main()
