import io

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import expect

from clients.models import Client
from crm.models import Activity
from tests.factories import ClientFactory, UserFactory, role

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def boss(transactional_db):
    return UserFactory(username="boss", language="en", role=role("Admin"))


def russian_file(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["ФИО", "Телефон", "Email", "Город"])
    sheet.append(["Смирнова Ольга", "+7 916 700-00-01", "olga@example.com", "Тверь"])
    sheet.append(["Кузнецов Павел", "+7 916 700-00-02", "pavel@example.com", "Самара"])
    sheet.append(["", "+7 916 700-00-03", "nobody@example.com", "Пермь"])  # the bad row
    path = tmp_path / "клиенты.xlsx"
    book.save(path)
    return path


def count(page, outcome):
    """The number next to an outcome on the finished import's card."""
    return page.locator(".import-counts dt", has_text=outcome).locator("xpath=following-sibling::dd[1]")


def test_import_a_russian_file_through_the_wizard_then_undo(new_page, boss, celery_worker, tmp_path):
    page = new_page(boss)
    page.get_by_role("link", name="Import").click()
    shot(page, "16-import-upload")
    page.get_by_label("File").set_input_files(str(russian_file(tmp_path)))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_label("Field for ФИО")).to_have_value("name")  # guessed from the Russian header
    expect(page.get_by_label("Field for Телефон")).to_have_value("phone")
    shot(page, "17-import-columns")
    page.get_by_role("button", name="Next").click()
    bad_row = page.locator("table.grid tbody tr", has_text="nobody@example.com")
    expect(bad_row).to_contain_text("ФИО: the full name is required.")  # the column as the file names it
    expect(bad_row).to_have_class("outcome-failed")
    expect(bad_row.locator("td.outcome")).to_have_text("Failed")
    expect(page.locator("table.grid tbody tr", has_text="olga@example.com").locator("td.outcome")).to_have_text("Created")
    shot(page, "18-import-preview")
    page.get_by_role("button", name="Run the import").click()
    expect(page.locator("#import-progress")).to_contain_text("Done", timeout=20_000)  # the worker finished
    expect(page.locator("#import-progress progress")).to_have_attribute("value", "3")
    expect(count(page, "Created")).to_have_text("2")
    expect(count(page, "Failed")).to_have_text("1")
    shot(page, "19-import-report")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report").click()
    report = load_workbook(io.BytesIO(open(download.value.path(), "rb").read())).active
    rows = list(report.iter_rows(values_only=True))
    assert rows[0] == ("Row", "Outcome", "Column", "Reason", "Client ID", "ФИО", "Телефон", "Email", "Город")
    assert rows[1][:5] == (2, "Created", None, None, Client.objects.get(name="Смирнова Ольга").pk)
    assert rows[3][:5] == (4, "Failed", "ФИО", "ФИО: the full name is required.", None)
    assert rows[3][6:] == ("+7 916 700-00-03", "nobody@example.com", "Пермь")  # the failed row's cells, to fix and re-import
    assert sorted(Client.objects.values_list("name", flat=True)) == ["Кузнецов Павел", "Смирнова Ольга"]
    expect(page.locator(".import-problems tbody tr td")).to_have_text(["4", "Failed", "ФИО: the full name is required."])
    page.get_by_text("Undo the import…").click()  # a second step says what undoing does
    expect(page.locator(".undo-import form")).to_contain_text("The 2 clients this import created are deleted")
    page.get_by_role("button", name="Yes, undo the import").click()
    expect(page.get_by_text("The import was undone.")).to_be_visible()
    assert Client.objects.alive().count() == 0 and Client.objects.count() == 2


def test_export_the_filtered_table_and_open_the_file(new_page, boss):
    ClientFactory(name="Тверской", city="Тверь", responsible=boss)
    ClientFactory(name="Самарский", city="Самара", responsible=boss)
    page = new_page(boss)
    page.get_by_placeholder("Filter and search: name or phone").fill("Твер")
    expect(page.locator("#clients-table tbody tr")).to_have_count(1)
    page.reload()  # the URL keeps the search; the export link follows it
    with page.expect_download() as download:
        page.get_by_role("link", name="Export to Excel").click()
    rows = list(load_workbook(io.BytesIO(open(download.value.path(), "rb").read())).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["Тверской"]


def test_send_an_email_to_three_ticked_clients(new_page, boss, smtp_server, worker_queue):
    from tests.conftest import start_worker, stop_worker, wait_for

    for i in range(3):
        ClientFactory(name=f"Получатель {i}", email=f"to{i}@example.com", responsible=boss)
    ClientFactory(name="Не отмечен", email="not@example.com", responsible=boss)
    env = {"MAILER_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_server.port)}
    worker = start_worker(worker_queue, env)
    try:
        page = new_page(boss)
        rows = page.locator("#clients-table tbody tr", has_text="Получатель")
        for i in range(3):
            rows.nth(i).locator("input[name=ids]").check()
        page.get_by_role("button", name="Send email").click()
        dialog = page.locator("dialog#modal")
        expect(dialog.get_by_text("To 3 clients")).to_be_visible()
        dialog.get_by_label("Subject").fill("Новая акция")
        dialog.get_by_label("Message").fill("Скидка 15% до конца месяца")
        dialog.get_by_label("Action type").fill("Рассылка")
        dialog.get_by_role("button", name="Send").click()
        expect(dialog.locator("#send-progress")).to_contain_text("Done", timeout=20_000)
        assert wait_for(lambda: len(smtp_server.messages) == 3)
    finally:
        stop_worker(worker)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["to0@example.com", "to1@example.com", "to2@example.com"]
    first = Client.objects.get(name="Получатель 0")
    page.goto(f"{page.base}/clients/{first.pk}/")
    expect(page.locator("#feed")).to_contain_text("Новая акция")
    expect(page.locator("#feed")).to_contain_text("Рассылка")
    assert Activity.objects.filter(kind="message").count() == 3
