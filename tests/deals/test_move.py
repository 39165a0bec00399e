import threading

import pytest
from django.db import connection
from django.urls import reverse

from deals import services
from deals.models import Deal
from tests.factories import DealFactory, FunnelFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def move(client, deal, stage, *, seen_stage=None, seen_version=None, before="", after=""):
    return client.post(reverse("deals:move", args=[deal.pk]), {
        "stage": stage.pk, "seen_stage": seen_stage or deal.stage_id, "seen_version": seen_version or deal.version,
        "before": before, "after": after,
    })


def test_move_saves_stage_position_and_bumps_version(admin_client, admin, stages):
    from crm.models import Activity

    deal = DealFactory(stage=stages[0])
    top = DealFactory(stage=stages[1], position=10)
    bottom = DealFactory(stage=stages[1], position=20)
    response = move(admin_client, deal, stages[1], before=top.pk, after=bottom.pk)
    assert response.status_code == 200 and response.json() == {"version": 2, "stage": stages[1].pk}
    deal.refresh_from_db()
    assert deal.stage == stages[1] and deal.version == 2 and deal.position == 15
    entry = Activity.objects.get(deal=deal)
    assert (entry.kind, entry.actor, entry.old_value, entry.new_value) == ("stage", admin, str(stages[0].pk), str(stages[1].pk))
    # a reorder within the stage is saved too, without a feed entry
    assert move(admin_client, deal, stages[1], seen_stage=stages[1].pk, seen_version=2, after=top.pk).status_code == 200
    deal.refresh_from_db()
    assert deal.position == 10 - 1024 and Activity.objects.filter(deal=deal).count() == 1


def test_stale_move_is_refused_with_409_and_nothing_changes(admin_client, stages):
    deal = DealFactory(stage=stages[0])
    Deal.objects.filter(pk=deal.pk).update(stage=stages[2], version=2)  # someone else moved it
    response = move(admin_client, deal, stages[1], seen_stage=stages[0].pk, seen_version=1)
    assert response.status_code == 409 and "changed this deal" in response.json()["error"]
    deal.refresh_from_db()
    assert deal.stage == stages[2] and deal.version == 2


def test_move_to_another_funnels_stage_is_refused(admin_client, stages):
    deal = DealFactory(stage=stages[0])
    elsewhere = FunnelFactory().lines.get().stages.first()
    response = move(admin_client, deal, elsewhere)
    assert response.status_code == 400
    deal.refresh_from_db()
    assert deal.stage == stages[0] and deal.version == 1


def test_user_without_move_permission_gets_403_and_deal_unchanged(client, stages):
    viewer_role = role("Manager")
    from django.contrib.auth.models import Permission

    viewer_role.group.permissions.remove(Permission.objects.get(codename="move_deal"))
    user = UserFactory(role=viewer_role)
    deal = DealFactory(stage=stages[0], responsible=user)
    client.force_login(user)
    assert move(client, deal, stages[1]).status_code == 403
    deal.refresh_from_db()
    assert deal.stage == stages[0] and deal.version == 1
    assert "move-select" not in client.get(stages[0].line.funnel.get_absolute_url()).content.decode()


def test_others_deal_is_404(manager_client, admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    assert move(manager_client, deal, stages[1]).status_code == 404
    deal.refresh_from_db()
    assert deal.stage == stages[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("others", [1, 40])
def test_move_query_count(others, client, django_assert_num_queries):
    """Outside a test transaction, as in production: no savepoints in the count."""
    from deals.models import Stage

    stages = list(Stage.objects.filter(line__funnel__name="Sales", line__position=1).order_by("position"))
    client.force_login(UserFactory(role=role("Admin")))
    deal = DealFactory(stage=stages[0])
    neighbours = [DealFactory(stage=stages[1], position=i) for i in range(others)]
    # user with perms, deal, one statement: the conditional update with the neighbours'
    # positions inside it and the feed entry written by the same statement
    with django_assert_num_queries(3):
        response = move(client, deal, stages[1], before=neighbours[0].pk, after=neighbours[-1].pk if others > 1 else "")
    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == stages[1]
    if others > 1:
        assert neighbours[0].position < deal.position < neighbours[-1].position
    else:
        assert deal.position == neighbours[0].position + 1024


@pytest.mark.django_db(transaction=True)
def test_two_truly_concurrent_moves_one_wins_nothing_lost():
    """Two threads, two PostgreSQL connections, released together: exactly one move lands."""
    from deals.models import Stage
    from tests.factories import DealFactory as Deals

    first, second, third = list(Stage.objects.filter(line__funnel__name="Sales", line__position=1).order_by("position"))[:3]
    alice = UserFactory(role=role("Admin"))
    bob = UserFactory(role=role("Admin"))
    deal = Deals(stage=first)
    loaded = Deal.objects.select_related("stage__line").get(pk=deal.pk)
    barrier = threading.Barrier(2)
    results = {}

    def attempt(user, target):
        try:
            barrier.wait()
            results[user.pk] = services.deal_move(
                actor=user, deal=loaded, to_stage_id=target.pk, seen_stage_id=first.pk, seen_version=1
            )
        except services.StaleMove:
            results[user.pk] = "stale"
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(alice, second)), threading.Thread(target=attempt, args=(bob, third))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, results.values())) == ["2", "stale"]
    winner = alice if results[alice.pk] == 2 else bob
    deal.refresh_from_db()
    assert deal.version == 2 and deal.stage == (second if winner is alice else third)


@pytest.mark.django_db(transaction=True)
def test_a_move_in_a_distributing_line_asks_once_whether_its_queue_waits(client, django_assert_num_queries):
    """Issue 14: a move may make room under the line's cap; with nothing queued it costs one query more."""
    from deals.models import Line, Stage

    stages = list(Stage.objects.filter(line__funnel__name="Sales", line__position=1).order_by("position"))
    Line.objects.filter(pk=stages[0].line_id).update(distribution=Line.Distribution.ROUND_ROBIN)
    user = UserFactory(role=role("Admin"))
    client.force_login(user)
    deal = DealFactory(stage=stages[0], responsible=user)
    with django_assert_num_queries(4):  # user with perms, deal, the move, is anything queued in the line
        assert move(client, deal, stages[1]).status_code == 200
