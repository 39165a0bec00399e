import json
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import Activity, Event
from deals.models import Deal, Sale
from tests.conftest import HX
from tests.factories import ClientFactory, DealFactory, FunnelFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def test_manual_sale_updates_deal_and_client_together(admin_client, admin, stages):
    buyer = ClientFactory(sales_count=1, sales_sum=Decimal("100"))
    deal = DealFactory(client=buyer, stage=stages[0])
    form = admin_client.get(reverse("deals:sale", args=[deal.pk]), headers=HX).content.decode()
    assert "Player ID" in form and "Amount" in form
    response = admin_client.post(reverse("deals:sale", args=[deal.pk]), {"player_id": "P-77", "amount": "250.50"}, headers=HX)
    assert response.status_code == 200 and json.loads(response["HX-Trigger"]) == {"deal-changed": {}}
    assert "Sale added." in response.content.decode()
    deal.refresh_from_db()
    buyer.refresh_from_db()
    assert (deal.sales_count, deal.sales_sum) == (1, Decimal("250.50")) and deal.last_sale_at is not None
    assert (buyer.sales_count, buyer.sales_sum, buyer.last_sale_at) == (2, Decimal("350.50"), deal.last_sale_at)
    assert buyer.external_id == "P-77"
    assert Sale.objects.get().created_by == admin


def test_bad_sale_is_refused_and_nothing_changes(admin_client, stages):
    deal = DealFactory(stage=stages[0])
    response = admin_client.post(reverse("deals:sale", args=[deal.pk]), {"player_id": "", "amount": "-5"}, headers=HX)
    page = response.content.decode()
    assert "This field is required." in page and "greater than or equal to 0.01" in page
    deal.refresh_from_db()
    assert deal.sales_count == 0 and not Sale.objects.exists()


def test_sale_failure_rolls_back_everything(admin, stages, monkeypatch):
    """The sale's writes (one statement on PostgreSQL) belong to sale_add's transaction: a failure
    after them leaves no sale, no sums, no feed entry and no event."""
    from crm import events
    from deals import services

    deal = DealFactory(stage=stages[0])

    def broken():
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(events, "dispatch_on_commit", broken)
    with pytest.raises(RuntimeError):
        services.sale_add(actor=admin, deal=deal, player_id="x", amount=Decimal("10"))
    deal.refresh_from_db()
    deal.client.refresh_from_db()
    assert (deal.sales_count, deal.sales_sum, deal.client.sales_count, deal.client.external_id) == (0, 0, 0, "")
    assert not Sale.objects.exists()
    assert not Activity.objects.filter(kind=Activity.Kind.SALE).exists()
    assert not Event.objects.filter(kind=Event.Kind.SALE).exists()


def test_quick_deal_makes_the_author_responsible(manager_client, manager, stages):
    buyer = ClientFactory(responsible=manager, channel="vk")
    form = manager_client.get(reverse("deals:quick", args=[buyer.pk]), headers=HX).content.decode()
    assert "Sales · 1st line" in form
    response = manager_client.post(reverse("deals:quick", args=[buyer.pk]), {"name": "Quick", "budget": "300", "stage": stages[2].pk}, headers=HX)
    assert "HX-Redirect" in response.headers
    deal = Deal.objects.get()
    assert (deal.name, deal.budget, deal.stage, deal.responsible, deal.client, deal.channel) == (
        "Quick", Decimal("300"), stages[2], manager, buyer, "vk")


def test_quick_deal_into_a_funnel_the_user_may_not_open_is_refused(manager_client, manager):
    buyer = ClientFactory(responsible=manager)
    hidden = FunnelFactory().lines.get().stages.first()
    response = manager_client.post(reverse("deals:quick", args=[buyer.pk]), {"name": "X", "budget": "1", "stage": hidden.pk}, headers=HX)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Deal.objects.exists()


def test_expanded_row_lists_deals_with_a_stage_summary(admin_client, admin, stages):
    buyer = ClientFactory()
    DealFactory(client=buyer, stage=stages[1], name="Первая", budget=1200, sales_count=1, sales_sum=500, responsible=admin)
    page = admin_client.get(reverse("deals:client-row", args=[buyer.pk]), headers=HX).content.decode()
    assert "Первая" in page and "In conversation" in page
    assert f"Sales · 1st line. Budget 1,200; sales 1 for 500; responsible {admin}" in page


@pytest.mark.parametrize("deals", [1, 20])
def test_expanded_row_query_count(deals, admin_client, stages, django_assert_num_queries):
    buyer = ClientFactory()
    for _ in range(deals):
        DealFactory(client=buyer, stage=stages[0])
    with django_assert_num_queries(3):  # user with perms, client, deals (+stage, line, funnel)
        admin_client.get(reverse("deals:client-row", args=[buyer.pk]), headers=HX)


def test_client_filters_without_deals_deal_stage_and_deal_name(admin_client, stages):
    with_deal = ClientFactory(name="Has deal")
    DealFactory(client=with_deal, stage=stages[3], name="Поставка")
    ClientFactory(name="No deal")
    only_deleted = ClientFactory(name="Deleted deal only")
    DealFactory(client=only_deleted, stage=stages[3], deleted_at="2024-01-01T00:00Z")
    url = reverse("clients:list")
    names = lambda r: sorted(row["name"] for row in r.context["page"].rows)  # noqa: E731
    assert names(admin_client.get(url, {"view": "no_deals"})) == ["Deleted deal only", "No deal"]
    assert names(admin_client.get(url, {"deal_stage": [stages[3].pk, stages[4].pk]})) == ["Has deal"]
    assert names(admin_client.get(url, {"name": "постав"})) == ["Has deal"]
    assert names(admin_client.get(url, {"name": "No de"})) == ["No deal"]


def test_delete_with_deals_and_restore_with_deals(admin_client, stages):
    buyer = ClientFactory()
    kept_deleted = DealFactory(client=buyer, stage=stages[0], deleted_at="2024-01-01T00:00Z")
    live = DealFactory(client=buyer, stage=stages[0])
    admin_client.post(reverse("clients:delete", args=[buyer.pk]), {"with_deals": "1"}, headers=HX)
    live.refresh_from_db()
    assert live.deleted_at is not None and live.deleted_with_client
    admin_client.post(reverse("clients:restore", args=[buyer.pk]), {"with_deals": "1"})
    live.refresh_from_db()
    kept_deleted.refresh_from_db()
    buyer.refresh_from_db()
    assert buyer.deleted_at is None and live.deleted_at is None
    assert kept_deleted.deleted_at is not None  # deleted before, on its own: stays deleted


def test_contact_only_keeps_deals_and_plain_restore_leaves_deals(admin_client, stages):
    buyer = ClientFactory()
    live = DealFactory(client=buyer, stage=stages[0])
    admin_client.post(reverse("clients:delete", args=[buyer.pk]), headers=HX)
    live.refresh_from_db()
    assert live.deleted_at is None
    other = ClientFactory()
    other_deal = DealFactory(client=other, stage=stages[0])
    admin_client.post(reverse("clients:delete", args=[other.pk]), {"with_deals": "1"}, headers=HX)
    admin_client.post(reverse("clients:restore", args=[other.pk]))
    other_deal.refresh_from_db()
    assert other_deal.deleted_at is not None


def test_manager_cannot_delete_with_deals(manager_client, manager, stages):
    buyer = ClientFactory(responsible=manager)
    deal = DealFactory(client=buyer, stage=stages[0], responsible=manager)
    response = manager_client.post(reverse("clients:delete", args=[buyer.pk]), {"with_deals": "1"}, headers=HX)
    assert response.status_code == 403
    buyer.refresh_from_db()
    deal.refresh_from_db()
    assert buyer.deleted_at is None and deal.deleted_at is None


def test_funnel_access_granted_to_a_user_or_a_group(client, admin, db):
    from django.test import Client as Browser

    admin_client = Browser()
    admin_client.force_login(admin)
    secret = FunnelFactory(name="VIP funnel")
    person = UserFactory(role=role("Manager"))
    client.force_login(person)
    assert client.get(secret.get_absolute_url()).status_code == 404
    admin_client.post(reverse("deals:funnel-access", args=[secret.pk]), {"users": [person.pk]})
    assert client.get(secret.get_absolute_url()).status_code == 200
    admin_client.post(reverse("deals:funnel-access", args=[secret.pk]), {"users": []})
    assert client.get(secret.get_absolute_url()).status_code == 404
    admin_client.post(reverse("deals:funnel-access", args=[secret.pk]), {"groups": [role("Manager").group.pk]})
    assert client.get(secret.get_absolute_url()).status_code == 200
    assert "VIP funnel" in client.get(secret.get_absolute_url()).content.decode()


def test_deal_custom_fields_edit_and_show(admin_client, stages):
    from tests.factories import CustomFieldFactory

    contract = CustomFieldFactory(label="Договор", entity="deal", kind="text")
    CustomFieldFactory(label="Только клиент", entity="client")
    deal = DealFactory(stage=stages[0])
    form = admin_client.get(reverse("deals:edit", args=[deal.pk]), headers=HX).content.decode()
    assert "Договор" in form and "Только клиент" not in form
    response = admin_client.post(reverse("deals:edit", args=[deal.pk]),
                                 {"name": "Renamed", "budget": "10", "channel": "", contract.key: "Д-17"}, headers=HX)
    assert response.status_code == 200 and "Д-17" in response.content.decode()
    deal.refresh_from_db()
    assert deal.custom == {contract.key: "Д-17"} and deal.name == "Renamed" and deal.version == 2


def test_deleted_deals_listed_and_restored_by_admin(admin_client, stages):
    deal = DealFactory(stage=stages[0], name="Удалённая")
    admin_client.post(reverse("deals:delete", args=[deal.pk]), headers=HX)
    deal.refresh_from_db()
    assert deal.deleted_at is not None
    url = reverse("deals:table", args=[stages[0].line.funnel_id])
    assert "Удалённая" not in admin_client.get(url).content.decode()
    assert "Удалённая" in admin_client.get(url, {"view": "deleted"}).content.decode()
    admin_client.post(reverse("deals:restore", args=[deal.pk]), headers=HX)
    deal.refresh_from_db()
    assert deal.deleted_at is None
