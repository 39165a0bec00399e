import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from crm.models import TableSettings
from tests.factories import ClientFactory, DealFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def sheet_rows(response):
    data = b"".join(response.streaming_content)
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [list(r) for r in book.active.iter_rows(values_only=True)]


def test_export_follows_the_filter_and_the_users_columns(admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "city", "phone"])
    ClientFactory(name="Казань 1", city="Казань", phone="+79161234567")
    ClientFactory(name="Москва 1", city="Москва")
    response = admin_client.get(reverse("clients:export"), {"city": "казань"})
    assert response["Content-Disposition"].startswith('attachment; filename="clients_')
    rows = sheet_rows(response)
    assert rows[0] == ["Full name", "City", "Phone"]
    assert rows[1:] == [["Казань 1", "Казань", "'+7 916 123-45-67"]]


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_like_cells_are_neutralised(evil, admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "company"])
    ClientFactory(name="Evil", company=evil)
    rows = sheet_rows(admin_client.get(reverse("clients:export")))
    # (a stored CR comes back from the xlsx XML as LF: what matters is the leading quote)
    assert rows[1][0] == "Evil" and rows[1][1].startswith("'") and rows[1][1][1:].strip() == evil.strip()


def test_export_needs_the_permission_and_respects_visibility(client, admin):
    from django.contrib.auth.models import Group, Permission

    from crm.models import Role

    viewer = Role.objects.create(group=Group.objects.create(name="Viewer"), visibility="all")
    viewer.group.permissions.add(Permission.objects.get(codename="view_client"))
    user = UserFactory(role=viewer)
    client.force_login(user)
    assert client.get(reverse("clients:export")).status_code == 403
    exporter = UserFactory(role=role("Manager"))  # own visibility
    ClientFactory(name="Mine", responsible=exporter)
    ClientFactory(name="Not mine", responsible=admin)
    client.force_login(exporter)
    names = [r[0] for r in sheet_rows(client.get(reverse("clients:export")))[1:]]
    assert names == ["Mine"]


def test_deals_export(admin_client):
    DealFactory(name="=cmd|' /C calc'!A0", budget=1500)
    from deals.models import Funnel

    funnel = Funnel.objects.get(name="Sales")
    rows = sheet_rows(admin_client.get(reverse("deals:export", args=[funnel.pk])))
    assert rows[0][:3] == ["ID", "Name", "Client"]
    assert rows[1][1] == "'=cmd|' /C calc'!A0" and rows[1][5] == 1500


@pytest.mark.parametrize("count", [3, 300])
def test_export_query_count_is_flat(count, admin_client, django_assert_num_queries):
    ClientFactory.create_batch(count)
    with django_assert_num_queries(7):  # session, user, perms, custom fields, table settings, layout? rows, tags
        response = admin_client.get(reverse("clients:export"))
        assert len(sheet_rows(response)) == count + 1
