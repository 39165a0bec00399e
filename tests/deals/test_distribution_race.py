"""Issue 14 point 7, on PostgreSQL with real processes: 8 processes create 2,000 deals at once in a
line with 5 managers on shift (round robin): every deal assigned exactly once, counts per manager
within 1 of each other; with a cap of 100 each, exactly 500 assigned and 1,500 queued; a sixth
manager who then starts a shift receives exactly the 100 deals at the head of the queue."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from clients.models import Client
from crm.models import Activity
from deals import shifts
from deals.models import Deal, Line
from tests.factories import UserFactory, role

PROCESSES = 8
DEALS = 2000
ROOT = Path(__file__).resolve().parents[2]


def race(actor, stage, tag: str) -> None:
    """PROCESSES processes, DEALS new clients between them, a deal each, all started at once."""
    clients = Client.objects.bulk_create(Client(name=f"Клиент {tag} {i}", phone_digits="") for i in range(DEALS))
    ids = [c.pk for c in clients]
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
    processes = []
    for n in range(PROCESSES):
        part = ",".join(map(str, ids[n::PROCESSES]))
        processes.append(subprocess.Popen(
            [sys.executable, str(ROOT / "tests/deals/race_creator.py"), str(actor.pk), str(stage.pk), part],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    try:
        for process in processes:  # each says "ready" once its Django is up and its clients are read
            line = process.stdout.readline()
            assert line.strip() == "ready", line + process.stdout.read()
        for process in processes:  # then all start at once
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            output, _ = process.communicate(timeout=600)
            assert process.returncode == 0, output
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


@pytest.mark.django_db(transaction=True)
def test_eight_processes_distribute_two_thousand_deals_fairly_and_exactly_once():
    if connection.vendor != "postgresql":
        pytest.skip("the race runs on PostgreSQL")
    admin = UserFactory(username="race-admin", role=role("Admin"))
    managers = [UserFactory(username=f"race-m{i}", role=role("Manager")) for i in range(6)]
    for manager in managers[:5]:
        shifts.start(user=manager)
    first, second = Line.objects.filter(funnel__name="Sales").order_by("position")
    Line.objects.filter(pk__in=[first.pk, second.pk]).update(distribution=Line.Distribution.ROUND_ROBIN)

    # Round robin, no cap: each deal once, the managers within one deal of each other
    race(admin, first.stages.order_by("position").first(), "rr")
    deals = Deal.objects.filter(stage__line=first)
    assert deals.count() == DEALS
    per_manager = Counter(deals.values_list("responsible_id", flat=True))
    assert set(per_manager) == {m.pk for m in managers[:5]}
    assert max(per_manager.values()) - min(per_manager.values()) <= 1
    assigned = Counter(Activity.objects.filter(kind=Activity.Kind.ASSIGNED, deal__in=deals).values_list("deal_id", flat=True))
    assert len(assigned) == DEALS and set(assigned.values()) == {1}  # one feed entry each, none doubled

    # A cap of 100 each: exactly 500 assigned, 1,500 wait
    Line.objects.filter(pk=second.pk).update(cap=100)
    race(admin, second.stages.order_by("position").first(), "cap")
    deals = Deal.objects.filter(stage__line=second)
    per_manager = Counter(deals.exclude(responsible=None).values_list("responsible_id", flat=True))
    assert per_manager == {m.pk: 100 for m in managers[:5]}
    queue = list(Deal.objects.filter(stage__line=second, responsible=None, queued_at__isnull=False)
                 .order_by("queued_at", "pk").values_list("pk", flat=True))
    assert len(queue) == DEALS - 500

    # A sixth manager starts: the 100 at the head of the queue are theirs, nothing else moves
    shifts.start(user=managers[5])
    theirs = set(Deal.objects.filter(responsible=managers[5]).values_list("pk", flat=True))
    assert theirs == set(queue[:100])
    assert Deal.objects.filter(stage__line=second, responsible=None).count() == DEALS - 600


@pytest.mark.django_db(transaction=True)
def test_two_managers_starting_at_once_never_receive_the_same_deal():
    """Both starts drain the queue at the same moment (two connections, two threads): the line's
    row lock serialises them, so each queued deal goes to exactly one of them."""
    import threading

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    admin = UserFactory(username="race-admin", role=role("Admin"))
    line = Line.objects.filter(funnel__name="Sales").order_by("position").first()
    Line.objects.filter(pk=line.pk).update(distribution=Line.Distribution.ROUND_ROBIN)
    stage = line.stages.order_by("position").first()
    from deals import services

    clients = Client.objects.bulk_create(Client(name=f"q {i}", phone_digits="") for i in range(200))
    for client in clients:
        services.deal_create(actor=admin, client=client, stage=stage, name=client.name, distribute=True)
    assert Deal.objects.filter(queued_at__isnull=False, responsible=None).count() == 200
    first, second = (UserFactory(username=f"starter{i}", role=role("Manager")) for i in range(2))
    barrier, errors = threading.Barrier(2), []

    def start(user):
        try:
            barrier.wait(10)
            shifts.start(user=user)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(user,)) for user in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    per_manager = Counter(Deal.objects.filter(stage__line=line).values_list("responsible_id", flat=True))
    assert sum(per_manager.values()) == 200 and None not in per_manager
    assert set(per_manager) <= {first.pk, second.pk}
    handed = Counter(Activity.objects.filter(kind=Activity.Kind.ASSIGNED).exclude(field="queue").values_list("deal_id", flat=True))
    assert len(handed) == 200 and set(handed.values()) == {1}
