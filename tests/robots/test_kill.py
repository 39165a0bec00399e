"""Kill it and see (issue 16, point 3): real Celery workers killed with SIGKILL in the middle of a
robot's run and in the middle of a batch; after the next worker (and beat's sweep, called here
with its clock moved past the claim's staleness), every run has fired exactly once: one message
per run, each action once."""

import signal
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crm import events
from deals import services as deal_services
from deals.models import Deal, Line, Stage
from messenger.models import Channel, Conversation, Message
from robots import engine
from robots.models import Robot, Run
from tests.conftest import start_worker, stop_worker, wait_for
from tests.factories import ClientFactory, DealFactory

pytestmark = pytest.mark.django_db(transaction=True)


def kill(process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


@pytest.fixture
def stages(db):
    return list(Stage.objects.filter(line=Line.objects.get(funnel__name="Sales", position=1)).order_by("position"))


@pytest.fixture
def channel(stages):
    return Channel.objects.create(kind=Channel.Kind.CONSOLE, name="Site chat", line=stages[0].line)


def deals_with_chats(n, stage, channel, admin):
    deals = []
    for i in range(n):
        deal = DealFactory(stage=stage, responsible=admin, client=ClientFactory(name=f"Клиент {i}"))
        Conversation.objects.create(client=deal.client, channel=channel, external_chat_id=f"v-{deal.client_id}")
        deals.append(deal)
    return deals


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


def enter(admin, deals, stage):
    for deal in deals:
        deal.refresh_from_db()
        deal_services.deal_move(actor=admin, deal=deal, to_stage_id=stage.pk, seen_stage_id=deal.stage_id,
                                seen_version=deal.version)


def test_a_worker_killed_between_two_actions_resumes_at_the_second(worker_queue, admin, stages, channel):
    deal, = deals_with_chats(1, stages[0], channel, admin)
    Robot.objects.create(stage=stages[1], name="Привет и дальше", actions=[
        {"kind": "message", "text": "Здравствуйте, {name}!"}, {"kind": "move", "stage": stages[2].pk}])
    first = start_worker(worker_queue)
    try:
        with transaction.atomic():  # the test holds the deal: the worker's move (the second action) waits for it
            enter(admin, [deal], stages[1])
        with transaction.atomic():
            # (FOR NO KEY UPDATE, as an UPDATE takes: the run's foreign key to the deal may still be checked)
            Deal.objects.select_for_update(no_key=True).get(pk=deal.pk)
            # the deal's entry commits the event; the worker plans the run, sends the message, then waits
            assert wait_for(lambda: Run.objects.filter(step=1).exists() and waiting_on_a_lock(), timeout=60, step=0.05)
            kill(first)
    finally:
        stop_worker(first)
    run = Run.objects.get()
    assert (run.state, run.step) == (Run.State.RUNNING, 1)
    assert Message.objects.filter(direction="out").count() == 1
    second = start_worker(worker_queue)
    try:
        assert engine.sweep(now=timezone.now() + engine.STALE + timedelta(seconds=1))["stale"] == 1
        assert wait_for(lambda: Run.objects.get().state == Run.State.DONE, timeout=60)
    finally:
        stop_worker(second)
    deal.refresh_from_db()
    assert deal.stage == stages[2]
    assert Message.objects.filter(direction="out").count() == 1
    assert Run.objects.get().attempts == 2


def test_a_worker_killed_mid_batch_leaves_every_run_fired_exactly_once(worker_queue, admin, stages, channel):
    deals = deals_with_chats(120, stages[0], channel, admin)
    Robot.objects.create(stage=stages[1], name="Приветствие", actions=[{"kind": "message", "text": "Здравствуйте, {name}!"}])
    first = start_worker(worker_queue)
    try:
        enter(admin, deals, stages[1])
        assert wait_for(lambda: Run.objects.filter(state=Run.State.DONE).count() >= 20, timeout=60, step=0.02)
        kill(first)
    finally:
        stop_worker(first)
    assert Run.objects.filter(state=Run.State.DONE).count() < 120  # it died with work left
    second = start_worker(worker_queue)
    try:
        from django.conf import settings

        from messenger.outbox import due
        from messenger.tasks import message_send

        def settled():
            engine.sweep(now=timezone.now() + engine.STALE + timedelta(seconds=1))  # beat, its clock past the claims
            events.sweep(now=timezone.now() + events.SWEEP_AFTER + timedelta(seconds=1))
            # beat's messenger sweep, its clock past the claims: messages the dead worker's drain had taken
            for pk in due(now=timezone.now() + timedelta(seconds=settings.JOB_STALE_SECONDS + 1)):
                message_send.delay(pk)
            return (Run.objects.filter(state=Run.State.DONE).count() == 120
                    and Message.objects.filter(direction="out", status=Message.Status.SENT).count() == 120)

        assert wait_for(settled, timeout=120, step=0.5)
    finally:
        stop_worker(second)
    assert Run.objects.count() == 120
    sent = list(Message.objects.filter(direction="out").values_list("conversation__client_id", flat=True))
    assert sorted(sent) == sorted(d.client_id for d in deals)  # one each: none missing, none doubled
