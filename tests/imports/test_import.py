import io
import re
import zipfile
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from clients import import_services
from clients.models import Client, ImportJob, ImportRecord
from crm.models import Activity
from tests.factories import ClientFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db


def xlsx(rows, sheets=None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Клиенты"
    for row in rows:
        sheet.append(row)
    for name in sheets or []:
        book.create_sheet(name)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data, name="clients.xlsx"):
    return client.post(reverse("clients:import"), {"file": SimpleUploadedFile(name, data)})


RUSSIAN = [
    ["ФИО", "Телефон", "Email", "Город", "Дата регистрации", "Уровень"],
    ["Иванов Иван", "8 916 111-22-33", "ivan@example.com", "Тула", "2024-03-01", 5],
    ["", "8 916 111-22-44", "empty@example.com", "Тула", "2024-03-01", 1],
    ["Петров Пётр", "8 916 111-22-55", "petr@example.com", "Казань", "01.03.2024", 2],
    ["Сидорова Анна", "8 916 111-22-66", "anna@example.com", "Омск", date(2024, 2, 29), "много"],
    ["Очень длинное имя клиента больше тридцати", "8 916 111-22-77", "long@example.com", "Уфа", "2024-01-01", 3],
]


def selected_fields(page) -> list[str]:
    """The field chosen for each column of the mapping step."""
    chosen = []
    for block in re.findall(r'<select id="col-\d+" name="col_\d+">(.*?)</select>', page, re.S):
        match = re.search(r'<option value="([^"]*)" selected>', block)
        chosen.append(match.group(1) if match else "")
    return chosen


def run_wizard(client, data, duplicates="skip"):
    response = upload(client, data)
    job = ImportJob.objects.latest("created_at")
    assert response["Location"] == reverse("clients:import-map", args=[job.pk])
    page = client.get(reverse("clients:import-map", args=[job.pk])).content.decode()
    post = {"duplicates": duplicates}
    for index, key in enumerate(selected_fields(page)):
        post[f"col_{index}"] = key
    return job, page, post


def test_the_wizard_guesses_russian_headers_previews_errors_runs_and_reports(admin_client, admin):
    level = CustomFieldFactory(label="Уровень", kind="number")
    job, page, post = run_wizard(admin_client, xlsx(RUSSIAN))
    assert selected_fields(page) == ["name", "phone", "email", "city", "registration_date", level.key]
    admin_client.post(reverse("clients:import-map", args=[job.pk]), post)
    preview = admin_client.get(reverse("clients:import-preview", args=[job.pk])).content.decode()
    assert "Full name: the cell is empty." in preview and "dates only as YYYY-MM-DD." in preview
    assert "only numbers." in preview and "at most 30 characters." in preview
    admin_client.post(reverse("clients:import-preview", args=[job.pk]))
    job = import_services.import_run(job_id=job.pk)  # what the worker does
    assert (job.status, job.created, job.failed, job.total) == ("done", 1, 4, 5)
    ivan = Client.objects.get(name="Иванов Иван")
    assert (ivan.phone, ivan.city, ivan.registration_date, ivan.custom) == ("+79161112233", "Тула", date(2024, 3, 1), {level.key: 5})
    assert Activity.objects.filter(client=ivan, kind="created").exists()
    # the report, one line per row with the reason
    report = admin_client.get(reverse("clients:import-report", args=[job.pk]))
    rows = list(load_workbook(io.BytesIO(b"".join(report.streaming_content))).active.iter_rows(values_only=True))
    assert rows[0] == ("Row", "Outcome", "Reason", "Client ID")
    assert rows[1][:2] == (2, "Created") and rows[2][1] == "Failed" and "empty" in rows[2][2]
    # the mapping is remembered for the same headers
    job2, page2, _post = run_wizard(admin_client, xlsx(RUSSIAN))
    assert selected_fields(page2)[0] == "name"


def test_duplicates_skip_update_create_and_undo(admin_client, admin):
    existing = ClientFactory(name="Старое Имя", phone="+79161112233", phone_digits="79161112233", city="Тула")
    data = xlsx([["ФИО", "Телефон", "Город"], ["Новое Имя", "+7 916 111 22 33", "Москва"], ["Ещё Один", "+7 999 000 00 01", "Сочи"]])
    job, _page, post = run_wizard(admin_client, data, duplicates="skip")
    admin_client.post(reverse("clients:import-map", args=[job.pk]), post)
    job = import_services.import_run(job_id=job.pk)
    assert (job.created, job.skipped, job.updated) == (1, 1, 0)
    data = xlsx([["ФИО", "Телефон", "Город"], ["Новое Имя", "+7 916 111 22 33", "Москва"], ["Третий", "+7 999 000 00 02", "Сочи"]])
    job, _page, post = run_wizard(admin_client, data, duplicates="update")
    admin_client.post(reverse("clients:import-map", args=[job.pk]), post)
    job = import_services.import_run(job_id=job.pk)
    existing.refresh_from_db()
    assert (existing.name, existing.city) == ("Новое Имя", "Москва") and job.updated == 1
    created_again = ImportRecord.objects.get(job=job, outcome="created").client
    admin_client.post(reverse("clients:import-undo", args=[job.pk]))
    existing.refresh_from_db()
    created_again.refresh_from_db()
    assert (existing.name, existing.city) == ("Старое Имя", "Тула")
    assert created_again.deleted_at is not None
    assert Activity.objects.filter(client=existing, kind="restored").exists()


def test_a_run_that_dies_resumes_without_doubles_or_losses(admin, settings):
    import_services.CHUNK = 3
    try:
        rows = [["ФИО", "Телефон"]] + [[f"Клиент {i}", f"+7 916 000 {i:04d}"] for i in range(10)]
        job = import_services.import_upload(actor=admin, uploaded=SimpleUploadedFile("x.xlsx", xlsx(rows)))
        import_services.import_set_mapping(actor=admin, job=job, mapping={"0": "name", "1": "phone"}, duplicates="create",
                                           headers=["ФИО", "Телефон"])
        with pytest.raises(RuntimeError):
            import_services.import_run(job_id=job.pk, stop_after_chunks=2)  # the worker dies after 6 rows
        assert Client.objects.count() == 6
        job = import_services.import_run(job_id=job.pk)
        assert Client.objects.count() == 10 and job.created == 10 and job.processed == 10
        assert sorted(Client.objects.values_list("name", flat=True)) == sorted(f"Клиент {i}" for i in range(10))
    finally:
        import_services.CHUNK = 2000


def _zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def _with_part(name: str, data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(xlsx(RUSSIAN)))
    parts = {n: source.read(n) for n in source.namelist()}
    parts[name] = data
    return _zip(parts)


def _million_rows() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(xlsx(RUSSIAN)))
    parts = {n: source.read(n) for n in source.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    parts["xl/worksheets/sheet1.xml"] = re.sub(r'<dimension ref="[^"]+"', '<dimension ref="A1:F1048576"', sheet).encode()
    return _zip(parts)


@pytest.mark.parametrize("name,data,message", [
    ("notes.xlsx", b"just text, not a workbook", "not an Excel .xlsx file"),
    ("renamed.xlsx", _zip({"hello.txt": b"hi"}), "not an Excel .xlsx file"),
    ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "encrypted workbook or an old .xls"),
    ("macro.xlsm", _with_part("xl/vbaProject.bin", b"\0" * 10), "macros are not accepted"),
    ("bomb.xlsx", _with_part("xl/media/bomb.bin", b"\0" * 50_000_000), "zip bomb"),
    ("xxe.xlsx", _with_part("xl/sharedStrings.xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><sst/>'),
     "XML entity declarations"),
])
def test_hostile_files_are_refused_with_a_clear_message(name, data, message, admin_client):
    response = upload(admin_client, data, name)
    assert response.status_code == 200 and message in response.content.decode()
    assert not ImportJob.objects.exists() and not Client.objects.exists()


def test_a_sheet_declaring_a_million_rows_is_refused(admin_client):
    response = upload(admin_client, _million_rows())
    job = ImportJob.objects.get()
    page = admin_client.get(reverse("clients:import-map", args=[job.pk])).content.decode()
    assert "1048576 rows" in page and not Client.objects.exists()
    assert response.status_code == 302


def test_oversized_file_and_very_long_cells(admin_client, settings):
    from clients import imports

    big = upload(admin_client, b"PK\x03\x04" + b"\0" * (imports.MAX_BYTES + 1))
    assert "larger than 10 MB" in big.content.decode()
    job, _page, post = run_wizard(admin_client, xlsx([["ФИО", "Город"], ["Имя", "x" * 20_000], ["Норм", "Тула"]]))
    admin_client.post(reverse("clients:import-map", args=[job.pk]), post)
    job = import_services.import_run(job_id=job.pk)
    assert (job.created, job.failed) == (1, 1)
    assert "too long" in ImportRecord.objects.get(job=job, outcome="failed").reason


def test_import_needs_the_permission(manager_client):
    assert manager_client.get(reverse("clients:import")).status_code == 403
    assert upload(manager_client, xlsx(RUSSIAN)).status_code == 403 and not ImportJob.objects.exists()


def test_the_same_phone_twice_in_one_file_makes_one_client(admin):
    rows = [["ФИО", "Телефон", "Город"], ["Первый", "+7 916 555 00 01", "Тула"], ["Второй", "+7 916 555 00 01", "Омск"]]
    job = import_services.import_upload(actor=admin, uploaded=SimpleUploadedFile("d.xlsx", xlsx(rows)))
    import_services.import_set_mapping(actor=admin, job=job, mapping={"0": "name", "1": "phone", "2": "city"},
                                       duplicates="update", headers=rows[0])
    job = import_services.import_run(job_id=job.pk)
    assert Client.objects.count() == 1 and (job.created, job.updated) == (1, 1)
    assert Client.objects.get().city == "Омск"


def test_import_never_touches_clients_the_importer_cannot_see(client, admin):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory, role

    importer_role = role("Manager")
    importer_role.group.permissions.add(Permission.objects.get(codename="import_clients"))
    importer = UserFactory(role=importer_role)
    hidden = ClientFactory(name="Чужой", phone="+79161112233", phone_digits="79161112233", responsible=admin)
    rows = [["ФИО", "Телефон"], ["Hacked", "+7 916 111 22 33"]]
    job = import_services.import_upload(actor=importer, uploaded=SimpleUploadedFile("h.xlsx", xlsx(rows)))
    import_services.import_set_mapping(actor=importer, job=job, mapping={"0": "name", "1": "phone"}, duplicates="update",
                                       headers=rows[0])
    job = import_services.import_run(job_id=job.pk)
    hidden.refresh_from_db()
    assert hidden.name == "Чужой" and job.updated == 0 and job.created == 1


def test_undo_after_two_updates_of_one_client_restores_the_original(admin):
    original = ClientFactory(name="Orig", city="Tula", phone="+79165550001", phone_digits="79165550001")
    rows = [["ФИО", "Телефон", "Город"], ["A", "+7 916 555 00 01", "X"], ["B", "+7 916 555 00 01", "Y"]]
    job = import_services.import_upload(actor=admin, uploaded=SimpleUploadedFile("u.xlsx", xlsx(rows)))
    import_services.import_set_mapping(actor=admin, job=job, mapping={"0": "name", "1": "phone", "2": "city"},
                                       duplicates="update", headers=rows[0])
    job = import_services.import_run(job_id=job.pk)
    original.refresh_from_db()
    assert (original.name, original.city) == ("B", "Y")
    import_services.import_undo(actor=admin, job=job)
    original.refresh_from_db()
    assert (original.name, original.city) == ("Orig", "Tula")


def test_starting_twice_queues_one_run(admin, django_capture_on_commit_callbacks):
    rows = [["ФИО"], ["Один"]]
    job = import_services.import_upload(actor=admin, uploaded=SimpleUploadedFile("o.xlsx", xlsx(rows)))
    with django_capture_on_commit_callbacks() as callbacks:
        import_services.import_start(actor=admin, job=job)
        import_services.import_start(actor=admin, job=job)
    assert len(callbacks) == 1
