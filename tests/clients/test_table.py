from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, SavedFilter
from crm.models import TableSettings
from tests.conftest import HX
from tests.factories import ClientFactory, CustomFieldFactory, TagFactory, UserFactory

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [row["name"] for row in response.context["page"].rows]


def touch(obj, minutes_ago):
    Client.objects.filter(pk=obj.pk).update(modified_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_newest_modification_first(admin_client):
    old, new, middle = ClientFactory(name="Old"), ClientFactory(name="New"), ClientFactory(name="Middle")
    touch(old, 30), touch(new, 1), touch(middle, 10)
    assert names(admin_client.get(reverse("clients:list"))) == ["New", "Middle", "Old"]


def test_keyset_pages_of_50_cover_every_row_once(admin_client, settings):
    settings.CLIENTS_COUNT_CAP = 1000
    ClientFactory.create_batch(120)
    seen, url = [], reverse("clients:list")
    first = admin_client.get(url)
    assert "Counting…" in first.content.decode()  # a second page exists: the count is deferred
    assert "120 clients" in admin_client.get(reverse("clients:count"), headers=HX).content.decode()
    response = first
    while True:
        page = response.context["page"]
        seen += [row["pk"] for row in page.rows]
        if not page.next_cursor:
            break
        response = admin_client.get(url, {"after": page.next_cursor}, headers=HX)
    assert len(seen) == 120 and len(set(seen)) == 120
    back = admin_client.get(url, {"before": response.context["page"].prev_cursor}, headers=HX)
    assert [row["pk"] for row in back.context["page"].rows] == seen[50:100]  # the second page, in order


@pytest.mark.parametrize("q", ["", "9160"])
def test_keyset_with_equal_modification_times(q, admin_client, settings):
    """After a mass action many rows share modified_at: paging must still see each once."""
    settings.CLIENTS_PAGE_SIZE = 7
    ClientFactory.create_batch(20)
    Client.objects.update(modified_at=timezone.now())
    expected = list(Client.objects.order_by("-pk").values_list("pk", flat=True))
    seen, params = [], {"q": q} if q else {}
    while True:
        page = admin_client.get(reverse("clients:list"), params, headers=HX).context["page"]
        seen += [row["pk"] for row in page.rows]
        if not page.next_cursor:
            break
        params["after"] = page.next_cursor
    assert seen == expected


def test_count_is_capped_and_filtered(admin_client, settings):
    settings.CLIENTS_COUNT_CAP = 60
    ClientFactory.create_batch(70)
    ClientFactory.create_batch(3, name="Zed")
    assert "More than 60 clients" in admin_client.get(reverse("clients:count"), headers=HX).content.decode()
    page = admin_client.get(reverse("clients:count"), {"q": "Zed"}, headers=HX).content.decode()
    assert "3 clients" in page and "<html" not in page


def test_one_page_result_counts_inline(admin_client):
    ClientFactory.create_batch(3)
    page = admin_client.get(reverse("clients:list")).content.decode()
    assert "3 clients" in page and "Counting" not in page


@pytest.mark.parametrize("rows", [5, 80])
def test_count_partial_query_count(rows, admin_client, django_assert_num_queries):
    ClientFactory.create_batch(rows)
    with django_assert_num_queries(3):  # user with perms, custom fields, count
        admin_client.get(reverse("clients:count"), {"q": "Client"}, headers=HX)


def test_live_search_by_name_and_phone_digits(admin_client):
    ClientFactory(name="Петров Пётр", phone="+79161234567", phone_digits="79161234567")
    ClientFactory(name="Smith John", phone="+12025550143", phone_digits="12025550143")
    url = reverse("clients:list")
    assert names(admin_client.get(url, {"q": "петр"}, headers=HX)) == ["Петров Пётр"]
    assert names(admin_client.get(url, {"q": "555"}, headers=HX)) == ["Smith John"]
    assert names(admin_client.get(url, {"q": "123-45"}, headers=HX)) == ["Петров Пётр"]
    response = admin_client.get(url, {"q": "петр"}, headers=HX)
    assert "<html" not in response.content.decode()  # the partial only
    assert 'id="clients-table"' in response.content.decode()


def test_system_filters_and_tabs(admin_client, admin, manager):
    ClientFactory(name="Mine potential", responsible=admin, lifecycle="potential")
    ClientFactory(name="Mine converted", responsible=admin, lifecycle="converted")
    ClientFactory(name="Theirs", responsible=manager)
    ClientFactory(name="Gone", responsible=admin, deleted_at=timezone.now())
    url = reverse("clients:list")
    assert sorted(names(admin_client.get(url, {"view": "mine"}))) == ["Mine converted", "Mine potential"]
    assert names(admin_client.get(url, {"view": "mine", "tab": "converted"})) == ["Mine converted"]
    assert names(admin_client.get(url, {"view": "deleted"})) == ["Gone"]
    assert "Gone" not in names(admin_client.get(url))


def test_custom_filters_combine_with_and(admin_client, admin, manager, other_manager):
    vip = TagFactory(name="VIP")
    level = CustomFieldFactory(kind="select", choices=["Gold", "Silver"])
    ClientFactory(name="Match", responsible=manager, tags=[vip], country="KZ", custom={level.key: "Gold"})
    ClientFactory(name="Wrong tag", responsible=manager, country="KZ", custom={level.key: "Gold"})
    ClientFactory(name="Wrong owner", responsible=admin, tags=[vip], country="KZ", custom={level.key: "Gold"})
    ClientFactory(name="Wrong level", responsible=other_manager, tags=[vip], country="KZ", custom={level.key: "Silver"})
    params = {"responsible": [manager.pk, other_manager.pk], "tags": [vip.pk], "country": ["KZ"], level.column_key: ["Gold"]}
    assert names(admin_client.get(reverse("clients:list"), params)) == ["Match"]


def test_date_range_and_author_filters(admin_client, admin, manager):
    old = ClientFactory(name="Old", created_by=manager, modified_by=admin)
    Client.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    ClientFactory(name="Fresh", created_by=admin, modified_by=admin)
    since = (timezone.localdate() - timedelta(days=7)).isoformat()
    url = reverse("clients:list")
    assert names(admin_client.get(url, {"created_from": since})) == ["Fresh"]
    assert names(admin_client.get(url, {"created_by": manager.pk})) == ["Old"]
    assert sorted(names(admin_client.get(url, {"modified_by": admin.pk}))) == ["Fresh", "Old"]


def test_tag_filter_does_not_duplicate_rows(admin_client):
    a, b = TagFactory(name="a"), TagFactory(name="b")
    ClientFactory(name="Both", tags=[a, b])
    assert names(admin_client.get(reverse("clients:list"), {"tags": [a.pk, b.pk]})) == ["Both"]


def test_invalid_filter_value_shows_nothing_rather_than_everything(admin_client):
    ClientFactory()
    response = admin_client.get(reverse("clients:list"), {"created_from": "not-a-date"})
    assert names(response) == []


def test_saved_filter_sets_are_per_user(admin_client, admin, manager):
    response = admin_client.post(reverse("clients:filter-save"), {"name": "Казахстан", "query": "country=KZ&q=%D0%B0"})
    assert response.status_code == 302 and "country=KZ" in response["Location"]
    saved = SavedFilter.objects.get()
    assert saved.user == admin and saved.query == "country=KZ&q=%D0%B0"
    panel = admin_client.get(reverse("clients:filters"), headers=HX).content.decode()
    assert "Казахстан" in panel
    SavedFilter.objects.create(user=manager, name="Someone else's", query="x=1")
    assert "Someone else" not in admin_client.get(reverse("clients:filters"), headers=HX).content.decode()


def test_columns_saved_per_user_in_order(admin_client, admin, manager):
    field = CustomFieldFactory(label="Nickname")
    response = admin_client.post(
        reverse("clients:columns"),
        {"order": ["email", field.column_key, "name", "phone"], "shown": ["email", field.column_key, "name"]},
        headers=HX,
    )
    assert "HX-Redirect" in response.headers
    assert TableSettings.objects.get(user=admin).columns == ["email", field.column_key, "name"]
    ClientFactory(custom={field.key: "Shadow"})
    page = admin_client.get(reverse("clients:list"))
    assert [c.key for c in page.context["page"].columns] == ["email", field.column_key, "name"]
    assert "Shadow" in page.content.decode()
    assert not TableSettings.objects.filter(user=manager).exists()


def test_advanced_search_single_match_opens_card(admin_client):
    target = ClientFactory(name="Unique Person", city="Казань", email="u@example.com")
    ClientFactory(name="Other Person", city="Казань")
    response = admin_client.get(reverse("clients:search"), {"go": "1", "city": "казань", "email": "u@"})
    assert response.status_code == 302 and response["Location"] == target.get_absolute_url()
    response = admin_client.get(reverse("clients:search"), {"go": "1", "city": "Казань"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("clients:list") + "?")
    assert "go=" not in response["Location"]


@pytest.mark.parametrize("rows", [5, 500])
def test_table_query_count_does_not_grow(rows, admin_client, admin, django_assert_num_queries):
    tags = [TagFactory(name=f"t{i}") for i in range(3)]
    users = UserFactory.create_batch(3)
    CustomFieldFactory.create_batch(2)
    clients = ClientFactory.create_batch(rows, responsible=users[0], created_by=users[1])
    through = Client.tags.through
    through.objects.bulk_create([through(client_id=c.pk, tag_id=t.pk) for c in clients for t in tags])
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "responsible", "tags", "created_by"])
    # user with permissions; custom fields and table settings (one round trip, selectors.table_frame);
    # rows with their tags (selectors.with_row_tags; count deferred)
    expected = 3
    with django_assert_num_queries(expected):
        assert admin_client.get(reverse("clients:list")).status_code == 200
    with django_assert_num_queries(expected):
        response = admin_client.get(reverse("clients:list"), {"responsible": users[0].pk, "tags": tags[0].pk}, headers=HX)
        assert response.status_code == 200


def test_filter_panel_query_count(admin_client, django_assert_num_queries):
    UserFactory.create_batch(5)
    TagFactory.create_batch(5)
    CustomFieldFactory.create_batch(2)
    # user with perms, custom fields, users, tags, lead steps, deal stages, saved filters
    with django_assert_num_queries(7):
        assert admin_client.get(reverse("clients:filters"), headers=HX).status_code == 200


def test_number_and_date_custom_filters(admin_client):
    amount = CustomFieldFactory(kind="number")
    born = CustomFieldFactory(kind="date")
    ClientFactory(name="Rich", custom={amount.key: 1500, born.key: "1990-05-01"})
    ClientFactory(name="Poor", custom={amount.key: 20.5, born.key: "2001-01-01"})
    url = reverse("clients:list")
    assert names(admin_client.get(url, {f"{amount.key}_min": "100"})) == ["Rich"]
    assert names(admin_client.get(url, {f"{amount.key}_max": "20.5"})) == ["Poor"]
    assert names(admin_client.get(url, {f"{born.key}_to": "1995-12-31"})) == ["Rich"]


def test_table_and_export_show_times_in_the_readers_zone(client, admin):
    from datetime import datetime

    admin.time_zone, admin.language = "Asia/Yekaterinburg", "ru"
    admin.save()
    mine = ClientFactory(name="Часовой пояс")
    Client.objects.filter(pk=mine.pk).update(modified_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "modified_at"])
    client.force_login(admin)
    page = client.get(reverse("clients:list")).content.decode()
    assert "02.12.2026 15:00" in page and "02.12.2026 10:00" not in page  # UTC+5
    export = client.get(reverse("clients:export") + "?format=csv")
    text = b"".join(export.streaming_content).decode("utf-8-sig") if export.streaming else export.content.decode("utf-8-sig")
    assert "02.12.2026 15:00" in text


def test_rows_escape_what_users_typed_in_every_column(admin_client, admin):
    """The rows are a Jinja2 fragment (crm/fragments.py): autoescaped like Django's templates."""
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "city", "tags", "email"])
    ClientFactory(name='<script>alert("n")</script>', city="<i>Тверь</i>", email="a&b@example.com",
                  tags=[TagFactory(name="<u>VIP</u>")])
    page = admin_client.get(reverse("clients:list")).content.decode()
    assert "<script>alert" not in page and "<i>Тверь" not in page and "<u>VIP" not in page
    for escaped in ("&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;", "&lt;i&gt;Тверь&lt;/i&gt;", "&lt;u&gt;VIP&lt;/u&gt;",
                    "a&amp;b@example.com"):
        assert escaped in page, escaped


def test_deleted_clients_have_no_tick_box(admin_client, admin):
    ClientFactory(name="Живой")
    page = admin_client.get(reverse("clients:list")).content.decode()
    assert 'name="ids"' in page and "data-expand=" in page
    ClientFactory(name="Удалённый", deleted_at=timezone.now())
    deleted = admin_client.get(reverse("clients:list"), {"view": "deleted"}).content.decode()
    assert "Удалённый" in deleted and 'name="ids"' not in deleted


def test_the_table_frame_reads_what_the_orm_reads(admin):
    """selectors.table_frame (two hand-written statements in one round trip) gives the same custom
    fields, in the same order and with their values' lists decoded, and the same saved columns."""
    from clients.selectors import CLIENTS_TABLE, custom_fields_active, table_frame

    CustomFieldFactory(label="Второй", position=2)
    CustomFieldFactory(label="Первый", position=1, kind="select", choices=["a", "б"])
    CustomFieldFactory(label="Выключен", position=0, is_active=False)
    custom, saved = table_frame(admin)
    expected = custom_fields_active()
    assert [(f.pk, f.label, f.kind, f.choices, f.position) for f in custom] == [
        (f.pk, f.label, f.kind, f.choices, f.position) for f in expected]
    assert [f.label for f in custom] == ["Первый", "Второй"] and custom[0].choices == ["a", "б"]
    assert saved is None
    TableSettings.objects.create(user=admin, table=CLIENTS_TABLE, columns=["name", "email"])
    assert table_frame(admin)[1] == ["name", "email"]
