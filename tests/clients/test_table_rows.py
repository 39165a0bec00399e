"""The clients table's rows: plain values built once per page, the same markup as before."""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.filters import search_q
from clients.models import Client
from crm.models import TableSettings
from tests.conftest import HX
from tests.factories import ClientFactory, TagFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_row_links_its_card_and_its_deals_and_labels_both_in_the_readers_language(client, admin):
    admin.language = "ru"
    admin.save()
    person = ClientFactory(name="Анна <Смирнова>")
    client.force_login(admin)
    url = reverse("clients:list")
    page = client.get(url, {"q": "Анна"}).content.decode()
    card = reverse("clients:detail", args=[person.pk])
    deals = reverse("deals:client-row", args=[person.pk])
    assert f'<td class="name"><a href="{card}">Анна &lt;Смирнова&gt;</a></td>' in page
    assert f'data-expand="{deals}?colspan=7&amp;next=/clients/%3Fq%3D%25D0%2590%25D0%25BD%25D0%25BD%25D0%25B0"' in page
    assert 'aria-label="Выбрать Анна &lt;Смирнова&gt;"' in page
    assert 'aria-label="Сделки клиента Анна &lt;Смирнова&gt;"' in page


def test_people_tags_and_money_cells(admin_client, admin):
    boss = UserFactory(first_name="Ирина", last_name="Котова")
    plain = UserFactory(first_name="", last_name="", username="plainuser")
    vip, wholesale = TagFactory(name="VIP", color="red"), TagFactory(name="Опт", color="green")
    rich = ClientFactory(name="Rich", responsible=boss, created_by=plain, sales_sum=1234567)
    rich.tags.set([wholesale, vip])
    ClientFactory(name="Nobody's", responsible=None)
    TableSettings.objects.create(user=admin, table="clients",
                                 columns=["name", "responsible", "created_by", "tags", "sales_sum"])
    rows = {row["name"]: dict(row["cells"]) for row in admin_client.get(reverse("clients:list")).context["page"].rows}
    assert rows["Rich"]["responsible"] == "Ирина Котова" and rows["Rich"]["created_by"] == "plainuser"
    assert {(t["name"], t["color"]) for t in rows["Rich"]["tags"]} == {("VIP", "red"), ("Опт", "green")}
    assert rows["Nobody's"]["responsible"] == "" and rows["Nobody's"]["tags"] == []
    assert rows["Rich"]["sales_sum"].replace("\xa0", " ").replace(",", " ") == "1 234 567"


@pytest.mark.parametrize("rows", [3, 120])
@pytest.mark.parametrize("q,queries", [("Клиент", 4), ("916", 4), ("9160000", 3)])
def test_search_page_query_count_does_not_grow(rows, q, queries, admin_client, admin, django_assert_num_queries):
    tag = TagFactory()
    clients = [ClientFactory(name=f"Клиент {i}", phone=f"+7916{i:07d}") for i in range(rows)]
    Client.tags.through.objects.bulk_create([Client.tags.through(client_id=c.pk, tag_id=tag.pk) for c in clients])
    # user with permissions, custom fields and table settings (one round trip), the planner's cost of
    # sorting every match (small here: sorted whole), rows with tags;
    # a phone search of 4+ digits goes to the trigram index directly (no boundary)
    with django_assert_num_queries(queries):
        response = admin_client.get(reverse("clients:list"), {"q": q}, headers=HX)
    assert len(response.context["page"].rows) == min(rows, 50)


def test_names_in_rows_are_escaped_once(admin_client):
    ClientFactory(name="O'Brien & Co")
    page = admin_client.get(reverse("clients:list")).content.decode()
    cell = re.search(r'<td class="name"><a href="[^"]+">([^<]*)</a></td>', page).group(1)
    assert html.unescape(cell) == "O'Brien & Co" and "&amp;amp;" not in page


@pytest.fixture
def spread(db):
    """Clients named "Смирнова …" and others, modified over a year, several at the same moment."""
    now = timezone.now()
    ages = [0, 0, 0, 1, 2, 5, 20, 25, 30, 40, 60, 26 * 24, 26 * 24, 30 * 24, 100 * 24, 100 * 24, 400 * 24]  # hours
    made = []
    for i, hours in enumerate(ages * 3):
        person = ClientFactory(name=f"{'Смирнова' if i % 2 else 'Иванов'} {i}", phone=f"+7916{i:07d}")
        Client.objects.filter(pk=person.pk).update(modified_at=now - timedelta(hours=hours))
        made.append(person)
    return made


WINDOWS, SORTED_WHOLE = -1.0, float("inf")  # clients.selectors.RARE_SEARCH_COST forcing either path


@pytest.mark.parametrize("path", [WINDOWS, SORTED_WHOLE], ids=["windows", "sorted-whole"])
@pytest.mark.parametrize("q", ["Смирнова", "Иванов", "916", "Смирнова 1"])
def test_search_by_windows_pages_like_one_ordered_query(q, path, spread, admin_client, settings, monkeypatch):
    """The search (clients.selectors.search_newest_first), by windows or, when the planner calls it
    rare, sorted whole, gives page after page exactly the rows of one query ordered newest first."""
    monkeypatch.setattr("clients.selectors.NEWEST_WALKED", 4)
    monkeypatch.setattr("clients.selectors.RARE_SEARCH_COST", path)
    settings.CLIENTS_PAGE_SIZE = 4
    expected = list(Client.objects.alive().filter(search_q(q)).order_by("-modified_at", "-pk").values_list("pk", flat=True))
    assert len(expected) > 8
    seen, params = [], {"q": q}
    while True:
        page = admin_client.get(reverse("clients:list"), params, headers=HX).context["page"]
        seen += [row["pk"] for row in page.rows]
        if not page.next_cursor:
            break
        params["after"] = page.next_cursor
    assert seen == expected


@pytest.mark.parametrize("path,queries", [(WINDOWS, 5), (SORTED_WHOLE, 4)], ids=["windows", "sorted-whole"])
@pytest.mark.parametrize("rows", [3, 60])
def test_windowed_search_query_count_does_not_grow(rows, path, queries, admin_client, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr("clients.selectors.NEWEST_WALKED", 2)
    monkeypatch.setattr("clients.selectors.RARE_SEARCH_COST", path)
    tag = TagFactory()
    clients = [ClientFactory(name=f"Клиент {i}") for i in range(rows)]
    Client.tags.through.objects.bulk_create([Client.tags.through(client_id=c.pk, tag_id=tag.pk) for c in clients])
    # user with permissions, custom fields and table settings (one round trip), the planner's cost of
    # sorting every match, [the search's boundary,] rows with their tags (every branch brings them)
    with django_assert_num_queries(queries):
        response = admin_client.get(reverse("clients:list"), {"q": "Клиент"}, headers=HX)
    assert len(response.context["page"].rows) == min(rows, 50)
    assert all(dict(row["cells"])["tags"] == [{"name": tag.name, "color": tag.color}] for row in response.context["page"].rows)


@pytest.mark.parametrize("path", [WINDOWS, SORTED_WHOLE], ids=["windows", "sorted-whole"])
def test_a_manager_searches_only_their_own_clients_by_windows(path, manager_client, manager, other_manager, monkeypatch):
    monkeypatch.setattr("clients.selectors.NEWEST_WALKED", 2)
    monkeypatch.setattr("clients.selectors.RARE_SEARCH_COST", path)
    mine = [ClientFactory(name=f"Смирнова {i}", responsible=manager) for i in range(5)]
    ClientFactory.create_batch(5, name="Смирнова чужая", responsible=other_manager)
    rows = manager_client.get(reverse("clients:list"), {"q": "Смирнова"}, headers=HX).context["page"].rows
    assert sorted(row["pk"] for row in rows) == sorted(c.pk for c in mine)
