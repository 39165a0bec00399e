"""The tasks section's pages: keyset paging through every task once, filters kept in the links."""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Task, TaskType
from tasks.selectors import PAGE
from tests.conftest import HX
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr[^>]* id="task-(\d+)"')
LINK = re.compile(r'<a class="btn" rel="(prev|next)" href="([^"]+)"')


def add_tasks(count, *, responsible, client=None, status=Task.Status.OPEN, same_deadline=False, **fields):
    """`count` tasks, deadlines an hour apart (or all equal), in one insert."""
    client = client or ClientFactory(responsible=responsible)
    start = timezone.now() + timedelta(days=1)
    kind = fields.pop("type", None) or TaskType.objects.first()
    return Task.objects.bulk_create(
        Task(client=client, type=kind, description=f"task {i}", responsible=responsible, status=status,
             deadline=start if same_deadline else start + timedelta(hours=i), **fields)
        for i in range(count)
    )


def shown(response) -> tuple[list[int], dict[str, str]]:
    """The task ids in the rendered table, and the pager's links by rel."""
    body = response.content.decode()
    return [int(pk) for pk in ROW.findall(body)], {rel: html.unescape(href) for rel, href in LINK.findall(body)}


def walk(client, params, headers=None) -> tuple[list[int], list]:
    """Follow the rendered "Next" links from the first page to the last."""
    url = reverse("tasks:list")
    response = client.get(url, params, headers=headers)
    ids, pages = [], []
    while True:
        rows, links = shown(response)
        ids += rows
        pages.append((rows, links))
        if "next" not in links:
            return ids, pages
        response = client.get(url + links["next"], headers=headers)


def test_120_tasks_page_through_completely_open_first(admin_client, admin):
    done = add_tasks(30, responsible=admin, status=Task.Status.DONE)
    later = add_tasks(50, responsible=admin)
    tied = add_tasks(40, responsible=admin, same_deadline=True)  # one deadline shared by 40 rows: the id breaks ties
    expected = [t.pk for t in Task.objects.order_by("deadline", "pk") if t.status == "open"]
    expected += [t.pk for t in Task.objects.filter(status="done").order_by("deadline", "pk")]
    assert len(done + later + tied) == 120

    ids, pages = walk(admin_client, {"view": "all"})

    assert ids == expected  # each task once, none missing, in the list's order
    assert [len(rows) for rows, _links in pages] == [PAGE, PAGE, 20]
    assert "prev" not in pages[0][1] and "prev" in pages[1][1] and "prev" in pages[2][1]
    assert "next" not in pages[2][1]


def test_previous_link_returns_the_page_before_in_order(admin_client, admin):
    add_tasks(60, responsible=admin, status=Task.Status.DONE)
    add_tasks(60, responsible=admin)
    ids, pages = walk(admin_client, {"view": "all"})
    url = reverse("tasks:list")
    back = admin_client.get(url + pages[2][1]["prev"])
    rows, links = shown(back)
    assert rows == ids[PAGE:2 * PAGE]  # the second page, open/done boundary included
    assert "next" in links and "prev" in links
    first, links = shown(admin_client.get(url + links["prev"]))
    assert first == ids[:PAGE] and "prev" not in links


def test_mine_view_pages_with_equal_deadlines(admin_client, admin, manager):
    add_tasks(75, responsible=admin, same_deadline=True)
    add_tasks(5, responsible=manager)  # not mine
    add_tasks(5, responsible=admin, status=Task.Status.DONE)  # not open
    ids, pages = walk(admin_client, {"view": "mine"})
    assert ids == list(Task.objects.filter(responsible=admin, status="open").order_by("pk").values_list("pk", flat=True))
    assert len(pages) == 2


def test_links_keep_the_filters(admin_client, admin, manager):
    meeting = TaskType.objects.get(name="Meeting")
    wanted = add_tasks(55, responsible=manager, type=meeting)
    add_tasks(60, responsible=manager)  # another type
    add_tasks(60, responsible=admin, type=meeting)  # someone else's
    params = {"view": "all", "type": meeting.pk, "responsible": manager.pk}
    ids, pages = walk(admin_client, params)
    assert ids == [t.pk for t in wanted]
    next_link = pages[0][1]["next"]
    assert f"type={meeting.pk}" in next_link and f"responsible={manager.pk}" in next_link and "view=all" in next_link
    assert next_link.count("after=") == 1 and "before=" not in next_link  # the old cursor is not carried along
    prev_link = pages[1][1]["prev"]
    assert f"type={meeting.pk}" in prev_link and "after=" not in prev_link and prev_link.count("before=") == 1


def test_htmx_pager_answers_the_rows_partial(admin_client, admin):
    add_tasks(70, responsible=admin)
    _rows, links = shown(admin_client.get(reverse("tasks:list")))
    page = admin_client.get(reverse("tasks:list") + links["next"], headers={**HX, "HX-Target": "task-rows"})
    body = page.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div id="task-rows"')
    assert len(ROW.findall(body)) == 20
    assert 'hx-target="#task-rows"' in body and 'hx-push-url="true"' in body


def test_one_page_has_no_pager_and_a_bad_cursor_is_the_first_page(admin_client, admin):
    add_tasks(3, responsible=admin)
    rows, links = shown(admin_client.get(reverse("tasks:list")))
    assert len(rows) == 3 and links == {}
    for junk in ("nonsense", "open_2024-13-01_5", "maybe_2030-01-01T00:00:00+00:00_1", "open_2030-01-01T00:00:00_x"):
        assert shown(admin_client.get(reverse("tasks:list"), {"after": junk}))[0] == rows
        assert shown(admin_client.get(reverse("tasks:list"), {"before": junk}))[0] == rows


def test_a_manager_pages_through_their_own_tasks_only(manager_client, manager, admin):
    theirs = add_tasks(60, responsible=manager)
    add_tasks(60, responsible=admin)  # a manager does not see the admin's tasks
    ids, _pages = walk(manager_client, {"view": "all"})
    assert ids == [t.pk for t in theirs]


@pytest.mark.parametrize("count", [30, 130])
@pytest.mark.parametrize("where", ["first", "after", "before"])
def test_list_query_count_is_flat(count, where, admin_client, admin, django_assert_num_queries):
    add_tasks(count, responsible=admin, status=Task.Status.DONE)
    add_tasks(count, responsible=admin)
    url = reverse("tasks:list") + "?view=all"
    expected = PAGE
    if where != "first":
        pages = walk(admin_client, {"view": "all"})[1]
        url = reverse("tasks:list") + (pages[0][1]["next"] if where == "after" else pages[-1][1]["prev"])
        expected = len(pages[1][0] if where == "after" else pages[-2][0])
    # user with perms, tasks (+client, type, responsible), types, users: paging adds none
    with django_assert_num_queries(4):
        response = admin_client.get(url)
    assert len(shown(response)[0]) == expected
