"""Leads (seed 004, issue 18 points 1-3): steps configured by an admin, the card's progress bar,
notes and actions at a step, today's actions, conversion and the link to an existing customer,
and their undo."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone, translation

from clients.models import Client, LeadConversion, LeadStep
from crm.models import Activity, TableSettings
from deals.models import Deal
from tasks.models import Task, TaskType
from tests.conftest import HX
from tests.factories import ClientFactory, CustomFieldFactory, DealFactory, role

pytestmark = pytest.mark.django_db


def steps():
    return list(LeadStep.objects.order_by("position", "pk"))


def labels():
    with translation.override("en"):
        return [s.label for s in steps()]


def take_away(role_name: str, codename: str):
    role(role_name).group.permissions.remove(Permission.objects.get(codename=codename))


def snapshot():
    return (
        list(Client.objects.order_by("pk").values_list("pk", "name", "lifecycle", "step", "external_id", "modified_at", "last_action_at")),
        list(LeadStep.objects.order_by("pk").values_list("pk", "name", "position")),
        list(LeadConversion.objects.order_by("pk").values_list("pk", "kind", "undone_at")),
        list(Activity.objects.order_by("pk").values_list("pk", "kind", "step_id")),
        list(Task.objects.order_by("pk").values_list("pk", "status", "step")),
    )


# Steps: the admin's settings ------------------------------------------------------------------


def test_the_default_steps_are_seed_004s_in_the_readers_language(admin_client, admin):
    page = admin_client.get(reverse("fields:steps")).content.decode()
    for name in ("New lead", "Contract signed", "Work in progress", "Conversion"):
        assert f'value="{name}"' in page
    admin.language = "ru"
    admin.save()
    page = admin_client.get(reverse("fields:steps")).content.decode()
    for name in ("Новый потенциальный клиент", "Контракт подписан", "Ведутся работы", "Конвертация"):
        assert f'value="{name}"' in page


def test_the_fields_page_and_the_settings_menu_lead_to_the_steps(admin_client):
    page = admin_client.get(reverse("fields:list")).content.decode()
    assert page.count(reverse("fields:steps")) == 2  # the menu and the page's button


def test_admin_adds_renames_moves_and_deletes_steps(admin_client):
    response = admin_client.post(reverse("fields:steps"), {"name": "  Холодные   контакты "}, headers=HX)
    assert response.status_code == 200 and "Холодные контакты" in response.content.decode()
    assert labels() == ["New lead", "Contract signed", "Work in progress", "Conversion", "Холодные контакты"]
    cold = steps()[-1]
    admin_client.post(reverse("fields:step-move", args=[cold.pk]), {"direction": "up"}, headers=HX)
    admin_client.post(reverse("fields:step-move", args=[cold.pk]), {"direction": "up"}, headers=HX)
    assert labels() == ["New lead", "Contract signed", "Холодные контакты", "Work in progress", "Conversion"]
    admin_client.post(reverse("fields:step-move", args=[steps()[-1].pk]), {"direction": "down"}, headers=HX)  # last: stays
    assert labels()[-1] == "Conversion"
    first = steps()[0]
    admin_client.post(reverse("fields:step-rename", args=[first.pk]), {"name": "Potential buyers"}, headers=HX)
    assert labels()[0] == "Potential buyers"
    # the default name typed back (or emptied) gives the step its own, translated name again
    admin_client.post(reverse("fields:step-rename", args=[first.pk]), {"name": "New lead"}, headers=HX)
    first.refresh_from_db()
    assert first.name == "" and labels()[0] == "New lead"
    ids = [s.pk for s in steps()]
    admin_client.post(reverse("fields:steps-order"), {"order": [ids[3], ids[0], ids[1], ids[2], ids[4]]}, headers=HX)
    assert labels() == ["Work in progress", "New lead", "Contract signed", "Холодные контакты", "Conversion"]
    assert [s.position for s in steps()] == [1, 2, 3, 4, 5]
    response = admin_client.post(reverse("fields:step-delete", args=[cold.pk]), headers=HX)
    assert "Холодные контакты" not in response.content.decode()
    assert not LeadStep.objects.filter(pk=cold.pk).exists()


def test_a_step_in_use_is_not_deleted_and_the_admin_is_told_why(admin_client):
    step = steps()[1]
    ClientFactory(step=step)
    ClientFactory(step=step, deleted_at=timezone.now())  # deleted clients keep their step (PROTECT)
    response = admin_client.post(reverse("fields:step-delete", args=[step.pk]), headers=HX)
    assert "2 clients are at the step “Contract signed”: move them to another step first." in response.content.decode()
    assert LeadStep.objects.filter(pk=step.pk).exists()


def test_an_empty_or_too_long_name_is_refused_with_a_message(admin_client):
    before = snapshot()
    page = admin_client.post(reverse("fields:steps"), {"name": "   "}, headers=HX).content.decode()
    assert "Give the step a name." in page
    page = admin_client.post(reverse("fields:steps"), {"name": "x" * 41}, headers=HX).content.decode()
    assert "at most 40 characters" in page
    assert snapshot() == before


@pytest.mark.parametrize("url_name,data", [
    ("fields:steps", {"name": "Hijack"}), ("fields:step-rename", {"name": "Hijack"}), ("fields:step-move", {"direction": "up"}),
    ("fields:step-delete", {}), ("fields:steps-order", {"order": []}),
])
def test_a_manager_may_not_configure_steps(url_name, data, manager_client):
    before = snapshot()
    args = [steps()[1].pk] if url_name.startswith("fields:step-") else []
    assert manager_client.post(reverse(url_name, args=args), data).status_code == 403
    assert manager_client.get(reverse("fields:steps")).status_code == 403
    assert snapshot() == before


# The progress bar ------------------------------------------------------------------------------


def test_a_potential_clients_card_shows_the_steps_as_a_progress_bar(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[1])
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    bar = page[page.index('class="lead-progress"'):page.index("</ol>", page.index('class="lead-progress"'))]
    assert [bar.index(name) for name in ("New lead", "Contract signed", "Work in progress", "Conversion")] == sorted(
        bar.index(name) for name in ("New lead", "Contract signed", "Work in progress", "Conversion"))
    current = [item for item in bar.split("<li")[1:] if 'aria-current="step"' in item]
    assert len(current) == 1 and "Contract signed" in current[0]
    assert "Converting opens at the last step." in page


def test_a_converted_clients_card_has_no_progress_bar(manager_client, manager):
    customer = ClientFactory(responsible=manager, lifecycle="converted")
    page = manager_client.get(customer.get_absolute_url()).content.decode()
    assert "lead-progress" not in page


def test_clicking_a_step_sets_it_with_a_feed_entry(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[0])
    target = steps()[2]
    response = manager_client.post(reverse("clients:step", args=[lead.pk]), {"step": target.pk}, headers=HX)
    assert response.status_code == 200 and "feed-changed" in response.headers["HX-Trigger"]
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card block lead-block" id="lead-block"')
    current = body[body.index('aria-current="step"'):body.index('aria-current="step"') + 300]
    assert "Work in progress" in current
    lead.refresh_from_db()
    assert lead.step == target and lead.modified_by == manager
    entry = Activity.objects.get(client=lead, kind=Activity.Kind.STEP)
    assert (entry.old_value, entry.new_value, entry.actor) == ("New lead", "Work in progress", manager)
    feed = manager_client.get(reverse("clients:feed", args=[lead.pk]), headers=HX).content.decode()
    assert "moved the lead to another step" in feed and "Work in progress" in feed
    changes = manager_client.get(reverse("clients:feed", args=[lead.pk]), {"kind": "changes"}, headers=HX).content.decode()
    assert "moved the lead to another step" in changes  # a step is a change of the card


def test_the_step_form_works_without_javascript(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[0])
    response = manager_client.post(reverse("clients:step", args=[lead.pk]), {"step": steps()[1].pk})
    assert response.status_code == 302 and response["Location"] == lead.get_absolute_url()
    lead.refresh_from_db()
    assert lead.step == steps()[1]


def test_a_lead_nobody_moved_yet_leaves_the_first_step(manager_client, manager):
    lead = ClientFactory(responsible=manager)
    manager_client.post(reverse("clients:step", args=[lead.pk]), {"step": steps()[1].pk}, headers=HX)
    entry = Activity.objects.get(client=lead, kind=Activity.Kind.STEP)
    assert (entry.old_value, entry.new_value) == ("New lead", "Contract signed")


def test_setting_a_step_needs_edit_client_and_writes_nothing_without_it(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[0])
    take_away("Manager", "change_client")
    before = snapshot()
    response = manager_client.post(reverse("clients:step", args=[lead.pk]), {"step": steps()[2].pk}, headers=HX)
    assert response.status_code == 403
    assert snapshot() == before
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    assert 'aria-current="step"' in page and "<button type=\"submit\" class=\"lead-step\"" not in page


def test_a_client_the_user_may_not_see_is_a_404(manager_client, other_manager):
    lead = ClientFactory(responsible=other_manager)
    before = snapshot()
    assert manager_client.post(reverse("clients:step", args=[lead.pk]), {"step": steps()[2].pk}).status_code == 404
    assert manager_client.get(reverse("clients:lead", args=[lead.pk])).status_code == 404
    assert snapshot() == before


def test_a_converted_client_does_not_move_through_steps(manager_client, manager):
    customer = ClientFactory(responsible=manager, lifecycle="converted", step=steps()[3])
    response = manager_client.post(reverse("clients:step", args=[customer.pk]), {"step": steps()[0].pk}, headers=HX)
    assert "Only a potential client moves through the steps." in response.content.decode()
    customer.refresh_from_db()
    assert customer.step == steps()[3]


# The clients table: Step and Last action ------------------------------------------------------


def test_the_table_shows_the_step_and_the_last_action_and_filters_by_step(admin_client, admin):
    first, third = steps()[0], steps()[2]
    moment = datetime(2031, 5, 6, 7, 8, tzinfo=ZoneInfo("UTC"))
    ClientFactory(name="Ранний лид", step=first)
    ClientFactory(name="Поздний лид", step=third, last_action_at=moment)
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "step", "last_action_at"])
    page = admin_client.get(reverse("clients:list")).content.decode()
    assert '<th scope="col" data-col="step">Step</th>' in page and '<th scope="col" data-col="last_action_at">Last action</th>' in page
    row = page[page.index("Поздний лид"):page.index("</tr>", page.index("Поздний лид"))]
    assert "Work in progress" in row and "05/06/2031 10:08" in row  # in the reader's time zone (Moscow, UTC+3)
    filtered = admin_client.get(reverse("clients:list"), {"step": third.pk}).content.decode()
    assert "Поздний лид" in filtered and "Ранний лид" not in filtered
    panel = admin_client.get(reverse("clients:filters"), headers=HX).content.decode()
    assert f'value="{third.pk}"' in panel and "Work in progress" in panel


def test_a_lead_nobody_has_moved_yet_stands_at_the_first_step_in_the_table_its_filter_and_the_export(admin_client, admin):
    """A potential client made by the form (or an import, or a message) has no step stored: the
    card says it stands at the first step, and so do the table, the step filter and the export.
    A converted client with no step has none."""
    first, second = steps()[0], steps()[1]
    response = admin_client.post(reverse("clients:create"), {"name": "Свежий лид", "phone": "8 916 555-01-01",
                                                             "priority": "normal", "lifecycle": "potential"}, headers=HX)
    assert "HX-Redirect" in response.headers
    assert Client.objects.get(name="Свежий лид").step_id is None
    ClientFactory(name="Давний клиент", lifecycle="converted")
    ClientFactory(name="Второй шаг", step=second)
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "step"])
    with translation.override("en"):  # the admin reads English
        first_label, second_label = first.label, second.label

    def row(page, name):
        start = page.index(name, page.index("<tbody"))
        return page[start : page.index("</tr>", start)]

    page = admin_client.get(reverse("clients:list")).content.decode()
    assert first_label in row(page, "Свежий лид")
    assert first_label not in row(page, "Давний клиент") and second_label not in row(page, "Давний клиент")
    at_first = admin_client.get(reverse("clients:list"), {"step": first.pk}).content.decode()
    assert "Свежий лид" in at_first and "Давний клиент" not in at_first and "Второй шаг" not in at_first
    at_second = admin_client.get(reverse("clients:list"), {"step": second.pk}).content.decode()
    assert "Второй шаг" in at_second and "Свежий лид" not in at_second
    export = admin_client.get(reverse("clients:export"), {"format": "csv", "step": first.pk})
    body = b"".join(export.streaming_content).decode("utf-8-sig") if export.streaming else export.content.decode("utf-8-sig")
    assert f"Свежий лид;{first_label}" in body or f"Свежий лид,{first_label}" in body


def test_the_export_writes_the_steps_label(admin_client, admin):
    ClientFactory(name="Экспортный лид", step=steps()[2])
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "step"])
    response = admin_client.get(reverse("clients:export"), {"format": "csv"})
    body = b"".join(response.streaming_content).decode("utf-8-sig") if response.streaming else response.content.decode("utf-8-sig")
    assert "Экспортный лид" in body and "Work in progress" in body


def test_the_step_and_last_action_columns_are_offered_in_the_column_settings(admin_client):
    page = admin_client.get(reverse("clients:columns"), headers=HX).content.decode()
    assert 'data-key="step"' in page and 'data-key="last_action_at"' in page


def test_the_russian_table_says_shag_and_poslednee_deystvie(admin_client, admin):
    admin.language = "ru"
    admin.save()
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "step", "last_action_at"])
    ClientFactory(step=steps()[1])
    page = admin_client.get(reverse("clients:list")).content.decode()
    assert ">Шаг</th>" in page and ">Последнее действие</th>" in page and "Контракт подписан" in page


# Notes and actions at a step -------------------------------------------------------------------


def test_text_alone_is_a_note_at_the_current_step(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[1])
    response = manager_client.post(reverse("clients:comment", args=[lead.pk]), {"text": "Позвонил, думает"}, headers=HX)
    assert "lead-changed" in response.headers["HX-Trigger"]
    note = Activity.objects.get(client=lead, kind=Activity.Kind.COMMENT)
    assert note.step_id == steps()[1].pk and note.text == "Позвонил, думает"
    assert not Task.objects.exists()
    lead.refresh_from_db()
    assert lead.last_action_at is not None and timezone.now() - lead.last_action_at < timedelta(minutes=1)
    block = manager_client.get(reverse("clients:lead", args=[lead.pk]), headers=HX).content.decode()
    section = block[block.index('aria-label="Contract signed"'):]
    assert "Note" in section and "Позвонил, думает" in section


def test_a_lead_nobody_moved_yet_writes_at_the_first_step(manager_client, manager):
    lead = ClientFactory(responsible=manager)
    manager_client.post(reverse("clients:comment", args=[lead.pk]), {"text": "Первый контакт"}, headers=HX)
    assert Activity.objects.get(client=lead, kind="comment").step_id == steps()[0].pk


def test_with_an_action_type_and_a_planned_date_it_is_an_action(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[2])
    meeting = TaskType.objects.get(name="Meeting")
    response = manager_client.post(reverse("clients:comment", args=[lead.pk]),
                                   {"text": "Встреча в офисе", "action_type": meeting.pk, "planned": "2031-04-02"}, headers=HX)
    assert response.status_code == 200 and "lead-changed" in response.headers["HX-Trigger"]
    task = Task.objects.get()
    assert (task.step, task.type, task.description, task.responsible, task.created_by, task.client) == (
        steps()[2], meeting, "Встреча в офисе", manager, manager, lead)
    assert timezone.localtime(task.deadline, ZoneInfo("Europe/Moscow")).date() == date(2031, 4, 2)
    assert not Activity.objects.filter(kind="comment").exists()
    assert Activity.objects.filter(client=lead, kind="task", field="created").exists()
    lead.refresh_from_db()
    assert lead.last_action_at is not None
    block = manager_client.get(reverse("clients:lead", args=[lead.pk]), headers=HX).content.decode()
    entry = block[block.index(f'id="action-{task.pk}"'):block.index("</li>", block.index(f'id="action-{task.pk}"'))]
    assert "Meeting" in entry and "Встреча в офисе" in entry and "not done" in entry and "Mark done" in entry
    # done through the existing task completion, then the history says so
    manager_client.post(reverse("tasks:complete", args=[task.pk]), {"result": "Подписали", "next": lead.get_absolute_url()}, headers=HX)
    block = manager_client.get(reverse("clients:lead", args=[lead.pk]), headers=HX).content.decode()
    entry = block[block.index(f'id="action-{task.pk}"'):block.index("</li>", block.index(f'id="action-{task.pk}"'))]
    assert ">done<" in entry and "Подписали" in entry and "Mark done" not in entry


@pytest.mark.parametrize("extra", [{"action_type": "type"}, {"planned": "2031-04-02"}])
def test_one_of_type_and_date_without_the_other_is_refused_clearly(extra, manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[0])
    if extra.get("action_type"):
        extra = {"action_type": TaskType.objects.first().pk}
    before = snapshot()
    response = manager_client.post(reverse("clients:comment", args=[lead.pk]), {"text": "Что-то", **extra}, headers=HX)
    body = response.content.decode()
    assert "An action needs both an action type and a planned date; for a note, leave both empty." in body
    assert "Что-то" in body  # what was typed is kept
    assert "HX-Trigger" not in response.headers
    assert snapshot() == before


def test_an_action_needs_the_permission_to_add_tasks(manager_client, manager):
    lead = ClientFactory(responsible=manager, step=steps()[0])
    take_away("Manager", "add_task")
    before = snapshot()
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    assert 'name="action_type"' not in page
    response = manager_client.post(reverse("clients:comment", args=[lead.pk]),
                                   {"text": "x", "action_type": TaskType.objects.first().pk, "planned": "2031-01-01"}, headers=HX)
    assert response.status_code == 403
    assert snapshot() == before


def test_the_comment_box_offers_the_task_types_as_actions(manager_client, manager):
    TaskType.objects.create(name="Звонок", position=9)
    lead = ClientFactory(responsible=manager)
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    box = page[page.index('name="action_type"'):page.index("</select>", page.index('name="action_type"'))]
    assert "Contact the client" in box and "Meeting" in box and "Звонок" in box
    assert 'type="date" name="planned"' in page


# Today's actions -------------------------------------------------------------------------------


def today_at(hour, tz="Europe/Moscow"):
    return datetime.combine(timezone.localdate(timezone=ZoneInfo(tz)), time(hour), tzinfo=ZoneInfo(tz))


def action(client, who, when, text, step_index=1):
    return Task.objects.create(client=client, type=TaskType.objects.first(), description=text, responsible=who,
                               deadline=when, step=steps()[step_index], created_by=who)


@pytest.fixture
def day(admin, manager, other_manager):
    mine = ClientFactory(name="Лид Мэри", responsible=manager)
    others = ClientFactory(name="Лид Отто", responsible=other_manager)
    action(mine, manager, today_at(12), "Мэри сегодня")
    action(mine, manager, today_at(12) + timedelta(days=1), "Мэри завтра")
    action(others, other_manager, today_at(15), "Отто сегодня")
    Task.objects.create(client=mine, type=TaskType.objects.first(), description="Обычная задача", responsible=manager,
                        deadline=today_at(13))  # not at a step: a task, not an action
    # the manager's own action on a client she may not see (someone else's): not listed
    action(others, manager, today_at(16), "Чужой клиент")
    return {"mine": mine, "others": others}


def test_a_manager_sees_her_own_actions_for_today(manager_client, day):
    page = manager_client.get(reverse("clients:today-actions")).content.decode()
    assert "Мэри сегодня" in page and day["mine"].get_absolute_url() in page
    for absent in ("Мэри завтра", "Отто сегодня", "Обычная задача", "Чужой клиент", "Лид Отто"):
        assert absent not in page
    assert "Everyone’s" not in page


def test_an_admin_sees_everyones_actions_for_today_or_only_her_own(admin_client, admin, day):
    page = admin_client.get(reverse("clients:today-actions")).content.decode()
    assert "Мэри сегодня" in page and "Отто сегодня" in page and "Чужой клиент" in page
    assert "Мэри завтра" not in page and "Обычная задача" not in page
    action(day["mine"], admin, today_at(10), "Моё действие")
    page = admin_client.get(reverse("clients:today-actions"), {"who": "mine"}).content.decode()
    assert "Моё действие" in page and "Мэри сегодня" not in page


def test_today_is_the_users_today(manager_client, manager):
    manager.time_zone = "Asia/Vladivostok"  # UTC+10: its day starts 7 hours before Moscow's
    manager.save()
    lead = ClientFactory(responsible=manager)
    action(lead, manager, today_at(12, "Asia/Vladivostok"), "Владивосток сегодня")
    action(lead, manager, today_at(12, "Asia/Vladivostok") - timedelta(days=1), "Владивосток вчера")
    page = manager_client.get(reverse("clients:today-actions")).content.decode()
    assert "Владивосток сегодня" in page and "Владивосток вчера" not in page


def test_the_tasks_page_has_a_block_of_todays_actions(manager_client, manager, day):
    page = manager_client.get(reverse("tasks:list")).content.decode()
    assert f'hx-get="{reverse("clients:today-actions")}?block=1"' in page
    block = manager_client.get(reverse("clients:today-actions"), {"block": "1"}, headers=HX).content.decode()
    assert "Today’s actions" in block and '<span class="badge">1</span>' in block and "Мэри сегодня" in block
    assert "Отто сегодня" not in block


def test_the_block_lists_the_first_five_and_counts_all(admin_client, admin):
    lead = ClientFactory(responsible=admin)
    for i in range(7):
        action(lead, admin, today_at(9) + timedelta(minutes=i), f"Действие {i}")
    block = admin_client.get(reverse("clients:today-actions"), {"block": "1"}, headers=HX).content.decode()
    assert '<span class="badge">7</span>' in block
    assert "Действие 4" in block and "Действие 5" not in block


def test_nobody_without_tasks_may_not_open_todays_actions(client, nobody):
    client.force_login(nobody)
    assert client.get(reverse("clients:today-actions")).status_code == 403


# Conversion ------------------------------------------------------------------------------------


@pytest.fixture
def lead(manager):
    field = CustomFieldFactory(label="Город рождения")
    lead = ClientFactory(
        name="Степан Безрук", responsible=manager, phone="+79161234567", email="bezruk@example.com",
        address="ул. Шашкевича 334", city="Спас", company="Ребус", source="Реклама",
        registration_date=date(2020, 4, 13), step=steps()[-1], custom={field.key: "Одесса"},
    )
    lead.field = field
    return lead


def test_the_convert_form_is_prefilled_from_the_lead(manager_client, lead):
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    assert reverse("clients:convert", args=[lead.pk]) in page and reverse("clients:link", args=[lead.pk]) in page
    form = manager_client.get(reverse("clients:convert", args=[lead.pk]), headers=HX).content.decode()
    for value in ('value="Степан Безрук"', 'value="+7 916 123-45-67"', 'value="bezruk@example.com"',
                  'value="ул. Шашкевича 334"', 'value="Спас"', 'value="Ребус"', 'value="Реклама"', 'value="2020-04-13"',
                  'value="Одесса"', "Customer account (login / player ID)"):
        assert value in form, value


def test_converting_is_only_at_the_last_step(manager_client, manager, lead):
    lead.step = steps()[1]
    lead.save()
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    assert reverse("clients:convert", args=[lead.pk]) not in page
    before = snapshot()
    response = manager_client.post(reverse("clients:convert", args=[lead.pk]),
                                   {"name": lead.name, "external_id": "player-1"}, headers=HX)
    assert "A lead is converted at the last step: move it there first." in response.content.decode()
    assert snapshot() == before


def test_converting_saves_the_form_moves_to_converted_and_keeps_everything(manager_client, manager, lead):
    deal = DealFactory(client=lead, responsible=manager)
    task = action(lead, manager, today_at(12), "Подготовить договор", step_index=3)
    Activity.objects.create(client=lead, actor=manager, kind="comment", text="Старый комментарий")
    response = manager_client.post(reverse("clients:convert", args=[lead.pk]), {
        "name": "Степан Безрук", "phone": "+7 916 123-45-67", "email": "stepan@example.com", "city": "Спас",
        "address": "ул. Шашкевича 334", "company": "Ребус", "source": "Реклама", "registration_date": "2020-04-13",
        "external_id": "crm_end_test", lead.field.column_key: "Одесса",
    }, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == lead.get_absolute_url()
    lead.refresh_from_db()
    assert (lead.lifecycle, lead.external_id, lead.email) == ("converted", "crm_end_test", "stepan@example.com")
    conversion = LeadConversion.objects.get()
    assert (conversion.client, conversion.kind, conversion.by, conversion.from_step, conversion.step_label) == (
        lead, "converted", manager, steps()[-1], "Conversion")
    assert conversion.before["lifecycle"] == "potential" and conversion.before["email"] == "bezruk@example.com"
    assert conversion.before["external_id"] == "" and conversion.before["registration_date"] == "2020-04-13"
    assert Client.objects.count() == 1
    assert Deal.objects.get(pk=deal.pk).client_id == lead.pk and Task.objects.get(pk=task.pk).client_id == lead.pk
    assert Activity.objects.filter(client=lead, text="Старый комментарий").exists()
    assert Activity.objects.filter(client=lead, kind=Activity.Kind.CONVERSION, field="converted").exists()
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    assert "Converted by" in page and "lead-progress" not in page
    assert "converted the lead into a customer (from the step “Conversion”, account crm_end_test)" in page


def test_a_conversion_needs_the_customer_account(manager_client, lead):
    before = snapshot()
    response = manager_client.post(reverse("clients:convert", args=[lead.pk]), {"name": lead.name, "external_id": " "}, headers=HX)
    assert "Enter the customer account (login / player ID)." in response.content.decode()
    assert snapshot() == before


def test_converting_needs_edit_client(manager_client, lead):
    take_away("Manager", "change_client")
    before = snapshot()
    assert manager_client.get(reverse("clients:convert", args=[lead.pk])).status_code == 403
    assert manager_client.post(reverse("clients:convert", args=[lead.pk]), {"name": "x", "external_id": "p"}).status_code == 403
    assert snapshot() == before


def test_someone_elses_lead_is_a_404_for_conversion(client, other_manager, lead):
    client.force_login(other_manager)
    before = snapshot()
    for name in ("clients:convert", "clients:link", "clients:conversion-undo"):
        assert client.post(reverse(name, args=[lead.pk]), {"name": "x", "external_id": "p"}).status_code == 404
    assert snapshot() == before


@pytest.fixture
def customers(manager, other_manager):
    return {
        "mine": ClientFactory(name="Степан Клиентов", responsible=manager, lifecycle="converted", phone="+79990001122",
                              email="stepan.client@example.com", external_id="player-777"),
        "lead": ClientFactory(name="Степан Лидов", responsible=manager, lifecycle="potential"),
        "hidden": ClientFactory(name="Степан Чужой", responsible=other_manager, lifecycle="converted"),
    }


@pytest.mark.parametrize("query", ["Степан", "0001122", "stepan.client@example.com", "player-777"])
def test_the_customer_search_finds_converted_clients_the_user_may_see(query, manager_client, lead, customers):
    page = manager_client.get(reverse("clients:link", args=[lead.pk]), {"q": query},
                              headers={**HX, "HX-Target": "link-results"}).content.decode()
    assert "Степан Клиентов" in page
    assert "Степан Лидов" not in page and "Степан Чужой" not in page and "Степан Безрук" not in page


def test_linking_to_an_existing_customer_creates_no_second_record(manager_client, manager, lead, customers):
    customer = customers["mine"]
    count = Client.objects.count()
    response = manager_client.post(reverse("clients:link", args=[lead.pk]), {"customer": customer.pk}, headers=HX)
    assert response.headers["HX-Redirect"] == lead.get_absolute_url()
    assert Client.objects.count() == count
    lead.refresh_from_db()
    assert lead.lifecycle == "converted"
    conversion = LeadConversion.objects.get()
    assert (conversion.kind, conversion.customer, conversion.client, conversion.by) == ("linked", customer, lead, manager)
    page = manager_client.get(lead.get_absolute_url()).content.decode()
    assert "Linked to an existing customer by" in page and f'href="{customer.get_absolute_url()}"' in page
    other = manager_client.get(customer.get_absolute_url()).content.decode()
    assert "Linked leads" in other and f'href="{lead.get_absolute_url()}"' in other
    assert "linked a lead to this customer" in other


def test_a_lead_is_not_linked_to_a_potential_or_hidden_client(manager_client, lead, customers):
    before = snapshot()
    response = manager_client.post(reverse("clients:link", args=[lead.pk]), {"customer": customers["lead"].pk}, headers=HX)
    assert "Choose a converted client" in response.content.decode()
    assert manager_client.post(reverse("clients:link", args=[lead.pk]), {"customer": customers["hidden"].pk}, headers=HX).status_code == 404
    assert snapshot() == before


def test_an_admin_undoes_a_conversion(client, admin, manager, lead):
    manager_client = admin_client = client
    client.force_login(manager)
    manager_client.post(reverse("clients:convert", args=[lead.pk]), {
        "name": "Степан Новый", "email": "new@example.com", "external_id": "p-1", lead.field.column_key: "Киев",
    }, headers=HX)
    lead.refresh_from_db()
    assert lead.lifecycle == "converted" and lead.name == "Степан Новый" and lead.phone == ""
    before = snapshot()
    assert manager_client.post(reverse("clients:conversion-undo", args=[lead.pk]), headers=HX).status_code == 403
    assert snapshot() == before
    admin_client.force_login(admin)
    response = admin_client.post(reverse("clients:conversion-undo", args=[lead.pk]), headers=HX)
    assert response.headers["HX-Redirect"] == lead.get_absolute_url()
    lead.refresh_from_db()
    assert (lead.lifecycle, lead.name, lead.email, lead.external_id, lead.phone, lead.custom[lead.field.key]) == (
        "potential", "Степан Безрук", "bezruk@example.com", "", "+79161234567", "Одесса")
    assert lead.registration_date == date(2020, 4, 13)
    conversion = LeadConversion.objects.get()
    assert conversion.undone_by == admin and conversion.undone_at is not None
    assert Activity.objects.filter(client=lead, kind="conversion", field="undone").exists()
    page = admin_client.get(lead.get_absolute_url()).content.decode()
    assert "lead-progress" in page and "Converted by" not in page


def test_an_admin_undoes_a_link(client, admin, manager, lead, customers):
    client.force_login(manager)
    client.post(reverse("clients:link", args=[lead.pk]), {"customer": customers["mine"].pk}, headers=HX)
    client.force_login(admin)
    client.post(reverse("clients:conversion-undo", args=[lead.pk]), headers=HX)
    lead.refresh_from_db()
    assert lead.lifecycle == "potential"
    page = client.get(customers["mine"].get_absolute_url()).content.decode()
    assert "Linked leads" not in page and "undid the link of a lead to this customer" in page


# Query counts: the same at two data sizes ------------------------------------------------------


def grow(size, admin, manager):
    for i in range(size):
        LeadStep.objects.create(name=f"Шаг {i}", position=10 + i)
    last = steps()[-1]
    lead = ClientFactory(responsible=admin, step=last)
    CustomFieldFactory.create_batch(size)
    meeting = TaskType.objects.first()
    for i in range(size):
        Activity.objects.create(client=lead, actor=manager, kind="comment", text=f"n{i}", step_id=last.pk)
        Task.objects.create(client=lead, type=meeting, description=f"a{i}", responsible=manager, deadline=today_at(12),
                            step=last, created_by=manager)
        customer = ClientFactory(name=f"Клиент {i}", responsible=admin, lifecycle="converted")
        other = ClientFactory(responsible=admin, step=last)
        LeadConversion.objects.create(client=other, kind="linked", customer=customer, by=admin)
        ClientFactory(step=steps()[i % 4])
    return lead


@pytest.mark.parametrize("size", [1, 15])
def test_lead_pages_and_partials_query_counts_are_flat(size, admin_client, admin, manager, django_assert_num_queries):
    lead = grow(size, admin, manager)
    checks = [
        # user with perms, steps, clients per step
        (reverse("fields:steps"), {}, 3),
        (reverse("fields:steps"), HX, 3),
        # user with perms, client, steps, notes, actions, conversions
        (reverse("clients:lead", args=[lead.pk]), HX, 6),
        # user with perms, client, custom fields
        (reverse("clients:convert", args=[lead.pk]), HX, 3),
        # user with perms, client, matching customers
        (reverse("clients:link", args=[lead.pk]) + "?q=Клиент", {**HX, "HX-Target": "link-results"}, 3),
        (reverse("clients:link", args=[lead.pk]) + "?q=Клиент", HX, 3),
        # user with perms, actions of today
        (reverse("clients:today-actions"), {}, 2),
        # user with perms, the first five, the count
        (reverse("clients:today-actions") + "?block=1", HX, 3),
    ]
    for url, headers, queries in checks:
        with django_assert_num_queries(queries, info=url):
            response = admin_client.get(url, headers=headers)
        assert response.status_code == 200, url


@pytest.mark.parametrize("size", [1, 15])
def test_the_steps_settings_writes_answer_with_a_flat_query_count(size, admin_client, admin, manager, django_assert_num_queries):
    grow(size, admin, manager)
    step = steps()[1]
    # user with perms, the step, savepoint, lock the steps, renumber, release; the list: steps, clients per step
    with django_assert_num_queries(8):
        response = admin_client.post(reverse("fields:step-move", args=[step.pk]), {"direction": "down"}, headers=HX)
    assert response.status_code == 200 and "steps-list" in response.content.decode()


@pytest.mark.parametrize("size", [1, 15])
def test_setting_a_step_query_count_is_flat(size, admin_client, admin, manager, django_assert_num_queries):
    lead = grow(size, admin, manager)
    first = steps()[0]
    # user with perms, client, step, savepoint, lock, steps, update, feed entry, re-read, release,
    # then the block: steps, notes, actions, conversions
    with django_assert_num_queries(14):
        response = admin_client.post(reverse("clients:step", args=[lead.pk]), {"step": first.pk}, headers=HX)
    assert response.status_code == 200
