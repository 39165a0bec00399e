"""Time the kanban board and card moves, and race two users moving the same deal.

    .venv/bin/python bench/board.py [--runs 40] [--races 50]

Needs generate_clients.py and generate_deals.py first. The last line is one JSON object.
"""

import argparse
import threading
import time

from common import emit, setup_django, summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--races", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext

    from crm.models import User
    from deals import services
    from deals.models import Deal, Funnel, Stage

    admin = User.objects.get(username="bench-admin")
    http = HttpClient()
    http.force_login(admin)
    result = {}

    for label, name in (("10k", "Bench 10k"), ("100k", "Bench 100k")):
        funnel = Funnel.objects.get(name=name)
        url = funnel.get_absolute_url()
        http.get(url)
        samples = []
        for _ in range(args.runs):
            started = time.perf_counter()
            assert http.get(url).status_code == 200
            samples.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as queries:
            http.get(url)
        p50, p95 = summary(samples)
        result[f"board_{label}_p50_ms"], result[f"board_{label}_p95_ms"] = p50, p95
        result[f"board_{label}_queries"] = len(queries)
        print(f"board {label:5} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {len(queries)} queries", flush=True)
    result["board_queries"] = max(result["board_10k_queries"], result["board_100k_queries"])

    # Moves through the HTTP endpoint, as the board sends them, on the 100k funnel.
    stages = list(Stage.objects.filter(line__funnel__name="Bench 100k").order_by("position"))
    deals = list(Deal.objects.filter(stage__in=stages).order_by("?")[: args.runs + 1])
    samples, move_queries = [], 0
    for index, deal in enumerate(deals):
        target = stages[(stages.index(next(s for s in stages if s.pk == deal.stage_id)) + 1) % len(stages)]
        neighbour = Deal.objects.filter(stage=target).order_by("position").values_list("pk", flat=True).first()
        data = {"stage": target.pk, "seen_stage": deal.stage_id, "seen_version": deal.version, "before": "", "after": neighbour or ""}
        if index == 0:
            with CaptureQueriesContext(connection) as queries:
                assert http.post(f"/deals/deal/{deal.pk}/move/", data).status_code == 200
            move_queries = len(queries)
            continue
        started = time.perf_counter()
        response = http.post(f"/deals/deal/{deal.pk}/move/", data)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
    p50, p95 = summary(samples)
    result.update(move_p50_ms=p50, move_p95_ms=p95, move_queries=move_queries)
    print(f"move       p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {move_queries} queries", flush=True)

    # The race: two threads (two connections) move the same deal from the same board state.
    rival = User.objects.filter(username__startswith="bench-manager").first()
    lost = 0
    for deal in Deal.objects.filter(stage__in=stages).select_related("stage__line").order_by("?")[: args.races]:
        barrier = threading.Barrier(2)
        outcome = {}
        targets = {admin.pk: stages[0].pk if deal.stage_id != stages[0].pk else stages[1].pk,
                   rival.pk: stages[2].pk if deal.stage_id != stages[2].pk else stages[3].pk}

        def attempt(user, target, barrier=barrier, outcome=outcome, deal=deal):
            try:
                barrier.wait()
                outcome[user.pk] = services.deal_move(actor=user, deal=deal, to_stage_id=target,
                                                      seen_stage_id=deal.stage_id, seen_version=deal.version)
            except services.StaleMove:
                outcome[user.pk] = "stale"
            finally:
                connection.close()

        # the rival acts with admin rights here: the race is about the data, not permissions
        rival_user = User.objects.get(pk=rival.pk)
        rival_user._role_perm_cache = admin.get_all_permissions()
        threads = [threading.Thread(target=attempt, args=(admin, targets[admin.pk])),
                   threading.Thread(target=attempt, args=(rival_user, targets[rival.pk]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [pk for pk, value in outcome.items() if value != "stale"]
        fresh = Deal.objects.get(pk=deal.pk)
        if len(winners) != 1 or fresh.stage_id != targets[winners[0]] or fresh.version != deal.version + 1:
            lost += 1
    result["race_rounds"] = args.races
    result["race_lost_updates"] = lost
    print(f"race       {args.races} rounds, {lost} lost updates", flush=True)
    emit(result)


if __name__ == "__main__":
    main()
