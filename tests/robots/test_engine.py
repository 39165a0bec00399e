"""Robots' engine (issue 16): planned from events, exactly once per entry, on time, no loops,
and every firing or skip said in the feed and the log. The worker's part (events.process,
engine.drain, engine.sweep) is called here in the test's process; tests/robots/test_kill.py runs
it in real Celery workers killed with SIGKILL."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone, translation

from clients import services as client_services
from crm import events
from crm.models import Activity, Event, Notification
from deals import services as deal_services
from deals import shifts
from deals.models import Deal, Line, Stage
from messenger import ingress
from messenger.models import Channel, Conversation, Message
from messenger.receive import process as process_inbound
from robots import engine, texts
from robots.models import Robot, Run, Suspension
from tasks.models import Task, TaskType
from tests.factories import ClientFactory, DealFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(db):
    return Line.objects.get(funnel__name="Sales", position=1)


@pytest.fixture
def stages(line):
    return list(Stage.objects.filter(line=line).order_by("position"))


@pytest.fixture
def channel(line):
    return Channel.objects.create(kind=Channel.Kind.CONSOLE, name="Site chat", line=line)


def robot(stage, *actions, trigger=Robot.Trigger.ENTERED, name="Приветствие", **extra):
    return Robot.objects.create(stage=stage, name=name, trigger=trigger, actions=list(actions), **extra)


def settle(rounds=20):
    """What the workers would do until nothing is left: events, then runs, again."""
    for _ in range(rounds):
        if not (events.process() + engine.drain()):
            return


def move(actor, deal, stage):
    deal.refresh_from_db()
    deal_services.deal_move(actor=actor, deal=deal, to_stage_id=stage.pk, seen_stage_id=deal.stage_id,
                            seen_version=deal.version)


def chat(channel, deal, text="Здравствуйте!"):
    """The client has written in the site chat (a conversation to answer in)."""
    payload = {"id": uuid.uuid4().hex, "from": f"visitor-{deal.client_id}", "text": text}
    conversation = Conversation.objects.create(client=deal.client, channel=channel, external_chat_id=payload["from"])
    inbound = ingress.store(channel, payload["id"], json.dumps(payload))
    assert process_inbound(inbound) == "done"
    return conversation


def feed(deal):
    with translation.override("en"):
        return [texts.feed_text(a) for a in Activity.objects.filter(deal=deal, kind=Activity.Kind.ROBOT).order_by("pk")]


def test_on_entry_sends_the_message_and_creates_the_task_once(admin, stages, channel):
    deal = DealFactory(stage=stages[0], responsible=admin, client=ClientFactory(name="Анна Петрова"))
    chat(channel, deal)
    task_type = TaskType.objects.order_by("pk").first()
    robot(stages[1], {"kind": "message", "text": "Здравствуйте, {name}! Ваш менеджер {manager}."},
          {"kind": "task", "task_type": task_type.pk, "text": "Позвонить {name}", "deadline_minutes": 90, "user": 0})
    settle()
    assert Run.objects.count() == 0  # the chat's message is no entry into the robot's stage
    move(admin, deal, stages[1])
    settle()
    run = Run.objects.get()
    assert (run.state, run.step) == (Run.State.DONE, 2)
    sent = Message.objects.get(direction=Message.Direction.OUT)
    assert sent.text == f"Здравствуйте, Анна Петрова! Ваш менеджер {admin}."
    assert sent.key == engine.message_key(run, 0) and sent.author is None
    task = Task.objects.get(deal=deal)
    assert (task.description, task.responsible, task.type) == ("Позвонить Анна Петрова", admin, task_type)
    assert abs((task.deadline - timezone.now()) - timedelta(minutes=90)) < timedelta(minutes=1)
    lines = feed(deal)
    assert lines[0].startswith("Robot “Приветствие” sent the message in Site chat: Здравствуйте, Анна Петрова!")
    assert lines[1].startswith("Robot “Приветствие” created the task “")
    # The same event handed over again, the run executed again: nothing more.
    Event.objects.update(processed_at=None)
    settle()
    assert engine.execute(run.pk) == Run.State.DONE
    assert (Run.objects.count(), Message.objects.filter(direction="out").count(), Task.objects.count()) == (1, 1, 1)


def test_a_second_entry_fires_again_and_a_reorder_in_the_stage_does_not(admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    tag = TagFactory(name="горячий")
    robot(stages[1], {"kind": "tag_add", "tag": tag.pk})
    move(admin, deal, stages[1])
    settle()
    deal.refresh_from_db()
    deal_services.deal_move(actor=admin, deal=deal, to_stage_id=stages[1].pk, seen_stage_id=stages[1].pk,
                            seen_version=deal.version)  # a reorder within the stage: no entry
    settle()
    assert Run.objects.count() == 1 and list(deal.tags.all()) == [tag]
    move(admin, deal, stages[0])
    move(admin, deal, stages[1])
    settle()
    assert Run.objects.filter(state=Run.State.DONE).count() == 2


def test_a_run_resumes_after_the_first_action_and_never_repeats_it(admin, stages, channel):
    deal = DealFactory(stage=stages[0], responsible=admin)
    chat(channel, deal)
    robot(stages[1], {"kind": "message", "text": "Привет"}, {"kind": "move", "stage": stages[2].pk})
    move(admin, deal, stages[1])
    events.process()
    run = Run.objects.get()
    assert engine.claim() == [run.pk]
    # A worker did the first action, then died: the step and the message are committed, nothing else.
    from robots import actions

    with transaction.atomic():
        deal = Deal.objects.select_related("client", "stage__line").get(pk=deal.pk)
        outcome = actions.perform(run, 0, run.robot.actions[0], deal)
        Run.objects.filter(pk=run.pk).update(step=1, detail={"done": [outcome]})
    assert engine.sweep()["stale"] == 0  # its claim is fresh: nobody takes it yet
    result = engine.sweep(now=timezone.now() + engine.STALE + timedelta(seconds=1))
    assert result["stale"] == 1
    engine.drain()
    run.refresh_from_db()
    deal.refresh_from_db()
    assert (run.state, run.step, run.attempts, deal.stage) == (Run.State.DONE, 2, 2, stages[2])
    assert Message.objects.filter(direction="out").count() == 1


def test_timed_robot_fires_after_n_minutes_without_activity_and_activity_pushes_it(admin, stages, channel):
    deal = DealFactory(stage=stages[0], responsible=admin)
    conversation = chat(channel, deal)
    robot(stages[1], {"kind": "move", "stage": stages[2].pk}, trigger=Robot.Trigger.IDLE, idle_minutes=10, name="Не отвечает")
    move(admin, deal, stages[1])
    settle()
    run = Run.objects.get()
    deal.refresh_from_db()
    assert run.state == Run.State.WAITING and run.due_at == deal.entered_at + timedelta(minutes=10)
    assert engine.sweep(now=run.due_at - timedelta(seconds=1))["due"] == 0
    # Activity: a comment, then the manager's reply in the chat; each starts the minutes again.
    client_services.comment_add(actor=admin, client=deal.client, text="Перезвонить")
    settle()
    run.refresh_from_db()
    assert run.due_at > deal.entered_at + timedelta(minutes=10)
    from messenger import outbox

    outbox.reply(actor=admin, conversation=conversation, text="Добрый день")
    # An activity not yet processed holds the timer back even once it is "due".
    assert engine.sweep(now=timezone.now() + timedelta(minutes=11))["due"] == 0
    events.process()
    run.refresh_from_db()
    assert abs(run.due_at - (timezone.now() + timedelta(minutes=10))) < timedelta(seconds=30)
    assert engine.sweep(now=run.due_at + timedelta(seconds=1))["due"] == 1
    engine.drain()
    deal.refresh_from_db()
    assert deal.stage == stages[2]
    assert feed(deal) == ["Robot “Не отвечает” moved the deal to “Link sent”"]


def test_leaving_the_stage_cancels_the_waiting_timed_run(admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    robot(stages[1], {"kind": "move", "stage": stages[2].pk}, trigger=Robot.Trigger.IDLE, idle_minutes=1)
    move(admin, deal, stages[1])
    settle()
    move(admin, deal, stages[0])
    settle()
    run = Run.objects.get()
    assert run.state == Run.State.CANCELLED
    assert engine.sweep(now=timezone.now() + timedelta(minutes=5))["due"] == 0
    deal.refresh_from_db()
    assert deal.stage == stages[0]


def test_a_run_whose_deal_left_before_it_ran_is_cancelled(admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    robot(stages[1], {"kind": "move", "stage": stages[2].pk})
    move(admin, deal, stages[1])
    events.process()
    move(admin, deal, stages[0])
    engine.drain()
    run = Run.objects.get(robot__stage=stages[1])
    assert run.state == Run.State.CANCELLED
    with translation.override("en"):
        assert texts.run_text(run) == "cancelled: the deal left the stage first"


def test_a_loop_of_two_robots_stops_at_depth_five_and_tells_the_admins(admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    robot(stages[1], {"kind": "move", "stage": stages[2].pk}, name="Туда")
    robot(stages[2], {"kind": "move", "stage": stages[1].pk}, name="Обратно")
    move(admin, deal, stages[1])
    settle(rounds=30)
    assert Run.objects.filter(state=Run.State.DONE).count() == engine.DEPTH_LIMIT
    stopped = Run.objects.get(state=Run.State.LOOP)
    assert stopped.depth == engine.DEPTH_LIMIT
    assert feed(deal)[-1].endswith("stopped: loop (5 robots in a row)")
    note = Notification.objects.get(user=admin, kind=Notification.Kind.ROBOT)
    from crm.activity import notification_text_for

    admin.language = "en"
    assert notification_text_for(admin, note).endswith("a loop of robots")
    assert not Run.objects.exclude(state__in=Run.FINAL).exists()


def test_more_than_twenty_firings_in_an_hour_suspend_the_robot_for_the_deal(admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    bot = robot(stages[1], {"kind": "tag_add", "tag": TagFactory().pk}, name="Часто")
    now = timezone.now()
    Run.objects.bulk_create([Run(robot=bot, deal=deal, entry=now - timedelta(minutes=i + 1), state=Run.State.DONE,
                                 finished_at=now - timedelta(minutes=i)) for i in range(engine.RATE_LIMIT)])
    move(admin, deal, stages[1])
    settle()
    latest = Run.objects.order_by("-pk").first()
    assert latest.state == Run.State.SUSPENDED
    assert Suspension.objects.filter(robot=bot, deal=deal).exists()
    assert "suspended for this deal" in feed(deal)[-1]
    assert Notification.objects.filter(user=admin, kind=Notification.Kind.ROBOT, params__about="suspended").count() == 1
    assert engine.resume(bot, deal)
    assert not Suspension.objects.exists()


@pytest.mark.parametrize("conditions, fails", [
    ({"tags": ["TAG"]}, None),
    ({"tags": [0]}, "tag"),
    ({"channels": ["telegram"]}, "channel"),
    ({"responsibles": ["ADMIN"]}, None),
    ({"responsibles": [0]}, "responsible"),
    ({"budget_min": "1000", "budget_max": "5000"}, None),
    ({"budget_min": "5000.01"}, "budget"),
    ({"field": "cf_1", "field_value": "Gold "}, None),
    ({"field": "cf_1", "field_value": "silver"}, "field"),
])
def test_conditions_skip_naming_the_one_that_failed(admin, stages, conditions, fails):
    tag = TagFactory(name="vip")
    client = ClientFactory(custom={"cf_1": "gold"})
    client.tags.add(tag)  # a client's tag counts as the deal's
    deal = DealFactory(stage=stages[0], responsible=admin, budget=Decimal("5000"), client=client)
    conditions = json.loads(json.dumps(conditions).replace('"TAG"', str(tag.pk)).replace('"ADMIN"', str(admin.pk)))
    robot(stages[1], {"kind": "move", "stage": stages[2].pk}, conditions=conditions)
    move(admin, deal, stages[1])
    settle()
    run = Run.objects.get(robot__stage=stages[1])
    if fails is None:
        assert run.state == Run.State.DONE
    else:
        assert (run.state, run.detail["condition"]) == (Run.State.SKIPPED, fails)
        deal.refresh_from_db()
        assert deal.stage == stages[1]


def test_outside_working_hours_the_run_waits_for_them_in_the_funnels_zone(admin, stages):
    funnel = stages[0].line.funnel
    funnel.time_zone = "Asia/Vladivostok"
    funnel.save()
    from zoneinfo import ZoneInfo

    local = timezone.localtime(timezone.now(), ZoneInfo("Asia/Vladivostok"))
    opens = (local + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    closes = (local + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    deal = DealFactory(stage=stages[0], responsible=admin)
    robot(stages[1], {"kind": "move", "stage": stages[2].pk},
          conditions={"hours_from": opens.strftime("%H:%M"), "hours_to": closes.strftime("%H:%M")})
    move(admin, deal, stages[1])
    settle()
    run = Run.objects.get()
    assert run.state == Run.State.WAITING and run.detail["code"] == "hours"
    assert run.due_at == opens
    from robots import conditions

    assert conditions.hours_open_at(run.robot, opens + timedelta(minutes=1)) is None  # inside: it goes on
    assert conditions.hours_open_at(run.robot, closes + timedelta(minutes=1)) == opens + timedelta(days=1)
    # Queued when due; this clock is still before the hours, so it waits again for the same opening.
    assert engine.sweep(now=run.due_at + timedelta(seconds=1))["due"] == 1
    engine.drain()
    run.refresh_from_db()
    assert (run.state, run.due_at) == (Run.State.WAITING, opens)
    with translation.override("en"):
        assert texts.run_text(run).startswith("waiting for working hours")


def test_inbound_message_and_sale_and_registration_triggers(admin, stages, channel):
    deal = DealFactory(stage=stages[1], responsible=admin)
    conversation = Conversation.objects.create(client=deal.client, channel=channel, external_chat_id="v-1")
    robot(stages[1], {"kind": "tag_add", "tag": TagFactory(name="написал").pk}, trigger=Robot.Trigger.MESSAGE_IN)
    robot(stages[1], {"kind": "tag_add", "tag": TagFactory(name="купил").pk}, trigger=Robot.Trigger.SALE)
    robot(stages[1], {"kind": "tag_add", "tag": TagFactory(name="зарегистрирован").pk}, trigger=Robot.Trigger.REGISTRATION)
    payload = {"id": "m1", "from": conversation.external_chat_id, "text": "Есть вопрос"}
    assert process_inbound(ingress.store(channel, "m1", json.dumps(payload))) == "done"
    settle()
    assert sorted(deal.tags.values_list("name", flat=True)) == ["написал"]
    deal_services.sale_add(actor=admin, deal=deal, player_id="P-1", amount=Decimal("100"))
    deal_services.deal_update(actor=admin, deal=deal, data={"registration_date": timezone.localdate()})
    settle()
    assert sorted(deal.tags.values_list("name", flat=True)) == sorted(["написал", "купил", "зарегистрирован"])
    # A second message in the same stay: the message robot fired once per entry.
    assert process_inbound(ingress.store(channel, "m2", json.dumps({**payload, "id": "m2"}))) == "done"
    settle()
    assert Run.objects.filter(robot__trigger=Robot.Trigger.MESSAGE_IN).count() == 1


def test_change_of_responsible_asks_eligibility_and_transfer_redistributes(admin, manager, other_manager, stages):
    line = stages[0].line
    second = Line.objects.get(funnel=line.funnel, position=2)
    Line.objects.filter(pk=second.pk).update(distribution=Line.Distribution.ROUND_ROBIN)
    deal = DealFactory(stage=stages[0], responsible=admin)
    robot(stages[1], {"kind": "responsible", "user": other_manager.pk}, name="Отто")
    robot(stages[2], {"kind": "transfer", "line": second.pk}, name="Во 2-ю линию")
    move(admin, deal, stages[1])
    settle()
    deal.refresh_from_db()
    assert deal.responsible == admin  # Otto is not on shift: he may not receive the line's deals
    assert "the user may not receive this line's deals" in feed(deal)[-1]
    shifts.start(user=manager)
    move(admin, deal, stages[2])
    settle()
    deal.refresh_from_db()
    assert deal.stage.line == second and deal.stage == Stage.objects.filter(line=second).order_by("position").first()
    assert deal.responsible == manager  # given out again by the 2nd line's round robin


def test_apply_to_deals_already_in_the_stage(admin, stages):
    deals = [DealFactory(stage=stages[1], responsible=admin) for _ in range(3)]
    bot = robot(stages[1], {"kind": "move", "stage": stages[2].pk})
    assert engine.plan_existing(bot) == 3
    settle()
    assert Deal.objects.filter(pk__in=[d.pk for d in deals], stage=stages[2]).count() == 3


def test_events_exist_only_when_the_change_commits_and_the_sweep_finds_missed_ones(admin, stages):
    deal = DealFactory(stage=stages[0], responsible=admin)
    before = Event.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        move(admin, deal, stages[1])
        raise RuntimeError
    assert Event.objects.count() == before
    move(admin, deal, stages[1])
    event = Event.objects.latest("pk")
    assert (event.kind, event.deal_id, event.stage_id, event.processed_at) == ("stage", deal.pk, stages[1].pk, None)
    Event.objects.update(processed_at=timezone.now())  # everything else is done
    Event.objects.filter(pk=event.pk).update(processed_at=None)
    assert events.sweep() == 0  # too young: its own dispatch is on its way
    assert events.sweep(now=timezone.now() + events.SWEEP_AFTER + timedelta(seconds=1)) == 1
    event.refresh_from_db()
    assert event.processed_at is not None


def test_editing_a_timed_robot_moves_or_cancels_its_waiting_runs(admin, stages):
    from robots import services

    deal = DealFactory(stage=stages[0], responsible=admin)
    bot = robot(stages[1], {"kind": "move", "stage": stages[2].pk}, trigger=Robot.Trigger.IDLE, idle_minutes=10)
    move(admin, deal, stages[1])
    settle()
    run = Run.objects.get()
    due = run.due_at
    data = {"name": bot.name, "trigger": Robot.Trigger.IDLE, "idle_minutes": 25, "conditions": {}, "actions": bot.actions}
    services.robot_update(actor=admin, robot=bot, data=data)
    run.refresh_from_db()
    assert run.due_at - due == timedelta(minutes=15)
    services.robot_update(actor=admin, robot=bot, data={**data, "trigger": Robot.Trigger.ENTERED})
    run.refresh_from_db()
    assert run.state == Run.State.CANCELLED
    with translation.override("en"):
        assert texts.run_text(run) == "cancelled: the robot no longer waits for idle minutes"


def test_robot_messages_are_sent_by_one_drain_not_a_task_each(admin, stages, channel):
    from messenger import outbox

    deals = [DealFactory(stage=stages[0], responsible=admin) for _ in range(3)]
    for deal in deals:
        chat(channel, deal)
    robot(stages[1], {"kind": "message", "text": "Привет, {name}"})
    for deal in deals:
        move(admin, deal, stages[1])
    settle()
    queued = Message.objects.filter(direction="out", status=Message.Status.QUEUED)
    assert queued.count() == 3 and not queued.exclude(claimed_at=None).exists()  # on no broker yet
    # The sweep leaves them to the drain while they are fresh (it would queue a task for each).
    assert outbox.due(now=timezone.now() + timedelta(seconds=30)) == []
    assert outbox.drain_sending() == 3
    assert Message.objects.filter(direction="out", status=Message.Status.SENT).count() == 3
    assert outbox.drain_sending() == 0


def test_a_message_with_link_sends_the_deals_registration_link(admin, stages, channel, settings):
    from partners.models import Link, Partner

    settings.PUBLIC_URL = "https://crm.example"
    Partner.objects.create(name="Keitaro", slug="keitaro", url_template="https://p.example/?c={click_id}")
    deal = DealFactory(stage=stages[0], responsible=admin)
    chat(channel, deal)
    robot(stages[1], {"kind": "message", "text": "Ваша ссылка: {link}"})
    move(admin, deal, stages[1])
    settle()
    link = Link.objects.get(deal=deal)
    assert Message.objects.get(direction="out").text == f"Ваша ссылка: https://crm.example/go/{link.token}"


@pytest.mark.django_db(transaction=True)
def test_a_transaction_asks_a_worker_once_however_many_events_it_emits():
    from django.db import connection

    client = ClientFactory()

    def kicks() -> int:
        return sum(1 for _ids, func, _robust in connection.run_on_commit if func is events.kick)

    with transaction.atomic():
        for _ in range(3):
            events.emit(Event.Kind.SALE, client_id=client.pk)
        assert kicks() == 1
    with transaction.atomic():
        try:
            with transaction.atomic():
                events.emit(Event.Kind.SALE, client_id=client.pk)
                raise RuntimeError
        except RuntimeError:
            pass
        assert kicks() == 0  # dropped with its savepoint
        events.emit(Event.Kind.SALE, client_id=client.pk)
        assert kicks() == 1  # so it is asked for again
    assert Event.objects.filter(kind=Event.Kind.SALE).count() == 4
