"""Robots as an admin sets them up and a manager sees them act (issue 16, point 9): a robot "on
entry: send a message and create a task" made in the Robots view, a deal dragged into its stage,
the message reaching the Bot API (our own server on 127.0.0.1) and shown in the inbox, the task on
the card; a 1-minute timed robot moving an idle deal; a loop of two robots stopped with its entry
in the feed. A real Celery worker; the test process stands in for beat (engine.sweep, every few
seconds, with the real clock)."""

import pytest
from django.urls import reverse
from django.utils import translation
from playwright.sync_api import expect

from crm import events
from deals.models import Deal
from messenger import secrets
from messenger.models import Channel, Conversation, Message
from robots import engine
from robots.models import Robot, Run
from tasks.models import Task
from tests.conftest import wait_for
from tests.factories import ClientFactory, DealFactory
from tests.messenger.fake_botapi import botapi as botapi_fixture  # noqa: F401  (the botapi fixture)

from .boards import board_url, column
from .conftest import drag, shot

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture
def telegram(transactional_db, botapi, stages):
    channel = Channel.objects.create(kind=Channel.Kind.TELEGRAM, name="Telegram bot", line=stages[0].line,
                                     settings={"api_base": botapi.url})
    secrets.write(channel, {"bot_token": botapi.token, "webhook_secret": "s"})
    channel.save()
    return channel


def en(stage) -> str:
    """A stage's name as the English-speaking admin reads it."""
    with translation.override("en"):
        return str(stage)


def beat():
    """What beat does every 30 s (here every call): missed events, due timed runs, dead workers' runs."""
    events.sweep()
    engine.sweep()



def test_a_robot_made_in_the_robots_view_messages_and_sets_a_task_when_a_deal_enters(
        new_page, live_server, celery_worker, botapi, telegram, boss, stages):
    client = ClientFactory(name="Анна Петрова")
    Conversation.objects.create(client=client, channel=telegram, external_chat_id="5151")
    deal = DealFactory(stage=stages[0], responsible=boss, client=client, name="Анна: тариф")

    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    page.get_by_role("navigation", name="Clients or robots").get_by_role("link", name="Robots").click()
    target = page.locator("section.column", has=page.get_by_role("heading", name=en(stages[1])))
    target.get_by_role("link", name="Add a robot").click()
    page.get_by_label("Name").fill("Greeting")
    rows = page.locator("[data-action-row]")
    rows.nth(0).get_by_role("combobox", name="Action").select_option(label="Send a message")
    rows.nth(0).get_by_label("Text").fill("Hello, {name}!")
    page.get_by_role("button", name="Add an action").click()
    expect(rows).to_have_count(2)
    rows.nth(1).get_by_role("combobox", name="Action").select_option(label="Create a task")
    rows.nth(1).get_by_role("combobox", name="Task type").select_option(index=1)
    rows.nth(1).get_by_label("Text").fill("Call {name} back")
    rows.nth(1).get_by_label("Deadline, minutes after firing").fill("90")
    page.get_by_role("button", name="Create robot").click()
    expect(page.locator(".robot-card", has_text="Greeting")).to_be_visible()
    shot(page, "robots-view")
    robot = Robot.objects.get(name="Greeting")
    assert robot.stage == stages[1] and [a["kind"] for a in robot.actions] == ["message", "task"]

    page.goto(board_url(page, stages[0]))
    expect(page.locator(f"#column-head-{stages[1].pk} .robot-mark")).to_be_visible()
    drag(page, column(page, stages[0]).get_by_text("Анна Петрова"), column(page, stages[1]))
    expect(column(page, stages[1]).get_by_text("Анна Петрова")).to_be_visible()
    assert wait_for(lambda: len(botapi.sent()) == 1, timeout=30)
    assert botapi.sent()[0]["fields"]["text"] == "Hello, Анна Петрова!"
    assert wait_for(lambda: Task.objects.filter(deal=deal).exists(), timeout=30)

    page.goto(page.base + reverse("messenger:inbox"))
    page.get_by_role("link", name="Анна Петрова").click()
    expect(page.locator(".bubble.out .bubble-text")).to_have_text("Hello, Анна Петрова!")
    page.goto(page.base + reverse("clients:detail", args=[client.pk]))
    expect(page.get_by_text("Call Анна Петрова back").first).to_be_visible()
    expect(page.get_by_text("Robot “Greeting” sent the message in Telegram bot: Hello, Анна Петрова!")).to_be_visible()
    assert len(botapi.sent()) == 1 and Message.objects.filter(direction="out").count() == 1


def test_a_one_minute_timed_robot_moves_an_idle_deal(new_page, live_server, celery_worker, boss, stages):
    deal = DealFactory(stage=stages[1], responsible=boss, client=ClientFactory(name="Тихий Клиент"))
    page = new_page(boss)
    page.goto(page.base + reverse("robots:create", args=[stages[2].line.funnel_id, stages[2].pk]))
    page.get_by_role("textbox", name="Name").fill("Nudge")
    page.get_by_label("When").select_option(label="Minutes in the stage without activity")
    page.get_by_label("Minutes without activity").fill("1")
    row = page.locator("[data-action-row]").first
    row.get_by_role("combobox", name="Action").select_option(label="Move to a stage")
    row.get_by_role("combobox", name="Stage").select_option(label=f"{en(stages[3].line)} · {en(stages[3])}")
    page.get_by_role("button", name="Create robot").click()
    expect(page.locator(".robot-card", has_text="Nudge")).to_be_visible()

    page.goto(board_url(page, stages[0]))
    drag(page, column(page, stages[1]).get_by_text("Тихий Клиент"), column(page, stages[2]))
    expect(column(page, stages[2]).get_by_text("Тихий Клиент")).to_be_visible()
    assert wait_for(lambda: Run.objects.filter(state=Run.State.WAITING).exists(), timeout=30)
    run = Run.objects.get()
    deal.refresh_from_db()
    assert (run.due_at - deal.entered_at).total_seconds() == 60

    def moved():
        beat()
        return Deal.objects.get(pk=deal.pk).stage_id == stages[3].pk

    assert wait_for(moved, timeout=150, step=2)
    deal.refresh_from_db()
    # within a minute of due (here: the sweep every 2 s and the worker's drain)
    assert Run.objects.get().finished_at - run.due_at < __import__("datetime").timedelta(seconds=60)
    expect(column(page, stages[3]).get_by_text("Тихий Клиент")).to_be_visible(timeout=15_000)  # the live board


def test_a_loop_of_two_robots_stops_with_its_entry_in_the_feed(new_page, live_server, celery_worker, boss, stages):
    deal = DealFactory(stage=stages[0], responsible=boss, client=ClientFactory(name="Петля Клиент"))
    Robot.objects.create(stage=stages[1], name="There", actions=[{"kind": "move", "stage": stages[2].pk}])
    Robot.objects.create(stage=stages[2], name="Back", actions=[{"kind": "move", "stage": stages[1].pk}])
    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    drag(page, column(page, stages[0]).get_by_text("Петля Клиент"), column(page, stages[1]))
    assert wait_for(lambda: Run.objects.filter(state=Run.State.LOOP).exists(), timeout=60)
    assert Run.objects.filter(state=Run.State.DONE).count() == engine.DEPTH_LIMIT
    page.goto(page.base + reverse("clients:detail", args=[deal.client_id]))
    expect(page.get_by_text("stopped: loop (5 robots in a row)")).to_be_visible()
    page.goto(page.base + reverse("crm:notifications"))
    expect(page.get_by_text("a loop of robots").first).to_be_visible()
