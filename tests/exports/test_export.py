import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from openpyxl import load_workbook
from openpyxl.utils.escape import unescape

from crm.models import TableSettings
from tests.factories import ClientFactory, DealFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def sheet_rows(response):
    data = b"".join(response.streaming_content)
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [list(r) for r in book.active.iter_rows(values_only=True)]


def sheet_cells(response):
    """The cells themselves (a full load: read-only cells do not carry their style)."""
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    return [list(r) for r in book.active.iter_rows()]


def csv_body(response):
    data = b"".join(response.streaming_content)
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    return data.decode("utf-8-sig")


def csv_rows(response, delimiter):
    return list(csv.reader(io.StringIO(csv_body(response), newline=""), delimiter=delimiter))


def test_export_follows_the_filter_and_the_users_columns(admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "city", "phone"])
    ClientFactory(name="Казань 1", city="Казань", phone="+79161234567")
    ClientFactory(name="Москва 1", city="Москва")
    response = admin_client.get(reverse("clients:export"), {"city": "казань"})
    assert response["Content-Disposition"].startswith('attachment; filename="clients_')
    rows = sheet_rows(response)
    assert rows[0] == ["Full name", "City", "Phone"]
    assert rows[1:] == [["Казань 1", "Казань", "+7 916 123-45-67"]]


def test_a_phone_stays_exact_text_with_excels_quote_prefix(admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "phone"])
    ClientFactory(name="Иван", phone="+79161234567")
    name, phone = sheet_cells(admin_client.get(reverse("clients:export")))[1]
    assert (phone.value, phone.data_type, phone.quotePrefix) == ("+7 916 123-45-67", "s", True)
    assert (name.value, name.data_type, name.quotePrefix) == ("Иван", "s", False)


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_like_cells_are_text_never_formulas(evil, admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "company"])
    ClientFactory(name="Evil", company=evil)
    name, company = sheet_cells(admin_client.get(reverse("clients:export")))[1]
    assert name.value == "Evil"
    # The exact text, no apostrophe. A carriage return is stored escaped as the format wants it
    # ("_x000D_", which Excel and LibreOffice read back as the character; openpyxl leaves it as is).
    assert unescape(company.value) == evil
    assert company.data_type == "s" and company.quotePrefix is True


def test_text_that_looks_like_an_error_code_stays_text(admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "company"])
    ClientFactory(name="Err", company="#N/A")
    company = sheet_cells(admin_client.get(reverse("clients:export")))[1][1]
    assert (company.value, company.data_type, company.quotePrefix) == ("#N/A", "s", False)


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
    cells = sheet_cells(admin_client.get(reverse("deals:export", args=[funnel.pk])))
    assert [c.value for c in cells[0][:3]] == ["ID", "Name", "Client"]
    name, budget = cells[1][1], cells[1][5]
    assert (name.value, name.data_type, name.quotePrefix) == ("=cmd|' /C calc'!A0", "s", True)
    assert (budget.value, budget.data_type) == (1500, "n")  # numbers stay numbers


@pytest.mark.parametrize("count", [3, 300])
def test_export_query_count_is_flat(count, admin_client, django_assert_num_queries):
    ClientFactory.create_batch(count)
    # user with perms, custom fields, table settings, the capped count, users' names, the
    # cursor's plan (SET … RESET around) and the rows with their tags: no query per row or chunk.
    with django_assert_num_queries(8):
        response = admin_client.get(reverse("clients:export"))
        assert len(sheet_rows(response)) == count + 1


# CSV: the same rows; Excel's list separator for the user's language; OWASP's apostrophe before formula-like text.


@pytest.mark.parametrize("language,delimiter", [("ru", ";"), ("en", ",")])
def test_csv_export_separator_follows_the_users_language(language, delimiter, client, admin):
    admin.language = language
    admin.save(update_fields=["language"])
    client.force_login(admin)
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "city", "phone", "company"])
    ClientFactory(name="Пётр Ёлкин, мл.", city="Казань", phone="+79161234567", company="=cmd|' /C calc'!A0")
    response = client.get(reverse("clients:export"), {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="clients_')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = csv_rows(response, delimiter)
    assert len(rows[0]) == 4
    assert rows[1] == ["Пётр Ёлкин, мл.", "Казань", "'+7 916 123-45-67", "'=cmd|' /C calc'!A0"]


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_csv_formula_like_cells_get_an_apostrophe(evil, admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "company"])
    ClientFactory(name="Evil", company=evil)
    rows = csv_rows(admin_client.get(reverse("clients:export"), {"format": "csv"}), ",")  # the admin reads English
    assert rows[1] == ["Evil", "'" + evil]


def test_csv_export_needs_the_permission_and_respects_visibility(client, admin, nobody):
    from django.contrib.auth.models import Group, Permission

    from crm.models import Role

    viewer = Role.objects.create(group=Group.objects.create(name="Viewer"), visibility="all")
    viewer.group.permissions.add(Permission.objects.get(codename="view_client"))
    ClientFactory(name="Not mine", responsible=admin)
    for refused in (UserFactory(role=viewer), nobody):
        client.force_login(refused)
        assert client.get(reverse("clients:export"), {"format": "csv"}).status_code == 403
    exporter = UserFactory(role=role("Manager"))  # own visibility
    ClientFactory(name="Mine", responsible=exporter)
    client.force_login(exporter)
    rows = csv_rows(client.get(reverse("clients:export"), {"format": "csv"}), ",")
    assert [r[0] for r in rows[1:]] == ["Mine"]


def test_deals_csv_export_needs_the_permission(client, admin):
    from deals.models import Funnel

    funnel = Funnel.objects.get(name="Sales")
    viewer = UserFactory(role=role("Manager"))
    viewer.role.group.permissions.remove(*viewer.role.group.permissions.filter(codename="export_clients"))
    client.force_login(viewer)
    assert client.get(reverse("deals:export", args=[funnel.pk]), {"format": "csv"}).status_code == 403


@pytest.mark.parametrize("language,delimiter,budget,channel", [("ru", ";", "1500,50", "Сайт"),
                                                                ("en", ",", "1500.50", "Website")])
def test_deals_csv_export(language, delimiter, budget, channel, client, admin):
    """Labels and local times come in the user's language and zone, though the body is read after the view."""
    from deals.models import Funnel

    admin.language, admin.time_zone = language, "Asia/Vladivostok"
    admin.save(update_fields=["language", "time_zone"])
    client.force_login(admin)
    deal = DealFactory(name="=cmd", budget="1500.50", channel="website", responsible=admin)
    funnel = Funnel.objects.get(name="Sales")
    response = client.get(reverse("deals:export", args=[funnel.pk]), {"format": "csv"})
    assert response["Content-Disposition"] == f'attachment; filename="deals_{funnel.pk}.csv"'
    rows = csv_rows(response, delimiter)
    assert rows[1][:3] == [str(deal.pk), "'=cmd", deal.client.name]
    assert rows[1][5] == budget and rows[1][7] == channel
    local = deal.created_at.astimezone(ZoneInfo("Asia/Vladivostok")).replace(microsecond=0, tzinfo=None)
    assert datetime.fromisoformat(rows[1][11]) == local


@pytest.mark.parametrize("count", [3, 300])
def test_csv_export_query_count_is_flat(count, admin_client, django_assert_num_queries):
    ClientFactory.create_batch(count)
    with django_assert_num_queries(8):  # as many as the .xlsx, whatever the size
        response = admin_client.get(reverse("clients:export"), {"format": "csv"})
        assert len(csv_rows(response, ",")) == count + 1


@pytest.mark.parametrize("count", [3, 60])
def test_deals_csv_export_query_count_is_flat(count, admin_client, django_assert_num_queries):
    from deals.models import Funnel

    DealFactory.create_batch(count)
    funnel = Funnel.objects.get(name="Sales")
    # user with perms, the frame (funnels, lines, the line's stages: one round trip), the funnel's
    # stages, the capped count, rows (SET … RESET around)
    with django_assert_num_queries(7):
        response = admin_client.get(reverse("deals:export", args=[funnel.pk]), {"format": "csv"})
        assert len(csv_rows(response, ",")) == count + 1


def test_control_characters_openpyxl_refuses_are_dropped(admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "company"])
    ClientFactory(name="Ctl", company="A\x01B\x1fC")
    assert sheet_rows(admin_client.get(reverse("clients:export")))[1] == ["Ctl", "ABC"]
