import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from tests.conftest import HX
from tests.factories import (
    ClientFactory,
    CustomFieldFactory,
    TagFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db


def test_card_shows_fields_escaped(admin_client):
    obj = ClientFactory(name="<script>x</script>", city="Москва", tags=[TagFactory(name="VIP")])
    page = admin_client.get(obj.get_absolute_url()).content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert "Москва" in page and "VIP" in page


@pytest.mark.parametrize("size", [0, 12])
def test_card_query_count_flat(size, admin_client, admin, django_assert_num_queries):
    from crm.models import Activity
    from deals.models import Sale
    from tests.factories import DealFactory

    obj = ClientFactory(tags=TagFactory.create_batch(size))
    CustomFieldFactory.create_batch(2)
    for _ in range(size):
        deal = DealFactory(client=obj)
        Sale.objects.create(deal=deal, client=obj, player_id="p", amount=10)
    Activity.objects.bulk_create(Activity(client=obj, actor=admin, kind="comment", text=f"c{i}") for i in range(size * 5))
    # user with perms, client (+responsible, authors), deals, card layout, note, feed page,
    # last contact, tags, sales, tasks, conversations (Messages tab), possible duplicates, merges into
    # it (issue 18); with a deal (size 12), the registration-link block (issue 17): active partners, the
    # deal's links, its conversions; the lead block (issue 18): steps, notes and actions at a step,
    # conversions; the comment box's action types
    with django_assert_num_queries(18 + (3 if size else 0)):
        response = admin_client.get(obj.get_absolute_url())
    assert response.status_code == 200


def test_soft_delete_from_card_and_restore_by_admin(admin_client, admin):
    obj = ClientFactory(responsible=admin)
    confirm = admin_client.get(reverse("clients:delete", args=[obj.pk]), headers=HX)
    assert "will move to Deleted" in confirm.content.decode()
    response = admin_client.post(reverse("clients:delete", args=[obj.pk]), headers=HX)
    assert "HX-Redirect" in response.headers
    obj.refresh_from_db()
    assert obj.deleted_at is not None and obj.deleted_by == admin
    assert Client.objects.filter(pk=obj.pk).exists()  # never removed
    card = admin_client.get(obj.get_absolute_url()).content.decode()  # the deleted client's own link
    assert "This client was deleted" in card and "Restore" in card
    admin_client.post(reverse("clients:restore", args=[obj.pk]))
    obj.refresh_from_db()
    assert obj.deleted_at is None


def test_manager_cannot_see_or_restore_deleted(manager_client, manager):
    obj = ClientFactory(responsible=manager, deleted_at=timezone.now())
    assert manager_client.get(obj.get_absolute_url()).status_code == 404
    assert manager_client.post(reverse("clients:restore", args=[obj.pk])).status_code == 404
    assert manager_client.get(reverse("clients:list"), {"view": "deleted"}).status_code == 403
    obj.refresh_from_db()
    assert obj.deleted_at is not None


def test_manager_sees_only_own_clients(manager_client, manager, admin):
    mine = ClientFactory(name="Mine", responsible=manager)
    theirs = ClientFactory(name="Theirs", responsible=admin)
    listing = manager_client.get(reverse("clients:list"))
    assert [row["name"] for row in listing.context["page"].rows] == ["Mine"]
    assert manager_client.get(mine.get_absolute_url()).status_code == 200
    for name in ("clients:detail", "clients:edit", "clients:delete"):
        assert manager_client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert manager_client.post(reverse("clients:delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.deleted_at is None
    assert manager_client.get(reverse("clients:list"), {"q": "Theirs"}).context["page"].rows == []


def test_team_visibility(client, manager, admin, team):
    from crm.models import Role

    manager_role = manager.role
    manager_role.visibility = Role.Visibility.TEAM
    manager_role.save()
    teammate_client = ClientFactory(name="Teammate's", responsible=admin)  # admin is in the same team
    stranger = ClientFactory(name="Stranger's", responsible=UserFactory(role=role("Manager")))
    client.force_login(manager)
    rows = client.get(reverse("clients:list")).context["page"].rows
    assert [row["name"] for row in rows] == ["Teammate's"]
    assert client.get(teammate_client.get_absolute_url()).status_code == 200
    assert client.get(stranger.get_absolute_url()).status_code == 404
