import re
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from tests.conftest import HX
from tests.factories import ClientFactory, UserFactory, role

pytestmark = pytest.mark.django_db

TRICKY = "О'Нил, \"Ко\""  # quotes, a comma and Cyrillic in one search


def confirm(client, action, **data):
    return client.post(reverse("clients:bulk-confirm"), {"action": action, **data}, headers=HX)


def digest_of(response) -> str:
    return re.search(r'name="digest" value="([0-9a-f]+)"', response.content.decode()).group(1)


def run(client, action, **data):
    return client.post(reverse("clients:bulk-run"), {"action": action, **data}, headers=HX)


def confirm_and_run(client, action, **data):
    """What a person does: open the confirmation, then press Confirm on what it showed."""
    digest = digest_of(confirm(client, action, **data))
    return run(client, action, digest=digest, **data)


def test_filter_scope_touches_exactly_the_matching_clients(admin_client, admin, manager):
    hits = [ClientFactory(name=f"{TRICKY} {i}") for i in range(3)]
    bystanders = [ClientFactory(name="О'Нил"), ClientFactory(name="Ко"), ClientFactory(name="Нил, Ко")]
    query = urlencode({"q": TRICKY})
    page = confirm(admin_client, "responsible", scope="filter", query=query).content.decode()
    assert "The responsible will change for 3 clients." in page
    response = confirm_and_run(admin_client, "responsible", scope="filter", query=query, responsible=manager.pk)
    assert "HX-Redirect" in response.headers
    assert {c.pk for c in Client.objects.filter(responsible=manager)} == {c.pk for c in hits}
    assert all(Client.objects.get(pk=b.pk).responsible is None for b in bystanders)


def test_refuses_when_the_selection_grew_since_confirmation(admin_client, manager):
    ClientFactory.create_batch(2, name="Ann")
    query = "q=Ann"
    digest = digest_of(confirm(admin_client, "delete", scope="filter", query=query))
    ClientFactory(name="Ann late")
    response = run(admin_client, "delete", scope="filter", query=query, digest=digest)
    assert response.status_code == 200
    assert "nothing was done. 3 clients match now" in response.content.decode()
    assert Client.objects.deleted().count() == 0


def test_refuses_a_same_size_swap(admin_client):
    """One confirmed client left the filter and another joined: same count, other clients."""
    leaving, staying = ClientFactory(name="Ann A"), ClientFactory(name="Ann B")
    query = "q=Ann"
    digest = digest_of(confirm(admin_client, "delete", scope="filter", query=query))
    Client.objects.filter(pk=leaving.pk).update(name="Bob")
    newcomer = ClientFactory(name="Ann C")
    response = run(admin_client, "delete", scope="filter", query=query, digest=digest)
    assert "nothing was done. 2 clients match now" in response.content.decode()
    assert Client.objects.deleted().count() == 0
    # confirming what is shown now deletes exactly the two that match now
    confirm_and_run(admin_client, "delete", scope="filter", query=query)
    assert set(Client.objects.deleted().values_list("pk", flat=True)) == {staying.pk, newcomer.pk}


def test_filter_scope_never_touches_deleted_clients(admin_client, manager):
    gone = ClientFactory(name="Gone", deleted_at=timezone.now())
    confirm_and_run(admin_client, "responsible", scope="filter", query="view=deleted", responsible=manager.pk)
    gone.refresh_from_db()
    assert gone.responsible is None


def test_ticked_ids_are_scoped_by_visibility(manager_client, manager, admin):
    mine = ClientFactory.create_batch(2, responsible=manager)
    foreign = ClientFactory(responsible=admin)
    ids = [c.pk for c in mine] + [foreign.pk]
    page = confirm(manager_client, "delete", scope="ids", ids=ids).content.decode()
    assert "2 clients will be deleted." in page
    response = confirm_and_run(manager_client, "delete", scope="ids", ids=ids)
    assert "HX-Redirect" in response.headers
    assert set(Client.objects.deleted().values_list("pk", flat=True)) == {c.pk for c in mine}


def test_no_ids_never_widens_to_all(admin_client):
    ClientFactory.create_batch(3)
    page = confirm(admin_client, "delete", scope="ids").content.decode()
    assert "0 clients will be deleted." in page
    confirm_and_run(admin_client, "delete", scope="ids")
    assert Client.objects.deleted().count() == 0


def test_manager_without_permission_gets_403_and_nothing_changes(manager_client, manager, other_manager):
    mine = ClientFactory(responsible=manager)
    assert confirm(manager_client, "responsible", scope="ids", ids=[mine.pk]).status_code == 403
    response = run(manager_client, "responsible", scope="ids", ids=[mine.pk], digest="x", responsible=other_manager.pk)
    assert response.status_code == 403
    mine.refresh_from_db()
    assert mine.responsible == manager


def test_unknown_action_is_400(admin_client):
    assert confirm(admin_client, "explode", scope="ids").status_code == 400


def test_bulk_delete_keeps_rows(admin_client, admin):
    rows = ClientFactory.create_batch(3)
    bystander = ClientFactory()
    confirm_and_run(admin_client, "delete", scope="ids", ids=[c.pk for c in rows])
    assert Client.objects.count() == 4
    assert set(Client.objects.deleted().values_list("pk", flat=True)) == {c.pk for c in rows}
    assert {c.deleted_by for c in Client.objects.deleted()} == {admin}
    assert Client.objects.get(pk=bystander.pk).deleted_at is None


@pytest.mark.parametrize("rows", [3, 60])
def test_bulk_confirm_query_count(rows, admin_client, django_assert_num_queries):
    clients = ClientFactory.create_batch(rows)
    UserFactory.create_batch(2, role=role("Manager"))
    # user with perms, matching ids, responsible choices
    with django_assert_num_queries(3):
        confirm(admin_client, "responsible", scope="ids", ids=[c.pk for c in clients])
