"""The clients table's unfiltered pages ("all" and "mine") are one hand-written statement
(clients.selectors.hand_written_page): they must show exactly what the ORM's path shows, for
every visibility, every column (people who may be nobody, tags, a custom field, the step), and
every page of a keyset walk through clients that share one modified_at."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.http import QueryDict
from django.utils import timezone

from clients import selectors
from clients.columns import SYSTEM_COLUMNS
from clients.models import Client, LeadStep
from crm import permissions as gate
from crm.models import Role, TableSettings
from tests.factories import ClientFactory, CustomFieldFactory, TagFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def walk(viewer, view: str) -> list:
    """Every page of the view, first to last and back again: (rows, total, cursors) of each."""
    pages, query = [], QueryDict(mutable=True)
    if view != "all":
        query["view"] = view
    while True:
        page = selectors.clients_table(viewer, query, return_to="/clients/")
        pages.append((page.rows, page.total, page.next_cursor, page.prev_cursor))
        if not page.next_cursor:
            break
        query = query.copy()
        query.pop("before", None)
        query["after"] = page.next_cursor
    while page.prev_cursor:  # and back, by the "newer" links
        query = query.copy()
        query.pop("after", None)
        query["before"] = page.prev_cursor
        page = selectors.clients_table(viewer, query, return_to="/clients/")
        pages.append((page.rows, page.total, page.next_cursor, page.prev_cursor))
    return pages


@pytest.fixture
def population(team, admin, manager, other_manager):
    field = CustomFieldFactory(label="Segment")
    red, blue = TagFactory(name="red", color="red"), TagFactory(name="Ёлка", color="blue")
    step = LeadStep.objects.order_by("position").first()
    people = [admin, manager, other_manager]
    same_moment = timezone.now() - timedelta(days=1)
    for i in range(17):
        client = ClientFactory(
            name=f"Клиент {i}", responsible=people[i % 3], created_by=people[i % 2] if i % 4 else None,
            custom={field.key: f"сегмент {i % 3}"} if i % 2 else {}, tags=[red, blue][: i % 3],
            lifecycle="potential" if i % 2 else "converted", step=step if i % 5 == 0 else None,
        )
        if i % 3 == 0:  # a bulk change: several clients share one modified_at
            Client.objects.filter(pk=client.pk).update(modified_at=same_moment)
    Client.objects.filter(name="Клиент 4").update(deleted_at=timezone.now())
    return field


def test_the_hand_written_pages_are_the_orms(population, admin, manager, other_manager, team, settings, monkeypatch):
    settings.CLIENTS_PAGE_SIZE = 4
    lead = Role.objects.create(group=Group.objects.create(name="Team lead"), visibility=Role.Visibility.TEAM)
    lead.group.permissions.add(*role("Manager").group.permissions.all())
    team_lead = UserFactory(role=lead, team=team)
    every_column = [col.key for col in SYSTEM_COLUMNS] + [population.column_key]
    TableSettings.objects.create(user=admin, table="clients", columns=every_column)
    TableSettings.objects.create(user=team_lead, table="clients", columns=["name", "created_by", "tags", "step", population.column_key])
    seen = set()
    for viewer in (admin, manager, other_manager, team_lead):
        viewer = type(viewer).objects.select_related("role", "team").get(pk=viewer.pk)
        for view in ("all", "mine"):
            by_hand = walk(viewer, view)
            with monkeypatch.context() as m:
                m.setattr(selectors, "HAND_WRITTEN_VIEWS", ())
                by_orm = walk(viewer, view)
            assert by_hand == by_orm, (viewer, view)
            seen.add(sum(len(rows) for rows, *_rest in by_hand))
    assert len(seen) >= 4  # the viewers and views saw different clients


def test_a_page_shows_what_its_columns_say(population, admin):
    """The rows as the user reads them: a nobody shown empty, tags in name order, the custom
    field's value, a deleted client nowhere."""
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "created_by", "tags", population.column_key])
    page = selectors.clients_table(admin, QueryDict(""), return_to="/clients/")
    rows = {row["name"]: dict(row["cells"]) for row in page.rows}
    assert "Клиент 4" not in rows and len(rows) == 16
    assert rows["Клиент 0"]["created_by"] == "" and rows["Клиент 1"]["created_by"] != ""
    assert [tag["name"] for tag in rows["Клиент 2"]["tags"]] == ["red", "Ёлка"]
    assert rows["Клиент 1"][population.column_key] == "сегмент 1" and rows["Клиент 2"][population.column_key] == ""


def test_the_gates_condition_is_visible_clients(population, admin, manager, other_manager, team):
    lead = Role.objects.create(group=Group.objects.create(name="Team lead"), visibility=Role.Visibility.TEAM)
    lead.group.permissions.add(*role("Manager").group.permissions.all())
    for viewer in (admin, manager, other_manager, UserFactory(role=lead, team=team)):
        viewer = type(viewer).objects.select_related("role", "team").get(pk=viewer.pk)
        condition, params = gate.visible_clients_sql(viewer, "clients_client")
        by_sql = sorted(Client.objects.extra(where=[condition], params=params).values_list("pk", flat=True))
        assert by_sql == sorted(gate.visible_clients(viewer).values_list("pk", flat=True)), viewer
