"""Generate open deals for the board benchmark: 10,000 and 100,000 deals, each set in a funnel
of its own with one line of 8 stages ("Bench 10k", "Bench 100k").

    .venv/bin/python bench/generate_deals.py [--scale 1]   # after generate_clients.py (needs clients)

--scale shrinks both sets (CI: --scale 0.01 makes 100 and 1,000 deals); the funnels keep their
names, which board.py looks for. Deals go to the bench users at random (bench-manager0 holds about
1/22 of them at the full size). Both funnels are opened to the Manager role (django-guardian's
deals.access_funnel for its group, as the default funnel is), so bench-manager0, with own
visibility, sees the board with their own deals.
"""

import argparse
import random
import time
from datetime import UTC, datetime

import psycopg
from common import BENCH_DB, emit, setup_django

SIZES = {"Bench 10k": 10_000, "Bench 100k": 100_000}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="a fraction of the 10,000 and 100,000 deals")
    args = parser.parse_args()
    started = time.perf_counter()
    setup_django()
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from clients.models import Client
    from crm import permissions as gate
    from crm.models import User
    from deals.models import Deal, Funnel, Line, Stage

    client_ids = list(Client.objects.order_by("pk").values_list("pk", flat=True)[:200_000])
    if not client_ids:
        raise SystemExit("run bench/generate_clients.py first")
    users = list(User.objects.filter(username__startswith="bench-").values_list("pk", flat=True))
    rnd = random.Random(4)
    now = datetime.now(UTC)
    result = {}
    for name, full in SIZES.items():
        size = max(8, round(full * args.scale))
        Deal.objects.filter(stage__line__funnel__name=name).delete()
        Funnel.objects.filter(name=name).delete()
        funnel = Funnel.objects.create(name=name, position=100)
        line = Line.objects.create(funnel=funnel, name="Line", position=1)
        stages = [Stage.objects.create(line=line, name=f"Stage {i}", position=i) for i in range(1, 9)]
        assign_perm(gate.ACCESS_FUNNEL, Group.objects.get(name="Manager"), funnel)
        load = time.perf_counter()
        with psycopg.connect(BENCH_DB, autocommit=True) as conn:
            columns = ("client_id, stage_id, name, budget, responsible_id, channel, sales_count, sales_sum, custom, "
                       "position, version, created_at, modified_at, deleted_with_client")
            with conn.cursor().copy(f"COPY deals_deal ({columns}) FROM STDIN") as copy:
                for i in range(size):
                    copy.write_row((
                        rnd.choice(client_ids), stages[i % 8].pk, f"Deal {i}", rnd.randint(100, 100_000),
                        rnd.choice(users), rnd.choice(["vk", "telegram", "phone", ""]), i % 4, (i % 4) * 500, "{}",
                        float(i), 1, now, now, False,
                    ))
            conn.execute("ANALYZE deals_deal")
        result[f"{name.split()[1]}_deals"] = size
        result[f"{name.split()[1]}_load_s"] = round(time.perf_counter() - load, 1)
    result["total_s"] = round(time.perf_counter() - started, 1)
    emit(result)


if __name__ == "__main__":
    main()
