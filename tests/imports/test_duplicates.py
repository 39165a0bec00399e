"""Duplicates: by E.164 phone or e-mail (any case), against the database and the rows earlier in
the same file; a row matching two different clients is never applied."""

import pytest

from clients import duplicates
from clients.models import Client, DuplicateSuggestion
from imports.models import ImportRecord
from tests.factories import ClientFactory, UserFactory, role

from .conftest import service_import
from .files import plain_xlsx

pytestmark = pytest.mark.django_db
HEADER = ["ФИО", "Телефон", "Email", "Город"]
MAPPING = {0: "name", 1: "phone", 2: "email", 3: "city"}


def reasons(job) -> dict[int, tuple[str, str]]:
    return {r.row: (r.outcome, r.reason) for r in ImportRecord.objects.filter(job=job)}


def test_a_row_matching_two_clients_is_never_applied_in_update_mode(admin):
    a = ClientFactory(name="Клиент А", phone="+79161110001", email="a@example.com", city="Тула")
    b = ClientFactory(name="Клиент Б", phone="+79162220002", email="b@example.com", city="Омск")
    data = plain_xlsx([HEADER, ["Кто-то", "8 916 111-00-01", "B@Example.com", "Сочи"]])
    job = service_import(admin, data, MAPPING, duplicates="update")
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.name, a.email, a.city) == ("Клиент А", "a@example.com", "Тула")
    assert (b.name, b.email, b.city) == ("Клиент Б", "b@example.com", "Омск")
    outcome, reason = reasons(job)[2]
    assert outcome == "failed" and f"#{a.pk} “Клиент А”" in reason and f"#{b.pk} “Клиент Б”" in reason
    assert "nothing changed" in reason and job.updated == 0


def test_skip_names_the_client_and_the_earlier_row_of_the_file(admin):
    existing = ClientFactory(name="Уже есть", phone="+79163330003", email="")
    data = plain_xlsx([
        HEADER,
        ["Дубль из базы", "+7 (916) 333-00-03", None, "Тула"],
        ["Новый", "8 916 444-00-04", "new@example.com", "Омск"],
        ["Новый ещё раз", "+7 916 999-99-99", "NEW@example.com ", "Уфа"],  # same e-mail, other case and a space
        ["И снова", "79164440004", None, "Уфа"],  # same phone as row 3, another format
    ])
    job = service_import(admin, data, MAPPING)
    got = reasons(job)
    assert (job.created, job.skipped) == (1, 3)
    assert got[2] == ("skipped", f"Already there: client #{existing.pk} “Уже есть”.")
    new = Client.objects.get(name="Новый")
    assert got[4] == ("skipped", f"Already there: client #{new.pk} “Новый” (row 3 of this file).")
    assert got[5][1].endswith("(row 3 of this file).")
    assert ImportRecord.objects.get(job=job, row=2).client == existing  # the report points at the client


def test_the_reasons_quote_names_as_the_importers_language_does(admin):
    """English quotes names with “…”, Russian with «…», in the reasons the report keeps."""
    existing = ClientFactory(name="Уже есть", phone="+79163330003", email="")
    admin.language = "ru"
    admin.save(update_fields=["language"])
    data = plain_xlsx([HEADER, ["Дубль", "+7 (916) 333-00-03", None, "Тула"], ["Анна", "", "не почта", ""]])
    job = service_import(admin, data, MAPPING)
    got = reasons(job)
    assert got[2] == ("skipped", f"Уже есть: клиент #{existing.pk} «Уже есть».")
    assert "«не почта» — не адрес электронной почты." in got[3][1]


def test_update_merges_later_rows_into_the_earlier_ones_without_blanking(admin):
    data = plain_xlsx([
        HEADER,
        ["Анна Смирнова", "8 916 555-00-05", None, "Тула"],
        ["Смирнова Анна", "+7 916 555 00 05", "anna@example.com", None],
    ])
    job = service_import(admin, data, MAPPING, duplicates="update")
    client = Client.objects.get()
    assert (client.name, client.email, client.city, client.phone) == ("Смирнова Анна", "anna@example.com", "Тула", "+79165550005")
    assert (job.created, job.updated) == (1, 1)
    assert reasons(job)[3] == ("updated", "The same client as row 2.")


def test_in_file_duplicates_are_found_across_chunks(admin, settings):
    settings.IMPORT_CHUNK_ROWS = 2
    rows = [HEADER] + [[f"Клиент {i}", f"+7 916 600 00 {i:02d}", None, "Тула"] for i in range(5)]
    rows += [["Повтор 0", "8 916 600-00-00", None, "Омск"], ["Повтор 4", "8 916 600-00-04", None, "Омск"]]
    job = service_import(admin, plain_xlsx(rows), MAPPING, duplicates="update")
    assert Client.objects.count() == 5 and (job.created, job.updated) == (5, 2)
    assert Client.objects.get(phone="+79166000000").city == "Омск"


def test_in_file_duplicates_of_rows_assigned_to_someone_else_are_still_found(client):
    """An importer with own visibility hands rows to a colleague: the second row for the same person
    still finds the first, though the importer cannot see that client."""
    from django.contrib.auth.models import Permission

    importer_role = role("Manager")
    for code in ("import_clients", "change_responsible"):
        importer_role.group.permissions.add(Permission.objects.get(codename=code))
    importer = UserFactory(role=importer_role)
    UserFactory(username="kate")
    data = plain_xlsx([["ФИО", "Телефон", "Ответственный"], ["Анна", "8 916 700-00-07", "kate"], ["Анна", "+79167000007", "kate"]])
    job = service_import(importer, data, {0: "name", 1: "phone", 2: "responsible"}, duplicates="skip", name="m.xlsx")
    assert Client.objects.count() == 1 and (job.created, job.skipped) == (1, 1)


def test_create_mode_makes_a_new_client_and_suggests_the_pair(admin):
    existing = ClientFactory(name="Старый", phone="+79168880008")
    data = plain_xlsx([HEADER, ["Новый", "8 916 888-00-08", None, None], ["Новый 2", "8 916 888-00-08", None, None]])
    job = service_import(admin, data, MAPPING, duplicates="create")
    assert Client.objects.count() == 3 and job.created == 2
    duplicates.suggest_for_import(job.pk)  # what the worker does once the import is done
    pairs = {(s.client.name, s.other.name) for s in DuplicateSuggestion.objects.select_related("client", "other")}
    assert ("Новый", "Старый") in pairs and ("Новый 2", "Старый") in pairs and ("Новый 2", "Новый") in pairs
    assert f"Possible duplicate of #{existing.pk} “Старый”" in reasons(job)[2][1]


def test_import_never_touches_clients_the_importer_cannot_see(admin):
    from django.contrib.auth.models import Permission

    importer_role = role("Manager")
    importer_role.group.permissions.add(Permission.objects.get(codename="import_clients"))
    importer = UserFactory(role=importer_role)
    hidden = ClientFactory(name="Чужой", phone="+79161112233", responsible=admin)
    job = service_import(importer, plain_xlsx([["ФИО", "Телефон"], ["Hacked", "+7 916 111 22 33"]]), {0: "name", 1: "phone"},
                         duplicates="update")
    hidden.refresh_from_db()
    assert hidden.name == "Чужой" and job.updated == 0 and job.created == 1
