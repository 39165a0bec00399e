import json

import pytest
from django.urls import reverse

from clients.models import Client, ClientNote
from crm.activity import notification_text_for
from crm.models import Activity, Notification
from tests.conftest import HX
from tests.factories import ClientFactory, CustomFieldFactory, DealFactory, TagFactory

pytestmark = pytest.mark.django_db


def feed_texts(client, obj, **params):
    response = client.get(reverse("clients:feed", args=[obj.pk]), params, headers=HX)
    return [(a.kind, a.field, a.old_value, a.new_value, a.text) for a in response.context["feed"]]


def edit(client, obj, **data):
    payload = {"name": obj.name, "phone": obj.phone, "email": obj.email, "priority": obj.priority, "lifecycle": obj.lifecycle}
    payload.update(data)
    return client.post(reverse("clients:edit", args=[obj.pk]), payload, headers=HX)


def test_every_change_is_in_the_feed_with_who_old_and_new(admin_client, admin, manager):
    level = CustomFieldFactory(label="Уровень", kind="select", choices=["Gold", "Silver"])
    obj = ClientFactory(name="Старое имя", city="Тула", custom={level.key: "Silver"})
    vip = TagFactory(name="VIP")
    edit(admin_client, obj, name="Новое имя", city="Тверь", responsible=manager.pk, country="KZ", tags=[vip.pk],
         **{level.key: "Gold"})
    entries = {a.field: a for a in Activity.objects.filter(client=obj)}
    assert (entries["name"].old_value, entries["name"].new_value, entries["name"].actor) == ("Старое имя", "Новое имя", admin)
    assert (entries["city"].old_value, entries["city"].new_value) == ("Тула", "Тверь")
    assert entries["country"].new_value == "Kazakhstan"
    assert (entries[level.key].field_label, entries[level.key].old_value, entries[level.key].new_value) == ("Уровень", "Silver", "Gold")
    assert entries["tags"].new_value == "VIP"
    assert entries["responsible"].new_value == str(manager)
    # the person made responsible is notified
    assert Notification.objects.get(user=manager).kind == "assigned"


def test_deal_moves_sales_deletions_and_mass_actions_reach_the_feed(admin_client, admin, manager):
    from deals import services as deal_services
    from deals.models import Deal, Stage

    stages = list(Stage.objects.filter(line__funnel__name="Sales", line__position=1).order_by("position"))
    obj = ClientFactory()
    deal = DealFactory(client=obj, stage=stages[0])
    loaded = Deal.objects.select_related("stage__line").get(pk=deal.pk)
    deal_services.deal_move(actor=admin, deal=loaded, to_stage_id=stages[2].pk, seen_stage_id=stages[0].pk, seen_version=1)
    deal_services.sale_add(actor=admin, deal=loaded, player_id="P1", amount=500)
    from clients import services
    services.clients_change_responsible(actor=admin, clients=Client.objects.filter(pk=obj.pk), responsible=manager)
    services.clients_soft_delete(actor=admin, clients=Client.objects.filter(pk=obj.pk))
    services.clients_restore(actor=admin, clients=Client.objects.filter(pk=obj.pk))
    kinds = [a.kind for a in Activity.objects.filter(client=obj).order_by("pk")]
    assert kinds == ["stage", "sale", "change", "deleted", "restored"]
    page = admin_client.get(obj.get_absolute_url()).content.decode()
    assert "Link sent" in page and "Not processed" in page  # the move shows stage names


def test_comment_limit_escaping_links_and_mentions(client, admin, manager):
    obj = ClientFactory(responsible=manager)
    client.force_login(manager)
    url = reverse("clients:comment", args=[obj.pk])
    too_long = client.post(url, {"text": "я" * 1000}, headers=HX)
    assert "at most 999 characters" in too_long.content.decode()
    assert not Activity.objects.filter(kind="comment").exists()
    text = f"Привет @{admin.username}! <script>alert(1)</script> см. https://example.com/a?b=1&c=2"
    response = client.post(url, {"text": text}, headers=HX)
    page = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow">' in page
    assert f'<span class="mention">@{admin.username}</span>' in page
    assert Activity.objects.get(kind="comment").text == text
    note = Notification.objects.get(user=admin)
    assert note.kind == "mention" and str(manager) in notification_text_for(admin, note)
    assert not Notification.objects.filter(user=manager).exists()  # nobody is notified of their own words
    assert client.post(url, {"text": "x" * 999}, headers=HX).status_code == 200
    assert Activity.objects.filter(kind="comment").count() == 2


def test_the_note_is_one_per_client_and_its_edits_are_in_the_feed(manager_client, manager):
    obj = ClientFactory(responsible=manager)
    url = reverse("clients:note", args=[obj.pk])
    manager_client.post(url, {"text": "Звонить после 18:00"}, headers=HX)
    response = manager_client.post(url, {"text": "Звонить после 19:00"}, headers=HX)
    assert json.loads(response["HX-Trigger"]) == {"feed-changed": {}} and "Звонить после 19:00" in response.content.decode()
    assert ClientNote.objects.filter(client=obj).count() == 1
    notes = list(Activity.objects.filter(client=obj, kind="note").order_by("pk").values_list("old_value", "new_value"))
    assert notes == [("", "Звонить после 18:00"), ("Звонить после 18:00", "Звонить после 19:00")]


def test_feed_is_newest_first_paginated_and_filtered(admin_client, admin):
    obj = ClientFactory()
    Activity.objects.bulk_create(Activity(client=obj, actor=admin, kind="comment", text=f"c{i}") for i in range(45))
    Activity.objects.create(client=obj, actor=admin, kind="note", new_value="n")
    first = admin_client.get(reverse("clients:feed", args=[obj.pk]), headers=HX).context
    assert [a.kind for a in first["feed"][:2]] == ["note", "comment"] and len(first["feed"]) == 30
    more = admin_client.get(reverse("clients:feed", args=[obj.pk]), {"before": first["feed_more"]}, headers=HX).context
    assert len(more["feed"]) == 16 and more["feed_more"] is None
    only_notes = feed_texts(admin_client, obj, kind="notes")
    assert [k for k, *_ in only_notes] == ["note"]


@pytest.mark.parametrize("entries", [3, 90])
def test_feed_query_count(entries, admin_client, admin, django_assert_num_queries):
    obj = ClientFactory()
    Activity.objects.bulk_create(Activity(client=obj, actor=admin, kind="stage", old_value="1", new_value="2") for _ in range(entries))
    with django_assert_num_queries(4):  # user with perms, client, feed page, stage names
        admin_client.get(reverse("clients:feed", args=[obj.pk]), headers=HX)


def test_panel_is_the_card_without_the_page(admin_client):
    obj = ClientFactory(name="Панель")
    page = admin_client.get(reverse("clients:panel", args=[obj.pk]), headers=HX).content.decode()
    assert 'id="card-panel"' in page and "<html" not in page and "Leave a comment" in page


def test_indicators(admin_client, admin):
    obj = ClientFactory(sales_count=3, sales_sum=4500)
    DealFactory(client=obj)
    DealFactory(client=obj)
    Activity.objects.create(client=obj, actor=admin, kind="comment", text="hi")
    context = admin_client.get(obj.get_absolute_url()).context
    assert (context["open_deals"], context["days_since_contact"]) == (2, 0)


def test_notifications_bell_list_and_read(client, manager, admin):
    Notification.objects.create(user=manager, kind="mention", text="one")
    Notification.objects.create(user=manager, kind="assigned", text="two")
    Notification.objects.create(user=admin, kind="mention", text="not mine")
    client.force_login(manager)
    bell = client.get(reverse("crm:bell"), headers=HX).content.decode()
    assert ">2<" in bell.replace("\n", "").replace(" ", "") or "2<span" in bell
    page = client.get(reverse("crm:notifications")).content.decode()
    assert "one" in page and "two" in page and "not mine" not in page
    first = Notification.objects.get(text="one")
    client.post(reverse("crm:notification-read", args=[first.pk]))
    first.refresh_from_db()
    assert first.read_at is not None
    client.post(reverse("crm:notifications-read"))
    assert not Notification.objects.filter(user=manager, read_at__isnull=True).exists()
    assert Notification.objects.get(text="not mine").read_at is None


@pytest.mark.parametrize("count", [1, 30])
def test_bell_query_count(count, client, manager, django_assert_num_queries):
    Notification.objects.bulk_create(Notification(user=manager, kind="mention", text="x") for _ in range(count))
    client.force_login(manager)
    with django_assert_num_queries(2):  # user, unread count
        client.get(reverse("crm:bell"), headers=HX)


def test_made_responsible_for_a_deal_notifies(admin_client, manager):
    deal = DealFactory()
    admin_client.post(reverse("deals:edit", args=[deal.pk]),
                      {"name": deal.name, "budget": "1", "channel": "", "responsible": manager.pk}, headers=HX)
    note = Notification.objects.get(user=manager)
    assert note.kind == "assigned" and f"#{deal.pk}" in notification_text_for(manager, note)
    assert Activity.objects.filter(deal=deal, field="responsible").exists()
