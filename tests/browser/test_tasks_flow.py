from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tasks.models import Task, TaskType
from tests.factories import ClientFactory, UserFactory, role

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def boss(transactional_db):
    return UserFactory(username="boss", first_name="Big", last_name="Boss", language="en", role=role("Admin"))


def test_create_a_task_from_the_card_and_complete_it_with_a_result(new_page, boss):
    client = ClientFactory(name="Задачный Клиент", responsible=boss)
    page = new_page(boss)
    page.goto(f"{page.base}/clients/{client.pk}/")
    page.get_by_role("button", name="+ New task").click()
    dialog = page.locator("dialog#modal")
    dialog.get_by_label("Task description").fill("Перезвонить насчёт договора")
    dialog.get_by_label("Task type").select_option(label="Contact the client")
    dialog.get_by_label("Deadline").fill("2031-03-15T14:30")
    dialog.get_by_role("button", name="Add").click()
    tasks = page.locator("#block-tasks")
    expect(tasks).to_contain_text("Перезвонить насчёт договора")
    expect(page.locator("#feed")).to_contain_text("added a task")
    tasks.get_by_role("button", name="Complete").click()
    dialog.get_by_label("Result").fill("Договорились о встрече")
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_text("Task done.")).to_be_visible()
    expect(page.locator("#feed")).to_contain_text("completed a task")
    expect(page.locator("#feed")).to_contain_text("Договорились о встрече")
    task = Task.objects.get()
    assert task.status == "done" and task.result == "Договорились о встрече"


def test_tick_three_clients_and_add_a_task_to_all(new_page, boss):
    for name in ("Первый", "Второй", "Третий", "Четвёртый"):
        ClientFactory(name=name, responsible=boss)
    page = new_page(boss)
    boxes = page.locator("#clients-table tbody input[name=ids]")
    for i in range(3):
        boxes.nth(i).check()
    page.get_by_role("button", name="Add task").click()
    dialog = page.locator("dialog#modal")
    expect(dialog.get_by_text("One task for each of 3 clients.")).to_be_visible()
    dialog.get_by_label("Task description").fill("Отправить прайс")
    dialog.get_by_label("Deadline").fill("2031-01-10T09:00")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.locator("progress")).to_have_attribute("value", "3")
    expect(dialog.get_by_text("3 of 3")).to_be_visible()
    assert Task.objects.filter(description="Отправить прайс").count() == 3


def test_find_an_overdue_task_through_the_client_filter_and_the_section(new_page, boss):
    late = ClientFactory(name="Просроченный", responsible=boss)
    ClientFactory(name="Вовремя", responsible=boss)
    Task.objects.create(client=late, type=TaskType.objects.first(), description="Позвонить вчера", responsible=boss,
                        deadline=timezone.now() - timedelta(days=1))
    Task.objects.create(client=late, type=TaskType.objects.last(), description="Встреча завтра", responsible=boss,
                        deadline=timezone.now() + timedelta(days=1))
    page = new_page(boss)
    page.get_by_role("link", name="Overdue").click()
    expect(page.locator("#clients-table tbody tr")).to_have_count(1)
    expect(page.locator("#clients-table")).to_contain_text("Просроченный")
    expect(page.locator("#task-counts .count-pill.danger")).to_have_text("1")
    page.locator("nav.mainnav").get_by_role("link", name="Tasks").click()
    expect(page.locator("#task-rows tr.overdue")).to_contain_text("Позвонить вчера")
    page.get_by_role("link", name="All", exact=True).click()
    expect(page.locator("#task-rows tbody tr")).to_have_count(2)
    shot(page, "15-tasks-section")
