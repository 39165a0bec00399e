"""Time the kanban board, its poll and card moves, and race two users moving the same deal.

    .venv/bin/python bench/board.py [--runs 40] [--races 50]

Needs generate_clients.py and generate_deals.py first. Every figure as the admin (visibility
*all*) and as bench-manager0 (own visibility, the funnels opened to the Manager role: keys with
`_manager`). For each page: p50/p95 (ms, server side through Django's full request cycle), the
query count, the SQL execution time of those queries (EXPLAIN ANALYZE) and the floor ratio,
p50 / (framework floor + SQL), the floor being a trivial authenticated view timed in the same run
(`framework_floor_ms`). The boards also as a first view draws them (`_first_view_p50_ms`): the
markup crm.drawn keeps forgotten before each request. The poll is the URL the rendered board
polls every 4 s, read from the page, asked while nothing changed (204). The last line is one JSON
object.
"""

import argparse
import threading
import time

from common import captured, emit, find_elements, first_view, framework_floor, measure_page, setup_django, summary

POLL_TRIGGER = "every 4s"


def poll_url(page: str) -> str:
    """The change poll's URL, as the board embeds it (the element polled every 4 s)."""
    found = [attrs["hx-get"] for attrs in find_elements(page, hx_trigger=POLL_TRIGGER) if attrs.get("hx-get")]
    assert len(found) == 1, f"the board has {len(found)} elements with hx-trigger={POLL_TRIGGER!r} and an hx-get"
    return found[0]


def board_figures(http, suffix: str, runs: int) -> dict:
    """The board at 10k and 100k and the poll at 100k, for the user `http` is logged in as."""
    from deals.cards import DRAWN_COLUMNS
    from deals.models import Funnel

    result = {f"framework_floor{suffix}_ms": framework_floor(http, runs)}
    floor_ms = result[f"framework_floor{suffix}_ms"]
    print(f"framework floor{suffix:19} p50 {floor_ms:7.1f} ms", flush=True)
    for label, name in (("10k", "Bench 10k"), ("100k", "Bench 100k")):
        url = Funnel.objects.get(name=name).get_absolute_url()
        result.update(measure_page(http, f"board_{label}{suffix}", url, runs=runs, floor_ms=floor_ms))
        result.update(first_view(http, f"board_{label}{suffix}", url, DRAWN_COLUMNS.clear, runs))
    result[f"board{suffix}_queries"] = max(result[f"board_10k{suffix}_queries"], result[f"board_100k{suffix}_queries"])
    response, _queries = captured(http, Funnel.objects.get(name="Bench 100k").get_absolute_url())
    poll = poll_url(response.content.decode())
    result.update(measure_page(http, f"board_poll{suffix}", poll, runs=runs, floor_ms=floor_ms,
                               headers={"HX-Request": "true"}, status=204))
    return result


def move_figures(http, user, suffix: str, runs: int) -> dict:
    """Card moves through the HTTP endpoint, as the board sends them, on the 100k funnel: deals the
    user sees (for a manager, their own)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm import permissions as gate
    from deals.models import Stage

    stages = list(Stage.objects.filter(line__funnel__name="Bench 100k").order_by("position"))
    deals = list(gate.visible_deals(user).filter(stage__in=stages).order_by("?")[: runs + 1])
    samples, move_queries = [], 0
    for index, deal in enumerate(deals):
        target = stages[(stages.index(next(s for s in stages if s.pk == deal.stage_id)) + 1) % len(stages)]
        neighbour = gate.visible_deals(user).filter(stage=target).order_by("position").values_list("pk", flat=True).first()
        data = {"stage": target.pk, "seen_stage": deal.stage_id, "seen_version": deal.version, "before": "",
                "after": neighbour or ""}
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
    print(f"move{suffix:30} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {move_queries:2} queries", flush=True)
    return {f"move{suffix}_p50_ms": p50, f"move{suffix}_p95_ms": p95, f"move{suffix}_queries": move_queries}


def race(admin, races: int) -> int:
    """Two threads (two connections) move the same deal from the same board state: lost updates."""
    from django.db import connection

    from crm.models import User
    from deals import services
    from deals.models import Deal, Stage

    stages = list(Stage.objects.filter(line__funnel__name="Bench 100k").order_by("position"))
    rival = User.objects.filter(username__startswith="bench-manager").first()
    lost = 0
    for deal in Deal.objects.filter(stage__in=stages).select_related("stage__line").order_by("?")[:races]:
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
    return lost


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--races", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from django.test import Client as HttpClient

    from crm import permissions as gate
    from crm.models import User
    from deals.models import Deal, Funnel

    admin = User.objects.get(username="bench-admin")
    manager = User.objects.get(username="bench-manager0")
    clients = {}
    for user in (admin, manager):
        clients[user.pk] = HttpClient()
        clients[user.pk].force_login(user)
    result = {"board_10k_deals": Deal.objects.filter(stage__line__funnel__name="Bench 10k").count(),
              "board_100k_deals": Deal.objects.filter(stage__line__funnel__name="Bench 100k").count(),
              "board_100k_manager_deals": gate.visible_deals(manager).filter(stage__line__funnel__name="Bench 100k").count()}
    bench_funnels = Funnel.objects.filter(name__in=["Bench 10k", "Bench 100k"])
    if gate.visible_funnels(manager).filter(pk__in=bench_funnels.values("pk")).count() != 2:
        raise SystemExit("bench-manager0 may not open the bench funnels: run bench/generate_deals.py again")

    # Pages and polls first, for both users (the moves below change what the poll compares).
    for user, suffix in ((admin, ""), (manager, "_manager")):
        result.update(board_figures(clients[user.pk], suffix, args.runs))
    for user, suffix in ((admin, ""), (manager, "_manager")):
        result.update(move_figures(clients[user.pk], user, suffix, args.runs))

    lost = race(admin, args.races)
    result["race_rounds"] = args.races
    result["race_lost_updates"] = lost
    print(f"race       {args.races} rounds, {lost} lost updates", flush=True)
    emit(result)


if __name__ == "__main__":
    main()
