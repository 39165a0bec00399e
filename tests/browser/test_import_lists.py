"""Client lists as staff really have them, imported through the wizard in a real browser, with a
real Celery worker; what the user sees afterwards (the counts, the card, the board, the table,
the exported file) is what is checked."""

import io
import os
import re
import signal

import pytest
from django.conf import settings
from openpyxl import load_workbook
from playwright.sync_api import expect

from clients.models import Client, CustomField
from deals.models import Deal
from imports.models import ImportJob
from tests.conftest import start_worker, stop_worker
from tests.factories import ClientFactory, FunnelFactory, UserFactory, role
from tests.imports.files import clean_list, csv_bytes, e164, phone_formats, plain_xlsx, styled_xlsx

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def boss(transactional_db):
    return UserFactory(username="boss", first_name="Big", last_name="Boss", language="en", role=role("Admin"))


def upload(page, name: str, data: bytes, mime: str = XLSX) -> None:
    """From the clients table: Import → choose the file → Upload; lands on the columns step."""
    page.goto(page.base + "/clients/")
    page.get_by_role("link", name="Import").click()
    page.get_by_label("File").set_input_files({"name": name, "mimeType": mime, "buffer": data})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".wizard-steps [aria-current=step]")).to_have_text("Columns")


def to_preview(page) -> None:
    """Columns → Next; waits until the preview is on screen (the mapping is saved by then)."""
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".wizard-steps [aria-current=step]")).to_have_text("Preview")


def run_from_preview(page, *, timeout=30_000) -> None:
    page.get_by_role("button", name="Run the import").click()
    expect(page.locator("#import-progress .import-status")).to_have_text("Done", timeout=timeout)


def count(page, outcome: str):
    """The number next to an outcome on the finished import's card."""
    return page.locator(".import-counts dt", has_text=outcome).locator("xpath=following-sibling::dd[1]")


def open_card_from_table(page, search: str, name: str) -> None:
    """Search the clients table, then open the client's card from its row, as a user does."""
    page.goto(page.base + "/clients/")
    page.get_by_placeholder("Filter and search: name or phone").fill(search)
    rows = page.locator("#clients-table tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def card_value(page, label: str):
    """The value next to a label in the card's contact block."""
    title = page.locator("#block-contact dt").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return title.locator("xpath=following-sibling::dd[1]")


# a. A 200-row styled list with empty cells and a Source column --------------------------------


def test_a_styled_200_row_list_imports_fully_and_the_card_shows_its_source(new_page, boss, celery_worker):
    header, body = clean_list(200)
    page = new_page(boss)
    upload(page, "Клиенты 2024.xlsx", styled_xlsx(header, body))
    expected = {"ФИО": "name", "Телефон": "phone", "E-mail": "email", "Компания": "company", "Город": "city",
                "Источник": "source", "Теги": "tags", "Дата регистрации": "registration_date"}
    for column, field in expected.items():  # every column guessed from its Russian header
        expect(page.get_by_label(f"Field for {column}")).to_have_value(field)
    shot(page, "20-import-styled-columns")
    to_preview(page)
    preview = page.locator("table.grid tbody tr")
    expect(preview).to_have_count(10)
    expect(page.locator("table.grid tbody tr.overdue")).to_have_count(0)  # empty optional cells are no problem
    shot(page, "21-import-styled-preview")
    run_from_preview(page)
    expect(count(page, "Created")).to_have_text("200")
    expect(count(page, "Failed")).to_have_text("0")
    expect(count(page, "Skipped")).to_have_text("0")
    expect(page.locator("#import-progress .progress-text")).to_have_text("200 of 200")
    shot(page, "22-import-styled-done")
    assert Client.objects.count() == 200

    i = next(i for i, row in enumerate(body) if row[2] is None and row[6] is None)  # no e-mail, no tags
    name, source = " ".join(body[i][0].split()), body[i][5]
    open_card_from_table(page, e164(i)[1:], name)
    expect(card_value(page, "Source")).to_have_text(source)
    expect(card_value(page, "Email")).to_have_text("—")  # the empty cell stayed empty
    expect(card_value(page, "Phone")).to_have_text(f"+7 916 {e164(i)[5:8]}-{e164(i)[8:10]}-{e164(i)[10:]}")
    expect(card_value(page, "City")).to_have_text(body[i][4])


# b. A column mapped to a new selector field ---------------------------------------------------


def test_a_column_mapped_to_a_new_selector_becomes_a_field_the_card_shows(new_page, boss, celery_worker):
    rows = [["ФИО", "Телефон", "Сегмент"], ["Анна Золотая", "+7 916 300-00-01", "Gold"],
            ["Пётр Серебряный", "+7 916 300-00-02", "Silver"], ["Иван Золотов", "+7 916 300-00-03", "gold"]]
    page = new_page(boss)
    upload(page, "сегменты.xlsx", plain_xlsx(rows))
    segment = page.get_by_label("Field for Сегмент")
    expect(segment).to_have_value("")  # nothing guessed for an unknown header
    expect(segment.locator('optgroup[label="Create"] option')).to_have_text(["New custom field: text",
                                                                            "New custom field: selector"])
    segment.select_option(label="New custom field: selector")
    to_preview(page)
    field = CustomField.objects.get(label="Сегмент")
    assert field.kind == CustomField.Kind.SELECT and field.choices == ["Gold", "Silver"]  # "gold" is the same value
    expect(page.locator("table.grid thead")).to_contain_text("Сегмент")
    expect(page.locator("table.grid tbody tr.overdue")).to_have_count(0)
    run_from_preview(page)
    expect(count(page, "Created")).to_have_text("3")

    open_card_from_table(page, "Золотов", "Иван Золотов")
    expect(card_value(page, "Сегмент")).to_have_text("Gold")  # the selector's own spelling
    expect(page.locator(f'#block-contact dd[data-field="{field.key}"]')).to_have_text("Gold")
    open_card_from_table(page, "Серебряный", "Пётр Серебряный")
    expect(card_value(page, "Сегмент")).to_have_text("Silver")


# c. Per-row stage and responsible, seen on the board -------------------------------------------


def test_each_rows_stage_and_responsible_land_on_the_board(new_page, boss, celery_worker):
    funnel = FunnelFactory(name="Импорт", stages=["Новый", "Переговоры", "Выиграно"])
    line = funnel.lines.get()
    stages = list(line.stages.order_by("position"))
    UserFactory(username="mary", first_name="Mary", last_name="Manager", role=role("Manager"))
    UserFactory(username="otto", first_name="Otto", last_name="Seller", role=role("Manager"))
    rows = [["ФИО", "Телефон", "Ответственный", "Этап"],
            ["Лидия Первая", "+7 916 400-00-01", "mary", "Новый"],
            ["Борис Второй", "+7 916 400-00-02", "otto", "переговоры"],  # a stage name in any case
            ["Вера Третья", "+7 916 400-00-03", "mary", "Выиграно"],
            ["Глеб Четвёртый", "+7 916 400-00-04", "", ""]]  # no stage: the first; no responsible: the importer
    page = new_page(boss)
    upload(page, "сделки.xlsx", plain_xlsx(rows))
    expect(page.get_by_label("Field for Ответственный")).to_have_value("responsible")
    expect(page.get_by_label("Field for Этап")).to_have_value("deal_stage")
    page.get_by_label("A deal per row, in the line").select_option(label="Импорт · Line A")
    to_preview(page)
    expect(page.locator("table.grid tbody tr.overdue")).to_have_count(0)
    run_from_preview(page)
    expect(count(page, "Created")).to_have_text("4")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Deals").click()
    page.get_by_role("navigation", name="Funnels").get_by_role("link", name="Импорт").click()
    expect(page.get_by_role("link", name="Импорт")).to_have_attribute("aria-current", "true")
    expected = [("Лидия Первая", stages[0], "Mary Manager"), ("Борис Второй", stages[1], "Otto Seller"),
                ("Вера Третья", stages[2], "Mary Manager"), ("Глеб Четвёртый", stages[0], "Big Boss")]
    for name, stage, responsible in expected:
        card = page.locator(f'ol.cards[data-stage="{stage.pk}"] li.deal-card', has_text=name)
        expect(card).to_have_count(1)
        expect(card.locator('span[title="Responsible"]')).to_have_text(responsible)
    for stage, n in zip(stages, [2, 1, 1], strict=True):
        expect(page.locator(f"#column-head-{stage.pk} .deal-count")).to_have_text(str(n))
    shot(page, "23-import-board")
    assert Deal.objects.filter(stage__line=line).count() == 4


# d. A Windows-1251 ";" CSV ------------------------------------------------------------------


def test_a_windows_1251_semicolon_csv_keeps_its_cyrillic(new_page, boss, celery_worker):
    header, body = clean_list(40)
    body = body[:12]
    data = csv_bytes(header, body, delimiter=";", encoding="cp1251")
    assert "Пётр".encode("cp1251") in data  # Windows-1251 bytes, as 1C and Excel save them
    page = new_page(boss)
    upload(page, "выгрузка из 1С.csv", data, mime="text/csv")
    expect(page.get_by_label("Field for ФИО")).to_have_value("name")
    expect(page.get_by_label("Field for Источник")).to_have_value("source")
    expect(page.locator("table.grid tbody")).to_contain_text("Иван Иванов")  # the first values, decoded
    to_preview(page)
    expect(page.locator("table.grid tbody tr.overdue")).to_have_count(0)
    run_from_preview(page)
    expect(count(page, "Created")).to_have_text("12")

    page.goto(page.base + "/clients/")
    names = {" ".join(row[0].split()) for row in body}
    expect(page.locator("#clients-table tbody td.name")).to_have_count(12)
    assert set(page.locator("#clients-table tbody td.name").all_inner_texts()) == names
    expect(page.locator("#clients-table tbody td.name", has_text="Пётр").first).to_be_visible()  # ё survives
    assert set(Client.objects.values_list("name", flat=True)) == names


# e. A worker killed mid-import; the progress bar finishes on its own --------------------------


def test_a_worker_killed_mid_import_and_the_progress_bar_finishes_by_itself(new_page, boss, worker_queue):
    total = 1500
    rows = [["ФИО", "Телефон", "Email"]] + [[f"Клиент {i}", phone_formats(i)[i % 6], f"c{i}@example.com"]
                                             for i in range(total)]
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "IMPORT_CHUNK_ROWS": "100"}
    worker = start_worker(worker_queue, {**env, "IMPORT_CHUNK_PAUSE_SECONDS": "0.3"})
    try:
        page = new_page(boss)
        upload(page, "большой список.xlsx", plain_xlsx(rows))
        to_preview(page)
        page.get_by_role("button", name="Run the import").click()
        bar = page.locator("#import-progress progress")
        page.wait_for_function("() => Number(document.querySelector('#import-progress progress')?.value) >= 400",
                               timeout=30_000)
        shot(page, "24-import-progress")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_worker(worker)
    job = ImportJob.objects.get()
    assert job.status == "running" and 400 <= job.processed < total  # it really died half way
    expect(page.locator("#import-progress")).to_have_attribute("hx-trigger", "every 1s")  # still polling

    worker = start_worker(worker_queue, env)  # no pause; it finds the job by itself
    try:
        # the same page, never reloaded: its polling shows the end
        expect(page.locator("#import-progress .import-status")).to_have_text("Done", timeout=60_000)
        expect(count(page, "Created")).to_have_text(str(total))
        expect(count(page, "Failed")).to_have_text("0")
        expect(bar).to_have_attribute("value", str(total))
        shot(page, "25-import-resumed-done")
    finally:
        stop_worker(worker)
    assert Client.objects.count() == total
    phones = list(Client.objects.values_list("phone", flat=True))
    assert len(set(phones)) == total and set(phones) == {e164(i) for i in range(total)}
    assert ImportJob.objects.get().attempts == 2


# f. Exports: phones without apostrophes, CSV with a BOM ---------------------------------------


def test_the_exported_workbook_shows_the_phone_as_written_and_the_csv_starts_with_a_bom(new_page, boss):
    ClientFactory(name="Телефонный Клиент", phone="+79161234567", responsible=boss)
    page = new_page(boss)
    expect(page.locator("#clients-table tbody td.name")).to_have_text(["Телефонный Клиент"])
    with page.expect_download() as download:
        page.get_by_role("link", name="Export to Excel").click()
    sheet = load_workbook(io.BytesIO(open(download.value.path(), "rb").read())).active
    header = [c.value for c in sheet[1]]
    phone = sheet.cell(row=2, column=header.index("Phone") + 1)
    assert phone.value == "+7 916 123-45-67"  # format_phone's international form, exactly
    assert phone.data_type == "s" and not phone.value.startswith("'")  # text, and no apostrophe in it
    assert phone.quotePrefix  # Excel's "text, never a formula" style carries the protection instead
    assert sheet.cell(row=2, column=header.index("Full name") + 1).value == "Телефонный Клиент"

    with page.expect_download() as download:
        page.get_by_role("link", name="Export to CSV").click()
    data = open(download.value.path(), "rb").read()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    assert "Телефонный Клиент" in data.decode("utf-8-sig")
