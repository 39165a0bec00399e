"""Merging two clients (issue 18, point 7; DESIGN §12: merge p95 ≤ 200 ms for two clients with 50
related records each), and its undo.

    .venv/bin/python bench/merge.py [--pairs 30] [--related 50]

Self-contained: the database (`BENCH_DATABASE_URL`, by default the one the other benches fill:
merging in a table of 1,000,000 clients and their feed is what users get) is created if missing and
migrated; what the script makes is removed at the start (should a killed run have left it) and at
the end: an admin `bench-merge-admin` and `--pairs` × 2 clients (source "Bench merge"), each with
`--related` related records, as a client has them: a tenth deals (each with a sale), a tenth tasks, a
fifth feed comments, a tenth messages in one conversation, the rest other feed entries (changes),
and a note.

Each pair is merged as the admin does it on the merge page: a POST through Django's whole request
cycle (the test client: middleware, session, the permission gate), copying two fields (city and
Player ID); then, once all are merged, each merge is undone the same way (`merge_undo_*`). Checked
exactly (exit status 1 otherwise): after the merges every record of the merged client belongs to
the kept one, the kept client's sales count and sum are both clients' and the other is deleted;
after the undos every record is back where it was and both clients are alive.

Times in ms; the last line is one JSON object.
"""

import argparse
import time
from datetime import timedelta
from decimal import Decimal

from common import emit, ensure_database, fail, setup_django, summary

SOURCE = "Bench merge"
ADMIN = "bench-merge-admin"
BUDGET_P95_MS = 200.0  # DESIGN §12
WARMUP = 2


def cleanup() -> None:
    from django.db import connection, transaction

    from clients.models import Client, Merge
    from crm.models import User

    with transaction.atomic():
        ids = list(Client.objects.filter(source=SOURCE).values_list("pk", flat=True))
        if ids:
            with connection.cursor() as cursor:
                Merge.objects.filter(kept_id__in=ids).delete()
                Client.objects.filter(pk__in=ids).update(merged_in=None)
                cursor.execute("DELETE FROM deals_sale WHERE client_id = ANY(%s)", [ids])
                cursor.execute("DELETE FROM deals_deal WHERE client_id = ANY(%s)", [ids])
                cursor.execute("DELETE FROM crm_event WHERE client_id = ANY(%s)", [ids])
            Client.objects.filter(pk__in=ids).delete()  # tasks, feed, notes, conversations cascade
        User.objects.filter(username=ADMIN).delete()


def make_pair(admin, index: int, related: int) -> tuple:
    from clients.models import Client, ClientNote
    from crm.models import Activity
    from deals.models import Deal, Sale, Stage
    from messenger.models import Channel, Conversation, Message
    from tasks.models import Task, TaskType

    stage = Stage.objects.filter(line__funnel__name="Sales").order_by("line__position", "position").first()
    if stage is None:
        fail("the default funnel 'Sales' is missing: migrate the bench database")
    channel = Channel.objects.get_or_create(kind=Channel.Kind.CONSOLE, name="Bench merge chat")[0]
    task_type = TaskType.objects.order_by("pk").first()
    now = timezone_now()
    pair = []
    for side in ("kept", "other"):
        client = Client.objects.create(name=f"Bench merge {index} {side}", phone=f"+7401{index:04d}{0 if side == 'kept' else 1:03d}",
                                       email=f"merge{index}-{side}@example.com", source=SOURCE,
                                       city="" if side == "kept" else "Казань",
                                       external_id="" if side == "kept" else f"P-{index}", responsible=admin)
        n_deals = n_tasks = n_messages = related // 10
        n_comments = related // 5
        n_changes = related - n_deals - n_tasks - n_messages - n_comments
        deals = Deal.objects.bulk_create([Deal(client=client, stage=stage, name=f"Deal {i}", budget=100, position=float(-i),
                                               responsible=admin) for i in range(n_deals)])
        Sale.objects.bulk_create([Sale(deal=d, client=client, player_id="P", amount=Decimal("10.00")) for d in deals])
        Client.objects.filter(pk=client.pk).update(sales_count=len(deals), sales_sum=Decimal("10.00") * len(deals))
        Task.objects.bulk_create([Task(client=client, type=task_type, description=f"Task {i}", responsible=admin,
                                       deadline=now + timedelta(days=1), created_by=admin) for i in range(n_tasks)])
        Activity.objects.bulk_create(
            [Activity(client=client, actor=admin, kind=Activity.Kind.COMMENT, text=f"Comment {i}") for i in range(n_comments)]
            + [Activity(client=client, actor=admin, kind=Activity.Kind.CHANGE, field="city", field_label="City",
                        old_value="", new_value=str(i)) for i in range(n_changes)])
        conversation = Conversation.objects.create(channel=channel, client=client, external_chat_id=f"bench-merge-{client.pk}")
        Message.objects.bulk_create([Message(conversation=conversation, channel=channel, direction="in", text=f"hi {i}",
                                             status="received") for i in range(n_messages)])
        ClientNote.objects.create(client=client, text=f"Note {side}")
        pair.append(client)
    return tuple(pair)


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def owned(client_id: int) -> dict:
    from crm.models import Activity
    from deals.models import Deal, Sale
    from messenger.models import Conversation
    from tasks.models import Task

    return {"deals": Deal.objects.filter(client_id=client_id).count(), "sales": Sale.objects.filter(client_id=client_id).count(),
            "tasks": Task.objects.filter(client_id=client_id).count(),
            "feed": Activity.objects.filter(client_id=client_id).exclude(kind=Activity.Kind.MERGE).count(),
            "conversations": Conversation.objects.filter(client_id=client_id).count()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=30, help="pairs of clients to merge (default 30)")
    parser.add_argument("--related", type=int, default=50, help="related records per client (default 50)")
    args = parser.parse_args()
    if args.pairs < 1 or args.related < 10:
        parser.error("--pairs at least 1, --related at least 10")
    ensure_database()
    setup_django()
    from django.core.management import call_command
    from django.test import Client as TestClient
    from django.urls import reverse

    from clients.models import Client, Merge
    from tests.factories import UserFactory, role

    call_command("migrate", verbosity=0)
    cleanup()
    try:
        admin = UserFactory(username=ADMIN, language="en", role=role("Admin"))
        started = time.perf_counter()
        pairs = [make_pair(admin, i, args.related) for i in range(args.pairs + WARMUP)]
        print(f"made {len(pairs)} pairs with {args.related} related records each in {time.perf_counter() - started:.1f} s",
              flush=True)
        before = {c.pk: owned(c.pk) for pair in pairs for c in pair}
        http = TestClient()
        http.force_login(admin)
        merge_ms, undo_ms = [], []
        for i, (kept, other) in enumerate(pairs):
            started = time.perf_counter()
            response = http.post(reverse("clients:merge", args=[kept.pk]),
                                 {"other": other.pk, "keep_city": "other", "keep_external_id": "other"})
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 302:
                fail(f"merge {i} answered {response.status_code}: {response.content[:500]!r}")
            if i >= WARMUP:
                merge_ms.append(elapsed)
        problems = []
        for kept, other in pairs:
            now_kept, now_other = owned(kept.pk), owned(other.pk)
            want = {k: before[kept.pk][k] + before[other.pk][k] for k in now_kept}
            if now_kept != want or any(now_other.values()):
                problems.append(f"after merging #{other.pk} into #{kept.pk}: kept {now_kept} (want {want}), other {now_other}")
            fresh = Client.objects.get(pk=kept.pk)
            if fresh.sales_count != want["sales"] or not Client.objects.get(pk=other.pk).is_deleted or fresh.city != "Казань":
                problems.append(f"#{kept.pk}: sales {fresh.sales_count}, city {fresh.city!r}, other deleted?")
        merges = list(Merge.objects.filter(kept__source=SOURCE).order_by("pk"))
        for i, record in enumerate(merges):
            started = time.perf_counter()
            response = http.post(reverse("clients:merge-undo", args=[record.pk]))
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 302:
                fail(f"undo {i} answered {response.status_code}")
            if i >= WARMUP:
                undo_ms.append(elapsed)
        for kept, other in pairs:
            if owned(kept.pk) != before[kept.pk] or owned(other.pk) != before[other.pk]:
                problems.append(f"after the undo: #{kept.pk} {owned(kept.pk)}, #{other.pk} {owned(other.pk)}")
            if Client.objects.get(pk=other.pk).is_deleted:
                problems.append(f"#{other.pk} still deleted after the undo")
        clients_in_table = Client.objects.count()
    finally:
        cleanup()
    p50, p95 = summary(merge_ms)
    undo_p50, undo_p95 = summary(undo_ms)
    met = p95 <= BUDGET_P95_MS
    print(f"merge: p50 {p50} ms, p95 {p95} ms (≤ {BUDGET_P95_MS:.0f}: {'met' if met else 'MISSED'}); undo p50 {undo_p50}, "
          f"p95 {undo_p95}; {clients_in_table} clients in the table", flush=True)
    emit({"merge_p50_ms": p50, "merge_p95_ms": p95, "merge_undo_p50_ms": undo_p50, "merge_undo_p95_ms": undo_p95,
          "merge_budget_met": met, "pairs": args.pairs, "related_per_client": args.related,
          "clients_in_table": clients_in_table, "problems": len(problems)})
    if problems:
        fail("; ".join(problems[:5]))


if __name__ == "__main__":
    main()
