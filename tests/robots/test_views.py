"""The robots' pages (issue 16): admins configure robots on the Robots view of a funnel; managers
are refused everything with the database untouched; the dry run writes nothing; every page and
partial costs the same queries at two data sizes."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from deals.models import Deal, Funnel, Stage
from robots.models import Robot, Run, Suspension
from tests.conftest import HX
from tests.factories import DealFactory, FunnelFactory, TagFactory


def fingerprint():
    """Everything a robots page could change."""
    tables = ["robots_robot", "robots_run", "robots_suspension", "deals_deal", "crm_activity", "crm_notification",
              "tasks_task", "messenger_message", "crm_event", "deals_deal_tags"]
    out = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t")
            out.append((table, *cursor.fetchone()))
    return out


@pytest.fixture
def funnel(db):
    return Funnel.objects.get(name="Sales")


@pytest.fixture
def stages(funnel):
    return list(Stage.objects.filter(line__funnel=funnel, line__position=1).order_by("position"))


def make_robot(stage, name="Greeting", position=0, **kwargs):
    tag = TagFactory(name="vip")
    values = {
        "trigger": Robot.Trigger.ENTERED,
        "conditions": {"channels": ["telegram"], "tags": [tag.pk], "budget_min": "100", "hours_from": "09:00",
                       "hours_to": "18:00", "days": [0, 1, 2, 3, 4]},
        "actions": [{"kind": "message", "text": "Hello, {name}!"}, {"kind": "tag_add", "tag": tag.pk},
                    {"kind": "move", "stage": stage.pk}],
    }
    values.update(kwargs)
    return Robot.objects.create(stage=stage, name=name, position=position, **values)


@pytest.fixture
def robot(stages):
    return make_robot(stages[0])


def robot_urls(funnel, robot, deal_pk=1):
    """Every robots URL with its method."""
    f, r, s = funnel.pk, robot.pk, robot.stage_id
    return [
        ("get", reverse("robots:board", args=[f])),
        ("get", reverse("robots:create", args=[f, s])),
        ("post", reverse("robots:create", args=[f, s])),
        ("post", reverse("robots:reorder", args=[f, s])),
        ("get", reverse("robots:edit", args=[f, r])),
        ("post", reverse("robots:edit", args=[f, r])),
        ("post", reverse("robots:toggle", args=[f, r])),
        ("post", reverse("robots:move", args=[f, r])),
        ("post", reverse("robots:copy", args=[f, r])),
        ("get", reverse("robots:delete", args=[f, r])),
        ("post", reverse("robots:delete", args=[f, r])),
        ("get", reverse("robots:log", args=[f, r])),
        ("get", reverse("robots:dry-run", args=[f, r])),
        ("post", reverse("robots:resume", args=[f, r, deal_pk])),
    ]


def form_data(stages, **overrides):
    data = {
        "name": "Welcome", "trigger": "entered", "idle_minutes": "",
        "actions-TOTAL_FORMS": "2", "actions-INITIAL_FORMS": "0", "actions-MIN_NUM_FORMS": "1", "actions-MAX_NUM_FORMS": "1000",
        "actions-0-kind": "message", "actions-0-text": "Hello, {name}!",
        "actions-1-kind": "move", "actions-1-stage": str(stages[1].pk), "actions-1-deadline_minutes": "60",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# Who may -------------------------------------------------------------------------------------


def test_manager_is_refused_every_robots_url_and_nothing_changes(manager_client, funnel, robot, stages):
    deal = DealFactory(stage=stages[0])
    Suspension.objects.create(robot=robot, deal=deal)
    before = fingerprint()
    for method, url in robot_urls(funnel, robot, deal.pk):
        payload = {**form_data(stages), "on": "0", "direction": "down", "stage": stages[1].pk, "order": [robot.pk]}
        response = getattr(manager_client, method)(url, payload if method == "post" else {"deal": deal.pk})
        assert response.status_code == 403, (method, url)
        response = getattr(manager_client, method)(url, payload if method == "post" else {}, headers=HX)
        assert response.status_code == 403, (method, url)
    assert fingerprint() == before


def test_the_board_shows_the_robots_switch_and_the_mark_only_as_allowed(manager_client, funnel, stages):
    make_robot(stages[1])
    make_robot(stages[1], name="Off one", is_active=False)
    page = manager_client.get(funnel.get_absolute_url()).content.decode()
    assert reverse("robots:board", args=[funnel.pk]) not in page  # no switch for a manager
    assert 'aria-label="Robots: 1"' in page  # but the mark: one active robot in the second stage
    assert page.count('class="robot-mark"') == 1


def test_admin_sees_the_switch_on_the_board(admin_client, funnel, robot):
    page = admin_client.get(funnel.get_absolute_url()).content.decode()
    line = robot.stage.line_id
    assert f'{reverse("robots:board", args=[funnel.pk])}?line={line}' in page
    assert "Clients" in page and "Robots" in page


def test_a_robot_of_another_funnel_is_missing(admin_client, funnel, robot):
    other = FunnelFactory()
    elsewhere = make_robot(other.lines.get().stages.first())
    before = fingerprint()
    assert admin_client.get(reverse("robots:edit", args=[funnel.pk, elsewhere.pk])).status_code == 404
    assert admin_client.post(reverse("robots:toggle", args=[funnel.pk, elsewhere.pk]), {"on": "0"}).status_code == 404
    assert admin_client.post(reverse("robots:delete", args=[funnel.pk, elsewhere.pk])).status_code == 404
    stage_elsewhere = other.lines.get().stages.first()
    assert admin_client.get(reverse("robots:create", args=[funnel.pk, stage_elsewhere.pk])).status_code == 404
    assert admin_client.post(reverse("robots:copy", args=[funnel.pk, robot.pk]), {"stage": stage_elsewhere.pk}).status_code == 404
    assert fingerprint() == before


# Pages ---------------------------------------------------------------------------------------


def test_robots_view_shows_the_columns_and_the_cards(admin_client, funnel, robot, stages):
    Run.objects.create(robot=robot, deal=DealFactory(stage=stages[0]), entry=timezone.now(), state=Run.State.DONE,
                       finished_at=timezone.now())
    response = admin_client.get(reverse("robots:board", args=[funnel.pk]))
    page = response.content.decode()
    for stage in stages:
        assert f'id="robots-stage-{stage.pk}-name"' in page
        assert reverse("robots:create", args=[funnel.pk, stage.pk]) in page
    assert "Greeting" in page and "The deal enters the stage" in page
    assert "Channel: Telegram" in page and "Tag: vip" in page and "Budget: 100 – …" in page
    assert "Working hours: Mon, Tue, Wed, Thu, Fri 09:00–18:00" in page
    assert "Send: “Hello, {name}!”" in page and "Add the tag “vip”" in page and f"Move to “{stages[0].name}”" in page
    assert "Last fired" in page and "Switch off" in page
    assert reverse("robots:log", args=[funnel.pk, robot.pk]) in page


def test_robot_form_page_offers_kinds_and_a_disabled_webhook(admin_client, funnel, stages, robot):
    page = admin_client.get(reverse("robots:create", args=[funnel.pk, stages[0].pk])).content.decode()
    assert re.search(r'<option value="webhook"[^>]*disabled', page)
    assert "Apply to deals already in the stage" in page
    assert 'id="action-template"' in page and "{first_name}" in page
    edit = admin_client.get(reverse("robots:edit", args=[funnel.pk, robot.pk])).content.decode()
    assert "Apply to deals already in the stage" not in edit
    assert 'value="Greeting"' in edit and "Hello, {name}!" in edit


def test_log_lists_runs_newest_first_and_suspensions(admin_client, funnel, robot, stages):
    deal = DealFactory(stage=stages[0], name="Chair")
    Run.objects.create(robot=robot, deal=deal, entry=timezone.now() - timedelta(hours=1), state=Run.State.SKIPPED,
                       detail={"code": "condition", "condition": "tag"}, finished_at=timezone.now())
    Run.objects.create(robot=robot, deal=deal, entry=timezone.now(), state=Run.State.DONE, finished_at=timezone.now(),
                       detail={"done": [{"code": "move", "value": "Won"}]})
    Suspension.objects.create(robot=robot, deal=deal)
    page = admin_client.get(reverse("robots:log", args=[funnel.pk, robot.pk])).content.decode()
    assert page.index("moved the deal to “Won”") < page.index("skipped: the condition “Tag” was not met")
    assert f"#{deal.pk} Chair" in page
    assert reverse("robots:resume", args=[funnel.pk, robot.pk, deal.pk]) in page


def test_log_pages_by_keyset(admin_client, funnel, robot, stages):
    deals = Deal.objects.bulk_create(Deal(client=DealFactory().client, stage=stages[0], name=f"d{i}", position=i)
                                     for i in range(35))
    Run.objects.bulk_create(Run(robot=robot, deal=d, entry=timezone.now(), state=Run.State.DONE) for d in deals)
    first = admin_client.get(reverse("robots:log", args=[funnel.pk, robot.pk]))
    assert len(first.context["runs"]) == 30 and first.context["before"]
    second = admin_client.get(reverse("robots:log", args=[funnel.pk, robot.pk]), {"before": first.context["before"]})
    assert len(second.context["runs"]) == 5 and second.context["before"] is None
    assert {r.pk for r in first.context["runs"]}.isdisjoint({r.pk for r in second.context["runs"]})


# Writes --------------------------------------------------------------------------------------


def test_create_a_robot(admin_client, funnel, stages):
    response = admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]),
                                 form_data(stages, **{"channels": ["telegram", "vk"], "budget_min": "10",
                                                      "hours_from": "09:00", "hours_to": "18:00", "days": ["0", "4"]}))
    assert response.status_code == 302
    robot = Robot.objects.get(name="Welcome")
    assert robot.stage == stages[0] and robot.is_active and robot.trigger == "entered"
    assert robot.actions == [{"kind": "message", "text": "Hello, {name}!"}, {"kind": "move", "stage": stages[1].pk}]
    assert robot.conditions == {"channels": ["telegram", "vk"], "days": [0, 4], "budget_min": "10",
                                "hours_from": "09:00", "hours_to": "18:00"}
    assert not Run.objects.exists()
    page = admin_client.get(response["Location"]).content.decode()
    assert "Robot “Welcome” created." in page


def test_create_with_apply_existing_plans_the_deals_in_the_stage(admin_client, funnel, stages):
    deals = [DealFactory(stage=stages[0]) for _ in range(3)]
    DealFactory(stage=stages[1])
    admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]), form_data(stages, apply_existing="on"))
    robot = Robot.objects.get(name="Welcome")
    assert sorted(Run.objects.filter(robot=robot).values_list("deal_id", flat=True)) == sorted(d.pk for d in deals)


def test_timed_robot_needs_minutes(admin_client, funnel, stages):
    before = fingerprint()
    response = admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]), form_data(stages, trigger="idle"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Say after how many minutes without activity" in page and "The robot was not saved" in page
    assert fingerprint() == before
    admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]), form_data(stages, trigger="idle", idle_minutes="15"))
    assert Robot.objects.get(name="Welcome").idle_minutes == 15


@pytest.mark.parametrize("overrides,message", [
    ({"actions-0-text": "  "}, "Write the message."),
    ({"actions-1-stage": ""}, "Choose the stage to move the deal to."),
    ({"actions-0-kind": "webhook"}, "Webhooks arrive with the integrations"),
    ({"actions-0-kind": "notify", "actions-0-text": "Look"}, "Choose whom to notify."),
    ({"actions-0-kind": "task", "actions-0-text": "Call"}, "Choose the task type."),
    ({"actions-0-DELETE": "on", "actions-1-DELETE": "on"}, "at least"),
    ({"name": ""}, "This field is required."),
    ({"budget_min": "500", "budget_max": "100"}, "The upper bound is below the lower one."),
    ({"hours_from": "09:00"}, "Give both the start and the end of the working hours."),
    ({"field": "cf_999"}, "Select a valid choice."),
    ({"actions-1-stage": "999999"}, "Select a valid choice."),
])
def test_invalid_forms_say_why_and_save_nothing(admin_client, funnel, stages, overrides, message):
    before = fingerprint()
    response = admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]), form_data(stages, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert fingerprint() == before


def test_a_stage_of_another_funnel_is_not_a_valid_move(admin_client, funnel, stages):
    other = FunnelFactory().lines.get().stages.first()
    before = fingerprint()
    response = admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]),
                                 form_data(stages, **{"actions-1-stage": str(other.pk)}))
    assert "Select a valid choice." in response.content.decode()
    assert fingerprint() == before


def test_add_an_action_without_the_script_posts_back_with_one_more_row(admin_client, funnel, stages):
    response = admin_client.post(reverse("robots:create", args=[funnel.pk, stages[0].pk]), form_data(stages, add_action="1"))
    assert response.status_code == 200 and len(response.context["formset"].forms) == 3
    assert not Robot.objects.exists()


def test_edit_a_robot(admin_client, funnel, robot, stages):
    data = form_data(stages, name="Renamed", **{"actions-INITIAL_FORMS": "3", "actions-TOTAL_FORMS": "3",
                                                 "actions-2-kind": "tag_remove", "actions-2-tag": str(robot.actions[1]["tag"])})
    response = admin_client.post(reverse("robots:edit", args=[funnel.pk, robot.pk]), data)
    assert response.status_code == 302
    robot.refresh_from_db()
    assert robot.name == "Renamed" and robot.conditions == {}
    assert [a["kind"] for a in robot.actions] == ["message", "move", "tag_remove"]


def test_edit_form_round_trips_a_robot_unchanged(admin_client, funnel, stages):
    """The form shows every kind of action as stored; posting it back stores the same JSON."""
    from tasks.models import TaskType

    tag = TagFactory(name="hot")
    task_type = TaskType.objects.first()
    other_line = funnel.lines.order_by("position")[1]
    actions = [
        {"kind": "move", "stage": stages[2].pk},
        {"kind": "transfer", "line": other_line.pk},
        {"kind": "message", "text": "Hi {first_name}"},
        {"kind": "task", "task_type": task_type.pk, "text": "Call", "deadline_minutes": 30, "user": 0},
        {"kind": "tag_add", "tag": tag.pk},
        {"kind": "tag_remove", "tag": tag.pk},
        {"kind": "notify", "text": "Look", "users": [], "responsible": True},
    ]
    robot = Robot.objects.create(stage=stages[0], name="All", trigger="idle", idle_minutes=5, actions=actions,
                                 conditions={"responsibles": [0], "budget_max": "9000"})
    page = admin_client.get(reverse("robots:edit", args=[funnel.pk, robot.pk]))
    form, formset = page.context["form"], page.context["formset"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None:
            continue
        if hasattr(value, "strftime"):
            value = value.strftime("%H:%M")
        data[name] = value
    data.update({f"actions-{k}": v for k, v in formset.management_form.initial.items()})
    for sub in formset.forms:
        for name in sub.fields:
            value = sub[name].value()
            if value in (None, False):
                continue
            data[sub.add_prefix(name)] = value
    response = admin_client.post(reverse("robots:edit", args=[funnel.pk, robot.pk]), data)
    assert response.status_code == 302, response.context["form"].errors or response.context["formset"].errors
    robot.refresh_from_db()
    assert robot.actions == actions
    assert robot.conditions == {"responsibles": [0], "budget_max": "9000"} and robot.idle_minutes == 5


def test_toggle_move_copy_delete(admin_client, funnel, stages):
    a = make_robot(stages[0], name="A", position=0)
    b = make_robot(stages[0], name="B", position=1)
    response = admin_client.post(reverse("robots:toggle", args=[funnel.pk, a.pk]), {"on": "0"}, headers=HX)
    assert response.status_code == 200 and "robots-status" in response["HX-Trigger"]
    assert f'id="stage-robots-{stages[0].pk}"' in response.content.decode()
    a.refresh_from_db()
    assert not a.is_active
    admin_client.post(reverse("robots:toggle", args=[funnel.pk, a.pk]), {"on": "1"})
    a.refresh_from_db()
    assert a.is_active

    response = admin_client.post(reverse("robots:move", args=[funnel.pk, b.pk]), {"direction": "up"}, headers=HX)
    assert [r.name for r in response.context["robots"]] == ["B", "A"]
    assert list(Robot.objects.filter(stage=stages[0]).order_by("position").values_list("name", flat=True)) == ["B", "A"]
    admin_client.post(reverse("robots:move", args=[funnel.pk, b.pk]), {"direction": "down"})
    assert list(Robot.objects.filter(stage=stages[0]).order_by("position").values_list("name", flat=True)) == ["A", "B"]

    admin_client.post(reverse("robots:reorder", args=[funnel.pk, stages[0].pk]), {"order": [b.pk, a.pk]})
    assert list(Robot.objects.filter(stage=stages[0]).order_by("position").values_list("name", flat=True)) == ["B", "A"]

    make_robot(stages[3], name="Already there")
    response = admin_client.post(reverse("robots:copy", args=[funnel.pk, a.pk]), {"stage": stages[3].pk})
    assert response.status_code == 302
    copied = Robot.objects.filter(stage=stages[3]).order_by("position").last()
    assert (copied.name, copied.actions, copied.conditions, copied.is_active) == ("A", a.actions, a.conditions, True)
    assert copied.pk != a.pk

    page = admin_client.get(reverse("robots:delete", args=[funnel.pk, a.pk]), headers=HX).content.decode()
    assert "Delete the robot “A”?" in page
    admin_client.post(reverse("robots:delete", args=[funnel.pk, a.pk]))
    assert not Robot.objects.filter(pk=a.pk).exists()


def test_resume_a_suspended_robot(admin_client, funnel, robot, stages):
    deal = DealFactory(stage=stages[0])
    Suspension.objects.create(robot=robot, deal=deal)
    other = DealFactory(stage=stages[0])
    assert admin_client.post(reverse("robots:resume", args=[funnel.pk, robot.pk, other.pk])).status_code == 404
    response = admin_client.post(reverse("robots:resume", args=[funnel.pk, robot.pk, deal.pk]))
    assert response.status_code == 302
    assert not Suspension.objects.exists()


# The dry run ---------------------------------------------------------------------------------


def test_dry_run_says_what_it_would_do_and_writes_nothing(admin_client, funnel, stages):
    from messenger.models import Channel, Conversation

    tag = TagFactory(name="vip")
    deal = DealFactory(stage=stages[0], channel="telegram", budget=50, tags=[tag], name="Sofa")
    chat = Channel.objects.create(kind="console", name="Site chat")
    Conversation.objects.create(channel=chat, client=deal.client, external_chat_id="c1")
    robot = make_robot(stages[0], conditions={"channels": ["telegram"], "tags": [tag.pk], "budget_min": "100"},
                       actions=[{"kind": "message", "text": "Hello, {name}!"}, {"kind": "tag_remove", "tag": tag.pk},
                                {"kind": "move", "stage": stages[1].pk}])
    before = fingerprint()
    response = admin_client.get(reverse("robots:dry-run", args=[funnel.pk, robot.pk]), {"deal": deal.pk}, headers=HX)
    page = response.content.decode()
    assert "Channel: met" in page and "Tag: met" in page and "Budget: not met" in page
    assert "It would skip the deal: the condition “Budget” is not met." in page
    assert fingerprint() == before

    Deal.objects.filter(pk=deal.pk).update(budget=500)
    before = fingerprint()
    page = admin_client.get(reverse("robots:dry-run", args=[funnel.pk, robot.pk]), {"deal": deal.pk}, headers=HX).content.decode()
    assert "It would:" in page
    assert f"sent the message in Site chat: Hello, {deal.client.name}!" in page
    assert "removed the tag “vip”" in page and f"moved the deal to “{stages[1].name}”" in page
    assert "not in the robot's stage" not in page
    assert fingerprint() == before


def test_dry_run_notes_a_deal_outside_the_stage_and_hides_what_may_not_be_seen(admin_client, funnel, robot, stages, admin):
    deal = DealFactory(stage=stages[2])
    page = admin_client.get(reverse("robots:dry-run", args=[funnel.pk, robot.pk]), {"deal": deal.pk}).content.decode()
    assert "the deal is not in the robot's stage now" in page
    assert "Log" in page  # the whole page without htmx
    for number in ("999999", "abc", "-1"):
        page = admin_client.get(reverse("robots:dry-run", args=[funnel.pk, robot.pk]), {"deal": number}, headers=HX).content.decode()
        assert "was not found" in page
    Deal.objects.filter(pk=deal.pk).update(deleted_at=timezone.now())  # a deleted deal is not offered either
    page = admin_client.get(reverse("robots:dry-run", args=[funnel.pk, robot.pk]), {"deal": deal.pk}, headers=HX).content.decode()
    assert "was not found" in page and deal.name not in page


def test_dry_run_shows_working_hours(admin_client, funnel, stages, settings):
    from django.utils import timezone

    from robots import services

    tomorrow = (timezone.localtime().weekday() + 1) % 7  # (the funnel's zone is the default one)
    robot = make_robot(stages[0], conditions={"hours_from": "00:00", "hours_to": "00:01", "days": [tomorrow]}, actions=[])
    deal = DealFactory(stage=stages[0])
    from tests.factories import UserFactory, role

    boss = UserFactory(role=role("Admin"))
    from django.utils import translation

    with translation.override("en"):
        result = services.dry_run(actor=boss, robot=robot, deal=deal)
    assert [(c.label, c.ok) for c in result.checks] == [("Working hours", False)]  # a minute of another day


# Query counts --------------------------------------------------------------------------------


def _spread_robots(stages, n):
    for i in range(n):
        make_robot(stages[i % len(stages)], name=f"R{i}", position=i)


@pytest.mark.parametrize("n", [1, 10])
def test_robots_view_queries_flat(n, admin_client, funnel, stages, django_assert_num_queries):
    _spread_robots(stages, n)
    # session user with perms, funnels, lines, stages, robots (with last fired), the funnel's stages, tags
    with django_assert_num_queries(7):
        response = admin_client.get(reverse("robots:board", args=[funnel.pk]))
    assert sum(len(robots) for _stage, robots in response.context["columns"]) == n


@pytest.mark.parametrize("n", [2, 10])
def test_column_partial_queries_flat(n, admin_client, funnel, stages, django_assert_num_queries):
    for i in range(n):
        make_robot(stages[0], name=f"R{i}", position=i)
    robot = Robot.objects.filter(stage=stages[0]).first()
    # user with perms, funnel, robot, toggle (savepoint, update, release), lines, funnel stages, robots, tags
    with django_assert_num_queries(10):
        admin_client.post(reverse("robots:toggle", args=[funnel.pk, robot.pk]), {"on": "0"}, headers=HX)
    # user with perms, funnel, robot, move (savepoint, lock, renumber ×2, release), lines, funnel stages, robots, tags
    with django_assert_num_queries(12):
        admin_client.post(reverse("robots:move", args=[funnel.pk, robot.pk]), {"direction": "down"}, headers=HX)


@pytest.mark.parametrize("n", [1, 10])
def test_form_page_queries_flat(n, admin_client, funnel, stages, django_assert_num_queries):
    robot = make_robot(stages[0], actions=[{"kind": "message", "text": f"Hi {i}"} for i in range(n)])
    # user with perms, funnel, robot, stages, lines, tags, users, task types, custom fields
    with django_assert_num_queries(9):
        admin_client.get(reverse("robots:edit", args=[funnel.pk, robot.pk]))
    with django_assert_num_queries(9):  # the stage instead of the robot
        admin_client.get(reverse("robots:create", args=[funnel.pk, stages[0].pk]))


@pytest.mark.parametrize("n", [1, 30])
def test_log_queries_flat(n, admin_client, funnel, robot, stages, django_assert_num_queries):
    deals = Deal.objects.bulk_create(Deal(client=DealFactory().client, stage=stages[0], name=f"d{i}", position=i)
                                     for i in range(n))
    Run.objects.bulk_create(Run(robot=robot, deal=d, entry=timezone.now(), state=Run.State.DONE) for d in deals)
    Suspension.objects.bulk_create(Suspension(robot=robot, deal=d) for d in deals[:n])
    # user with perms, funnel, robot, runs (with their deals), suspensions (with their deals)
    with django_assert_num_queries(5):
        response = admin_client.get(reverse("robots:log", args=[funnel.pk, robot.pk]))
    assert len(response.context["runs"]) == n


@pytest.mark.parametrize("n", [1, 30])
def test_dry_run_partial_queries_flat(n, admin_client, funnel, stages, django_assert_num_queries):
    """The dry run costs the same however many deals, runs and tags there are (each action reads
    what it names: a fixed cost per action of the robot)."""
    tags = [TagFactory(name=f"t{i}") for i in range(n)]
    robot = make_robot(stages[0], conditions={"channels": ["telegram"], "tags": [t.pk for t in tags]},
                       actions=[{"kind": "tag_add", "tag": tags[0].pk}])
    deal = DealFactory(stage=stages[0], channel="telegram", tags=tags)
    others = Deal.objects.bulk_create(Deal(client=deal.client, stage=stages[0], name=f"d{i}", position=i) for i in range(n))
    Run.objects.bulk_create(Run(robot=robot, deal=d, entry=timezone.now(), state=Run.State.DONE) for d in others)
    # user with perms, funnel, robot, the deal; savepoint; the tag condition alone (deal's, client's tags),
    # then in the whole check again (deal's, client's tags); the action's tag; rollback, release
    with django_assert_num_queries(12):
        response = admin_client.get(reverse("robots:dry-run", args=[funnel.pk, robot.pk]), {"deal": deal.pk}, headers=HX)
    assert "It would:" in response.content.decode()


# The funnel's time zone (robots' working hours) ----------------------------------------------


def test_admin_sets_the_funnels_time_zone_and_a_manager_may_not(client, admin, manager, funnel):
    url = reverse("deals:funnel-time-zone", args=[funnel.pk])
    client.force_login(manager)
    assert client.post(url, {"time_zone": "Asia/Omsk"}).status_code == 403
    client.force_login(admin)
    page = client.get(reverse("deals:settings", args=[funnel.pk])).content.decode()
    assert 'name="time_zone"' in page and "Asia/Omsk" in page
    assert client.post(url, {"time_zone": "Mars/Olympus"}).status_code == 302
    funnel.refresh_from_db()
    assert funnel.time_zone == "Europe/Moscow"
    client.post(url, {"time_zone": "Asia/Omsk"})
    funnel.refresh_from_db()
    assert funnel.time_zone == "Asia/Omsk"
