"""Files: CSV as 1C and Excel save it, workbooks recognised by content, hostile and damaged files
refused with a message of their own (never a 500, never a job left running or a file left behind)."""

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from imports import readers, services
from imports.models import ImportJob

from .conftest import service_import, upload, wizard
from .files import (
    broken_xml,
    bzip2_parts,
    clean_list,
    csv_bytes,
    entity_bomb,
    lying_sizes,
    plain_xlsx,
    styled_xlsx,
    truncated,
    with_part,
    zip_bomb,
)

pytestmark = pytest.mark.django_db
HEADER = ["ФИО", "Телефон", "Город", "Источник"]
ROWS = [["Щукина Ёлка", "8 (916) 123-45-67", "Москва", "Выставка"], ["Эмма Юсупова", "+7 916 765 43 21", "", "Авито"]]


def uploaded_files(media) -> list[str]:
    folder = Path(media) / "imports"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


@pytest.mark.parametrize("delimiter,encoding,bom", [(";", "cp1251", False), (",", "utf-8", True), ("\t", "utf-8", False),
                                                     (";", "utf-8", False)])
def test_csv_in_the_shapes_1c_and_excel_save_it(admin_client, delimiter, encoding, bom):
    data = csv_bytes(HEADER, ROWS, delimiter=delimiter, encoding=encoding, bom=bom)
    job, _columns, preview = wizard(admin_client, data, name="клиенты.csv")
    assert "Щукина Ёлка" in preview
    assert (job.format, job.created, job.failed) == ("csv", 2, 0)
    first = Client.objects.get(phone="+79161234567")
    assert (first.name, first.city, first.source) == ("Щукина Ёлка", "Москва", "Выставка")


def test_a_windows_1251_list_of_two_hundred_rows(admin_client):
    header, rows = clean_list()
    rows = [[v.isoformat() if hasattr(v, "isoformat") else v for v in row] for row in rows]
    job, _c, _p = wizard(admin_client, csv_bytes(header, rows, delimiter=";", encoding="cp1251"), name="1c.csv")
    assert (job.created, job.failed) == (200, 0)
    assert Client.objects.filter(source="Выставка").count() == 40


def test_a_csv_renamed_to_xlsx_is_read_as_csv(admin_client):
    job, _c, _p = wizard(admin_client, csv_bytes(HEADER, ROWS), name="clients.xlsx")
    assert (job.format, job.created) == ("csv", 2)


def test_a_title_line_above_the_table_and_a_second_sheet(admin_client):
    data = styled_xlsx(HEADER, ROWS, title="Клиенты на 01.12.2026", extra_sheets=[("Пусто", [])])
    response = upload(admin_client, data)
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("imports:sheet", args=[job.pk])
    page = admin_client.post(reverse("imports:sheet", args=[job.pk]), {"sheet": "Пусто"}).content.decode()
    assert "The sheet is empty" in page
    admin_client.post(reverse("imports:sheet", args=[job.pk]), {"sheet": "Клиенты"})
    headers, rows = services.sample(ImportJob.objects.get(), 5)
    assert headers == HEADER and [n for n, _cells in rows] == [3, 4]


GOOD = plain_xlsx([HEADER] + ROWS)


@pytest.mark.parametrize("name,data,message", [
    ("empty.xlsx", plain_xlsx([]), "The sheet is empty"),
    ("header.xlsx", plain_xlsx([HEADER]), "a header row but no data rows"),
    ("header.csv", csv_bytes(HEADER, []), "a header row but no data rows"),
    ("nothing.csv", b"", "The file is empty"),
    ("cut.xlsx", truncated(GOOD), "damaged or incomplete"),
    ("lying.xlsx", lying_sizes(GOOD), "damaged or incomplete"),
    ("broken.xlsx", broken_xml(GOOD), "damaged or incomplete"),
    ("bzip2.xlsx", bzip2_parts(GOOD), "damaged or incomplete"),
    ("bomb.xlsx", zip_bomb(GOOD), "zip bomb"),
    ("xxe.xlsx", entity_bomb(GOOD), "XML entity declarations"),
    ("macro.xlsx", with_part(GOOD, "xl/vbaProject.bin", b"\0" * 10), "macros are not accepted"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "encrypted workbook or an old .xls"),
    ("photo.xlsx", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "“photo.xlsx”: This file is neither an Excel workbook (.xlsx) nor a CSV file."),
    ("doc.xlsx", None, "“doc.xlsx”: This file is not an Excel workbook (.xlsx), though its name says so."),
    ("wide.xlsx", plain_xlsx([[f"c{i}" for i in range(readers.MAX_COLUMNS + 5)], ["x"] * (readers.MAX_COLUMNS + 5)]),
     "columns; at most"),
])
def test_bad_files_get_a_message_of_their_own_and_leave_nothing(name, data, message, admin_client, _media):
    if data is None:  # a zip that is not a workbook (a .docx renamed)
        import io
        import zipfile

        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("word/document.xml", "<w/>")
        data = out.getvalue()
    response = upload(admin_client, data, name)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportJob.objects.exists() and not Client.objects.exists()
    assert uploaded_files(_media) == []


def test_too_big_a_file_is_refused_before_it_is_read(admin_client, monkeypatch, _media):
    monkeypatch.setattr(readers, "MAX_BYTES", 1000)
    response = upload(admin_client, plain_xlsx([HEADER] + ROWS * 200))
    assert "larger than" in response.content.decode() and uploaded_files(_media) == []


def test_too_many_rows_fails_the_run_with_a_message_and_no_file(admin, monkeypatch, settings, _media):
    monkeypatch.setattr(readers, "MAX_DATA_ROWS", 3)
    settings.IMPORT_CHUNK_ROWS = 2
    job = service_import(admin, plain_xlsx([HEADER] + ROWS * 3), {0: "name", 1: "phone"}, duplicates="create")
    assert job.status == "failed" and "more than 3 rows" in job.error
    assert uploaded_files(_media) == [] and not job.file


def test_files_go_when_a_job_ends_and_old_ones_are_swept(admin, admin_client, _media):
    job = service_import(admin, GOOD, {0: "name", 1: "phone"})
    assert job.status == "done" and not job.file and uploaded_files(_media) == []
    upload(admin_client, GOOD)
    waiting = ImportJob.objects.get(status="uploaded")
    assert uploaded_files(_media) == [os.path.basename(waiting.file.name)]
    stray = Path(_media) / "imports" / "stray.upload"
    stray.write_bytes(b"left by a crash")
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(stray, (week_ago, week_ago))
    assert services.imports_cleanup() == 1  # the fresh upload stays, the stray file goes
    assert uploaded_files(_media) == [os.path.basename(waiting.file.name)]
    ImportJob.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=8))
    os.utime(waiting.file.path, (week_ago, week_ago))
    services.imports_cleanup()
    waiting.refresh_from_db()
    assert waiting.status == "refused" and not waiting.file and uploaded_files(_media) == []
    page = admin_client.get(reverse("imports:job", args=[waiting.pk])).content.decode()
    assert "Not run within 7 days" in page


def test_a_job_whose_file_is_gone_says_so(admin_client, admin):
    upload(admin_client, GOOD)
    job = ImportJob.objects.get()
    os.remove(job.file.path)
    page = admin_client.get(reverse("imports:map", args=[job.pk])).content.decode()
    assert "no longer available" in page


def test_a_sheet_too_big_to_load_is_streamed_with_the_same_values(admin, monkeypatch):
    """Above STREAM_ABOVE a sheet is read row by row (constant memory): same cells as calamine —
    shared strings, numbers, date and date-time cells, a title line, a formula's cached value."""
    from datetime import date, datetime

    from .files import with_cached_formula

    header = ["ФИО", "Телефон", "Дата регистрации", "Город", "Уровень"]
    rows = [["Анна Ёлкина", "8 916 123-45-67", date(2024, 2, 29), "Тула", 5],
            ["Boris", 79167654321, datetime(2023, 12, 31, 23, 59), "формула", 2.5],
            [None, None, None, None, None],
            ["Вера", "+7 916 000 00 03", "2024-01-05", "Омск", "7"]]
    data = with_cached_formula(styled_xlsx(header, rows, title="Клиенты на 01.12"), "D4", 'UPPER("уфа")', "УФА")
    reader_path = "/tmp/voronka-stream-test.xlsx"
    with open(reader_path, "wb") as handle:
        handle.write(data)
    loaded = readers.sample_rows(readers.XlsxReader(reader_path), "Клиенты", 10)
    monkeypatch.setattr(readers, "STREAM_ABOVE", 0)
    streamed = readers.sample_rows(readers.XlsxReader(reader_path), "Клиенты", 10)
    os.remove(reader_path)
    assert streamed[0] == loaded[0] == header

    def normal(rows):
        return [(n, [readers.cell_text(c) for c in cells if c is not None]) for n, cells in rows]

    assert normal(streamed[1]) == normal(loaded[1])
    assert streamed[1][0][1][2] == date(2024, 2, 29) and streamed[1][1][1][2] == datetime(2023, 12, 31, 23, 59)
    assert streamed[1][1][1][3] == "УФА" and streamed[1][1][1][1] == 79167654321
    # and a whole import through the streamed path
    job = service_import(admin, data, {0: "name", 1: "phone", 2: "registration_date", 3: "city"})
    assert (job.created, job.failed) == (3, 0)
    assert Client.objects.get(name="Boris").city == "УФА"
