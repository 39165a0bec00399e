"""Exports and documents above their inline limits run as jobs (issue 12, points 2 and 4): the
request answers with the job, the worker writes the file as the user would have had it (filter,
columns, hidden fields, language), the owner is notified with the link, nobody else sees it."""

import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from clients.models import CardField, DocumentTemplate
from crm import jobs
from crm.models import Job, Notification, TableSettings
from tests.conftest import HX
from tests.factories import ClientFactory, DealFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_limit(settings, tmp_path):
    settings.EXPORT_INLINE_MAX_ROWS = 3
    settings.MEDIA_ROOT = tmp_path
    return 3


def hide_for_managers(key: str) -> None:
    from django.apps import apps

    from clients.layout import ensure_default_layout

    ensure_default_layout(apps)
    CardField.objects.filter(block="contact", system_key=key).update(manager_visible=False, manager_editable=False)


def result_rows(job: Job) -> list[list]:
    with job.result.open("rb") as handle:
        book = load_workbook(io.BytesIO(handle.read()))
    return [[c.value for c in row] for row in book.active.iter_rows()]


def result_cells(job: Job) -> list[list]:
    with job.result.open("rb") as handle:
        book = load_workbook(io.BytesIO(handle.read()))
    return [list(row) for row in book.active.iter_rows()]


def the_job() -> Job:
    return Job.objects.get()


def test_up_to_the_limit_the_file_comes_in_the_response(small_limit, admin_client):
    ClientFactory.create_batch(3)
    response = admin_client.get(reverse("clients:export"))
    assert response["Content-Disposition"].startswith('attachment; filename="clients_')
    assert not Job.objects.exists()


def test_above_the_limit_the_export_is_a_job_with_exactly_the_filtered_rows(small_limit, client, manager, other_manager):
    hide_for_managers("company")
    manager.language = "ru"
    manager.save(update_fields=["language"])
    TableSettings.objects.create(user=manager, table="clients", columns=["name", "phone", "company", "city"])
    wanted = {f"Казанец {n}" for n in range(5)}
    for name in sorted(wanted):
        ClientFactory(name=name, city="Казань", company="ООО Тайна", responsible=manager, phone="+79161234567")
    ClientFactory(name="Москвич", city="Москва", responsible=manager)  # filtered out
    ClientFactory(name="Чужой казанец", city="Казань", responsible=other_manager)  # not visible to the manager
    client.force_login(manager)

    response = client.get(reverse("clients:export"), {"city": "казань"})
    job = the_job()
    assert response.status_code == 302 and response["Location"] == reverse("crm:job", args=[job.pk])
    assert (job.kind, job.owner, job.state) == (Job.Kind.EXPORT, manager, Job.State.QUEUED)

    done = jobs.run(job.pk)  # what the worker runs
    assert done.state == Job.State.DONE and done.total == 5 and done.result_name.endswith(".xlsx")
    rows = result_rows(done)
    assert rows[0] == ["ФИО", "Телефон", "Город"]  # the user's columns in their language, the hidden one left out
    assert {r[0] for r in rows[1:]} == wanted and len(rows) == 6
    assert all(r[1:] == ["+7 916 123-45-67", "Казань"] for r in rows[1:])
    assert "ООО Тайна" not in str(rows)

    # The owner is told, in their language, with the link to the job (the download is there).
    notification = Notification.objects.get(user=manager, kind=Notification.Kind.JOB)
    assert notification.url == reverse("crm:job", args=[job.pk])
    page = client.get(reverse("crm:notifications")).content.decode()
    assert "Готово: Экспорт (5)" in page and reverse("crm:job", args=[job.pk]) in page
    page = client.get(reverse("crm:job", args=[job.pk])).content.decode()
    assert reverse("crm:job-download", args=[job.pk]) in page
    download = client.get(reverse("crm:job-download", args=[job.pk]))
    assert download.status_code == 200 and done.result_name in download["Content-Disposition"]

    client.force_login(other_manager)
    assert client.get(reverse("crm:job", args=[job.pk])).status_code == 404
    assert client.get(reverse("crm:job-download", args=[job.pk])).status_code == 404
    assert not Notification.objects.filter(user=other_manager).exists()


def test_the_jobs_file_keeps_phones_as_text_and_formulas_neutralised(small_limit, admin_client, admin):
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "phone", "company"])
    for n, evil in enumerate(["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"]):
        ClientFactory(name=f"Evil {n}", company=evil, phone="+79161234567")
    admin_client.get(reverse("clients:export"))
    cells = result_cells(jobs.run(the_job().pk))
    for name, phone, company in cells[1:]:
        assert (phone.value, phone.data_type, phone.quotePrefix) == ("+7 916 123-45-67", "s", True)
        assert company.data_type == "s" and company.quotePrefix is True and company.value[0] in "=+-@"
        assert name.quotePrefix is False


def test_an_htmx_export_answers_with_the_jobs_progress(small_limit, admin_client):
    ClientFactory.create_batch(4)
    page = admin_client.get(reverse("clients:export"), {"format": "csv"}, headers=HX).content.decode()
    job = the_job()
    assert f'id="job-{job.pk}"' in page and 'hx-trigger="every 2s"' in page


def test_a_csv_job_in_russian_has_the_bom_and_semicolons(small_limit, client, admin):
    admin.language = "ru"
    admin.save(update_fields=["language"])
    client.force_login(admin)
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "company"])
    for n in range(4):
        ClientFactory(name=f"Клиент {n}", company="=cmd")
    client.get(reverse("clients:export"), {"format": "csv"})
    done = jobs.run(the_job().pk)
    assert done.result_name.endswith(".csv")
    with done.result.open("rb") as handle:
        data = handle.read()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["ФИО", "Компания"] and len(rows) == 5 and {r[1] for r in rows[1:]} == {"'=cmd"}


def test_tags_of_a_client_filtered_by_one_tag_are_all_exported(small_limit, admin_client, admin):
    """The tags column is an aggregate over a join: the tag filter (EXISTS) must not narrow it."""
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "tags"])
    vip, wholesale = TagFactory(name="VIP"), TagFactory(name="Опт")
    for n in range(4):
        ClientFactory(name=f"Тег {n}", tags=[wholesale, vip])
    ClientFactory(name="Без тегов")
    rows = result_rows_of(admin_client, {"tags": vip.pk})
    assert sorted(rows[1:]) == [[f"Тег {n}", "VIP, Опт"] for n in range(4)]


def result_rows_of(client, params):
    client.get(reverse("clients:export"), params)
    return result_rows(jobs.run(the_job().pk))


def test_every_column_exports(small_limit, admin_client, admin):
    """Rows are read as tuples, not models: every column the table offers must still read."""
    from clients.columns import SYSTEM_COLUMNS
    from tests.factories import CustomFieldFactory

    field = CustomFieldFactory(label="Уровень")
    TableSettings.objects.create(user=admin, table="clients", columns=[c.key for c in SYSTEM_COLUMNS] + [field.column_key])
    tag = TagFactory(name="VIP")
    for n in range(4):
        ClientFactory(name=f"Все {n}", responsible=admin, created_by=admin, modified_by=admin, tags=[tag],
                      custom={field.key: "золото"}, city="Тверь", registration_date="2026-03-14")
    rows = result_rows_of(admin_client, {})
    header, first = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert len(header) == len(SYSTEM_COLUMNS) + 1
    assert first["Responsible"] == first["Created by"] == first["Modified by"] == str(admin)
    assert (first["Tags"], first["City"], first["Уровень"]) == ("VIP", "Тверь", "золото")


def test_a_deals_export_above_the_limit_is_a_job(small_limit, admin_client):
    from deals.models import Funnel

    for n in range(4):
        DealFactory(name=f"Сделка {n}", budget=100 + n)
    funnel = Funnel.objects.get(name="Sales")
    response = admin_client.get(reverse("deals:export", args=[funnel.pk]))
    assert response.status_code == 302
    rows = result_rows(jobs.run(the_job().pk))
    assert rows[0][:3] == ["ID", "Name", "Client"] and sorted(r[1] for r in rows[1:]) == [f"Сделка {n}" for n in range(4)]


def test_a_job_whose_owner_lost_the_export_permission_fails_with_a_message(small_limit, admin_client, admin):
    from django.contrib.auth.models import Permission

    ClientFactory.create_batch(4)
    admin_client.get(reverse("clients:export"))
    admin.role.group.permissions.remove(Permission.objects.get(codename="export_clients"))
    done = jobs.run(the_job().pk)
    assert done.state == Job.State.FAILED and "no longer export" in done.error and not done.result


@pytest.mark.parametrize("count", [4, 40])
def test_the_request_that_starts_a_job_costs_the_same_at_any_size(count, small_limit, admin_client, django_assert_num_queries):
    ClientFactory.create_batch(count)
    # user with perms, custom fields, table settings, the capped count, the job's insert: no row is read
    with django_assert_num_queries(5):
        response = admin_client.get(reverse("clients:export"), headers=HX)
    assert response.status_code == 200 and Job.objects.count() == 1


# Documents: a .zip of filled .docx, in the request up to DOCUMENTS_INLINE_MAX clients, else a job.


def docx_template(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_documents_above_the_limit_are_a_job(small_limit, settings, admin_client, admin, other_manager):
    settings.DOCUMENTS_INLINE_MAX = 2
    admin_client.post(reverse("clients:templates"), {
        "name": "Письмо", "file": SimpleUploadedFile("letter.docx", docx_template("Здравствуйте, {{ name }}")),
    })
    template = DocumentTemplate.objects.get()
    people = [ClientFactory(name=f"Адресат {n}") for n in range(3)]
    ids = [c.pk for c in people]
    form = admin_client.post(reverse("clients:documents"), {"scope": "ids", "ids": ids}, headers=HX).content.decode()
    assert "filled in the background" in form
    response = admin_client.post(reverse("clients:documents"), {"scope": "ids", "ids": ids, "template": template.pk})
    job = the_job()
    assert job.kind == Job.Kind.DOCUMENTS and response["Location"] == reverse("crm:job", args=[job.pk])
    done = jobs.run(job.pk)
    assert done.state == Job.State.DONE and done.total == 3 and done.result_name == "documents_3.zip"
    with done.result.open("rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    assert sorted(archive.namelist()) == sorted(f"{c.pk}_Адресат {n}.docx" for n, c in enumerate(people))
    assert Notification.objects.filter(user=admin, kind=Notification.Kind.JOB, url=job.get_absolute_url()).exists()
    admin_client.force_login(other_manager)
    assert admin_client.get(reverse("crm:job-download", args=[job.pk])).status_code == 404


def test_documents_at_the_limit_come_in_the_response(small_limit, settings, admin_client):
    settings.DOCUMENTS_INLINE_MAX = 2
    admin_client.post(reverse("clients:templates"), {
        "name": "Письмо", "file": SimpleUploadedFile("letter.docx", docx_template("{{ name }}")),
    })
    ids = [ClientFactory().pk for _ in range(2)]
    response = admin_client.post(reverse("clients:documents"), {
        "scope": "ids", "ids": ids, "template": DocumentTemplate.objects.get().pk})
    assert response["Content-Type"] == "application/zip" and not Job.objects.exists()
