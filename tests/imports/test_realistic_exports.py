"""Client lists as a sales admin really has them (amoCRM CSV, Bitrix24 xlsx, 1C CSV in
Windows-1251, a hand-typed Excel list), written from DESIGN §6, seed 002 and the real export
formats -- not from what the code accepts -- and run through the wizard: upload -> the guessed
mapping (or the one a user would pick) -> preview -> run -> records / report.

Each file has two kinds of test: what the wizard guesses for its headers, and what the run does
with the mapping a user ends up with."""

import csv
import io
from datetime import date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from clients.models import Client, CustomField
from imports.models import ImportRecord
from tests.factories import UserFactory, role

from .conftest import selected, wizard
from .files import styled_xlsx

pytestmark = pytest.mark.django_db


# helpers -------------------------------------------------------------------------------------


def records(job) -> dict[int, tuple[str, str, str]]:
    return {r.row: (r.outcome, r.column, r.reason) for r in ImportRecord.objects.filter(job=job)}


def counts(job):
    return (job.status, job.created, job.updated, job.skipped, job.failed)


def guessed(admin_client, data: bytes, name: str) -> dict[str, str]:
    """{header: the field the columns step proposes} for a freshly uploaded file."""
    from imports import services
    from imports.models import ImportJob

    response = admin_client.post(reverse("imports:upload"), {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = ImportJob.objects.latest("created_at")
    page = admin_client.get(reverse("imports:map", args=[job.pk])).content.decode()
    headers, _rows = services.sample(job, 1)
    return dict(zip(headers, selected(page), strict=True))


def client_named(name: str) -> Client:
    return Client.objects.get(name=name)


@pytest.fixture
def sales_team(db):
    """The managers whose names appear in the 'Ответственный' columns of the exports."""
    return {
        "petr": UserFactory(username="p.sidorov", first_name="Пётр", last_name="Сидоров", email="p.sidorov@firma.ru",
                            role=role("Manager")),
        "anna": UserFactory(username="a.petrova", first_name="Анна", last_name="Петрова", email="a.petrova@firma.ru",
                            role=role("Manager")),
    }


# 1. amoCRM contacts export: CSV, ';', UTF-8 with BOM, every field quoted ----------------------------

AMO_HEADER = ["ID", "Полное имя контакта", "Компания", "Рабочий телефон", "Мобильный телефон", "Рабочий email",
              "Личный email", "Ответственный", "Теги", "Дата создания", "Примечание"]
AMO_ROWS = [
    # row 2; a note over two lines (one Excel row, two lines of text)
    ["31000101", "Иванов Иван", "ООО «Ромашка»", "+7 495 123-45-67", "+7 916 123-45-67", "ivan@romashka.ru", "",
     "Пётр Сидоров", "VIP, опт", "04.12.2026 10:15:00", "Звонил, просил\nперезвонить в пятницу"],
    # row 3: a personal e-mail besides the work one
    ["31000102", "Смирнова Ольга", "", "", "+79161112233", "olga@romashka.ru", "olga.smirnova@gmail.com",
     "Анна Петрова", "", "04.12.2026 10:16:00", ""],
    # row 4: no mobile, two office numbers in the work-phone cell
    ["31000103", "Кузнецов Алексей", "ИП Кузнецов", "+7 495 765-43-21, +7 495 765-43-22", "", "", "",
     "Пётр Сидоров", "партнёр", "04.12.2026 10:17:00", ""],
    # row 5: the same person as row 2, mobile written another way -> skipped, naming row 2
    ["31000104", "Иванов И.", "", "", "8 (916) 123-45-67", "", "", "Пётр Сидоров", "", "05.12.2026 09:00:00", ""],
    # row 6: a manager who does not work here -> failed, quoting the name
    ["31000105", "Ёлкина Мария", "", "", "+7 903 111-22-33", "elkina@mail.ru", "", "Василий Уволенный", "",
     "05.12.2026 09:01:00", ""],
    # row 7: the same office as row 4 (only its work phone) -> a duplicate by phone
    ["31000106", "Кузнецов А. В.", "", "+7 (495) 765-43-21", "", "", "", "Пётр Сидоров", "", "05.12.2026 09:02:00", ""],
]
# what a user picks where the guess is wrong or missing ("" = leave unmapped)
AMO_MAPPING = {"ID": "", "Полное имя контакта": "name", "Компания": "company", "Рабочий телефон": "extra_phones",
               "Мобильный телефон": "phone", "Рабочий email": "email", "Личный email": "extra_emails", "Ответственный": "responsible",
               "Теги": "tags", "Дата создания": "", "Примечание": ""}


def amo_csv() -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(AMO_HEADER)
    writer.writerows(AMO_ROWS)
    return b"\xef\xbb\xbf" + text.getvalue().encode("utf-8")


def test_amocrm_headers_are_guessed(admin_client):
    got = guessed(admin_client, amo_csv(), "amocrm_export_contacts.csv")
    wanted = {"Полное имя контакта": "name", "Мобильный телефон": "phone", "Рабочий телефон": "extra_phones",
              "Рабочий email": "email", "Личный email": "extra_emails", "Компания": "company", "Ответственный": "responsible",
              "Теги": "tags"}
    assert {h: got[h] for h in wanted} == wanted


def amo_import(admin_client):
    job, _columns, _preview = wizard(admin_client, amo_csv(), name="amocrm_export_contacts.csv", mapping=AMO_MAPPING)
    return job, records(job)


def test_amocrm_export_imports_as_a_user_expects(admin_client, sales_team):
    job, got = amo_import(admin_client)
    assert job.status == "done" and job.failed == 1, got
    ivan = client_named("Иванов Иван")
    assert (ivan.phone, ivan.extra_phones) == ("+79161234567", ["+74951234567"])
    assert (ivan.company, ivan.email, ivan.responsible_id) == ("ООО «Ромашка»", "ivan@romashka.ru", sales_team["petr"].pk)
    assert sorted(t.name for t in ivan.tags.all()) == ["VIP", "опт"]
    olga = client_named("Смирнова Ольга")
    assert olga.responsible_id == sales_team["anna"].pk
    assert (olga.email, olga.extra_emails) == ("olga@romashka.ru", ["olga.smirnova@gmail.com"])
    # both office numbers of a client without a mobile are kept
    kuz = client_named("Кузнецов Алексей")
    assert set(kuz.all_phones) == {"+74957654321", "+74957654322"}
    assert not Client.objects.filter(name__startswith="Ёлкина").exists()
    failed = [r for r in got.values() if r[0] == "failed"]
    assert len(failed) == 1 and failed[0][1] == "Ответственный" and "Василий Уволенный" in failed[0][2], got


def test_amocrm_row_numbers_are_the_rows_excel_shows(admin_client, sales_team):
    """Row 2's note holds a line break inside its quotes: Excel still shows the contacts on rows 2..7,
    and the report (and the "row N of this file" in a skip reason) must name those rows."""
    job, got = amo_import(admin_client)
    assert sorted(got) == [2, 3, 4, 5, 6, 7], got
    assert got[5][0] == "skipped" and "row 2 " in got[5][2], got
    assert got[6][0] == "failed" and "Василий Уволенный" in got[6][2], got


def test_amocrm_a_contact_on_an_office_number_already_in_the_file_is_a_duplicate(admin_client, sales_team):
    """Row 7 has only the work phone +7 (495) 765-43-21, which row 4 already brought in: in skip mode it is skipped."""
    job, got = amo_import(admin_client)
    assert counts(job) == ("done", 3, 0, 2, 1), got
    assert not Client.objects.filter(name="Кузнецов А. В.").exists()


def test_a_row_whose_phone_or_email_an_existing_client_has_as_another_one_is_a_duplicate(admin_client):
    """The client's other phones / e-mails (kept by merge, by a 1C import) are its phones and e-mails too
    (clients/duplicates.py compares them): an import in skip mode must not create a second client."""
    from tests.factories import ClientFactory

    ClientFactory(name="ООО Ромашка", phone="+79161234567", extra_phones=["+74951234567"], email="info@romashka.ru",
                  extra_emails=["buh@romashka.ru"])
    data = styled_xlsx(["ФИО", "Телефон", "Email"], [["Бухгалтерия Ромашки", "8 (495) 123-45-67", None],
                                                      ["Ромашка бухгалтер", None, "BUH@romashka.ru"]])
    job, _columns, _preview = wizard(admin_client, data, name="ромашка.xlsx")
    assert counts(job) == ("done", 0, 0, 2, 0), records(job)


def test_amocrm_second_email_column_has_somewhere_to_go(admin_client):
    """'Рабочий email' and 'Личный email' are both e-mails of the contact; the client has other e-mails
    (DESIGN §2, kept by merge and by the 1C import), so the mapping step should offer them."""
    from imports import fields

    keys = {k for _group, choices in fields.field_choices([], can_create_fields=True) for k, _label in choices}
    assert "extra_emails" in keys


# 2. Bitrix24 contacts export: xlsx, the name in three columns -------------------------------------

B24_HEADER = ["ID", "Имя", "Фамилия", "Отчество", "Рабочий телефон", "Мобильный телефон", "E-mail", "Источник",
              "Ответственный", "Дата создания"]
B24_ROWS = [
    [101, "Иван", "Петров", "Сергеевич", "+7 (495) 111-22-33", "+7 (916) 222-33-44", "petrov@firma.ru", "Звонок",
     "Пётр Сидоров", datetime(2026, 12, 4, 10, 15)],
    # the full name, last name first, is 39 characters: over the 30-character limit of DESIGN §2
    [102, "Ольга", "Константинопольская", "Александровна", None, "89163334455", None, "Веб-сайт", "Анна Петрова",
     datetime(2026, 12, 4, 10, 16)],
    [103, "Мария", None, None, None, None, "maria@yandex.ru", "Реклама", None, datetime(2026, 12, 4, 10, 17)],
    [104, "John", "Smith", None, "+1 212-555-0134", None, "john.smith@acme.com", "Партнёр", "a.petrova@firma.ru",
     datetime(2026, 12, 4, 10, 18)],
]


def test_bitrix24_headers_are_guessed(admin_client):
    got = guessed(admin_client, styled_xlsx(B24_HEADER, B24_ROWS, sheet="Контакты"), "CONTACT_20261204.xlsx")
    assert got == {"ID": "", "Имя": "first_name", "Фамилия": "last_name", "Отчество": "middle_name",
                   "Рабочий телефон": "extra_phones", "Мобильный телефон": "phone", "E-mail": "email",
                   "Источник": "source", "Ответственный": "responsible", "Дата создания": ""}


def test_bitrix24_export_imports_as_a_user_expects(admin_client, admin, sales_team):
    job, _columns, preview = wizard(admin_client, styled_xlsx(B24_HEADER, B24_ROWS, sheet="Контакты"),
                                    name="CONTACT_20261204.xlsx")
    got = records(job)
    assert counts(job) == ("done", 3, 0, 0, 1), got
    petrov = client_named("Петров Иван Сергеевич")
    assert (petrov.phone, petrov.extra_phones, petrov.email, petrov.source) == (
        "+79162223344", ["+74951112233"], "petrov@firma.ru", "Звонок")
    assert petrov.responsible_id == sales_team["petr"].pk
    maria = client_named("Мария")
    assert (maria.email, maria.source, maria.responsible_id) == ("maria@yandex.ru", "Реклама", admin.pk)
    smith = client_named("Smith John")
    assert (smith.all_phones, smith.source, smith.responsible_id) == (["+12125550134"], "Партнёр", sales_team["anna"].pk)
    outcome, _column, reason = got[3]
    assert outcome == "failed" and "30" in reason and "39" in reason, got


# 3. 1C counterparties: CSV, tab-separated, Windows-1251 ------------------------------------------

ONE_C_HEADER = ["Наименование", "Полное наименование", "ИНН", "Телефон", "Электронная почта", "Юридический адрес"]
ONE_C_ROWS = [
    ['ООО "Ромашка"', 'Общество с ограниченной ответственностью "Ромашка"', "7701234567",
     "8 (495) 123-45-67, +7 916 123-45-67", "info@romashka.ru, buh@romashka.ru", "г. Москва, ул. Ленина, д. 1"],
    ["ИП Сидоров А.В.", "Индивидуальный предприниматель Сидоров Андрей Викторович", "770123456789",
     "+7 (812) 555-66-77 доб. 123", "sidorov@mail.ru; sidorov.av@yandex.ru", "г. Санкт-Петербург, Невский пр., д. 10"],
    ['АО "Вектор"', 'Акционерное общество "Вектор"', "0105012345", "8-800-555-35-35", "",
     "Республика Адыгея, г. Майкоп, ул. Советская, д. 5"],
    ['ООО "Звезда"', 'Общество с ограниченной ответственностью "Звезда"', "5003012345",
     "8 (495) 987-65-43 доб. 45, 8 (916) 765-43-21", "zakaz@звезда.рф", "Московская обл., г. Видное"],
]
ONE_C_MAPPING = {"Наименование": "name", "Полное наименование": "", "ИНН": "new_text", "Телефон": "phone",
                 "Электронная почта": "email", "Юридический адрес": "address"}


def one_c_csv() -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\r\n")
    writer.writerow(ONE_C_HEADER)
    writer.writerows(ONE_C_ROWS)
    return text.getvalue().encode("cp1251")


def test_one_c_headers_are_guessed(admin_client):
    got = guessed(admin_client, one_c_csv(), "Контрагенты.csv")
    assert (got["Наименование"], got["Телефон"], got["Электронная почта"], got["Юридический адрес"]) == (
        "name", "phone", "email", "address")


def test_one_c_counterparties_import_with_every_phone_and_email(admin_client):
    job, _columns, preview = wizard(admin_client, one_c_csv(), name="Контрагенты.csv", mapping=ONE_C_MAPPING)
    got = records(job)
    assert counts(job) == ("done", 4, 0, 0, 0), got
    inn = CustomField.objects.get(label="ИНН")
    romashka = client_named('ООО "Ромашка"')
    assert (romashka.phone, romashka.extra_phones) == ("+74951234567", ["+79161234567"])
    assert (romashka.email, romashka.extra_emails) == ("info@romashka.ru", ["buh@romashka.ru"])
    assert romashka.address == "г. Москва, ул. Ленина, д. 1"
    assert romashka.custom[inn.key] == "7701234567"
    sidorov = client_named("ИП Сидоров А.В.")
    assert sidorov.phone == "+78125556677;ext=123"  # the extension is kept (clients/phones.py)
    assert (sidorov.email, sidorov.extra_emails) == ("sidorov@mail.ru", ["sidorov.av@yandex.ru"])
    assert sidorov.custom[inn.key] == "770123456789"
    vector = client_named('АО "Вектор"')
    assert vector.custom[inn.key] == "0105012345"  # a leading zero of an INN is not lost
    assert vector.phone == "+78005553535"
    zvezda = client_named('ООО "Звезда"')
    assert zvezda.all_phones == ["+74959876543;ext=45", "+79167654321"]
    assert zvezda.email == "zakaz@звезда.рф"


# 4. A list typed by hand in Excel -----------------------------------------------------------------

HAND_HEADER = ["ФИО", "Телефон", "Email", "Город", "Дата регистрации", "Приоритет", "Теги", "Комментарий"]
HAND_ROWS = [
    # row 2: phone as a number cell, e-mail in capitals, a date cell, priority by its Russian label, messy tags
    ["Анна Смирнова ", 79161234567, "ANNA.SMIRNOVA@MAIL.RU", "Москва", date(2026, 3, 15), "Высокий", "VIP,  опт ,VIP", None],
    # row 3: no-break spaces pasted from a web page, leading 8, empty optional cells
    ["Пётр\u00a0Иванов\u00a0", "89162223344", None, " Казань\u00a0", None, None, None, "перезвонить"],
    # row 4: a Kazakh mobile (+7 7xx)
    ["Айгуль Нурланова", "+7 701 123 45 67", "aigul@mail.kz", "Алматы", None, "низкий", None, None],
    # row 5: a Belarus number
    ["Ольга Ковалёва", "+375 29 123-45-67", None, "Минск", None, None, "Беларусь", None],
    # row 6: an office number with its extension
    ["Сергей Офисный", "+7 (495) 123-45-67 доб. 12", "office@firma.ru", "Москва", None, "Normal", None, None],
    # row 7: Anna again, her phone written another way -> skipped, naming row 2
    ["Анна Смирнова", "+7 (916) 123-45-67", None, None, None, None, None, "дубль"],
    # row 8: Anna again, only her e-mail, in another case -> skipped, naming row 2
    ["Анна С.", None, "Anna.Smirnova@mail.ru", None, None, None, None, None],
    # row 9: a date that does not exist -> failed, quoting it
    ["Дмитрий Орлов", "8 (903) 555-66-77", None, None, "2026-02-30", None, None, None],
    # row 10: a phone that is not one -> failed, quoting it
    ["Елена Белова", "12345", "belova@mail.ru", None, None, None, None, None],
    # row 11: a blank line between blocks of the list -> not a row of data
    [None, None, None, None, None, None, None, None],
    # row 12: a number cell with the leading 8, a date-time cell, priority in English
    ["Игорь Петров", 89031112233, None, None, datetime(2026, 1, 20, 0, 0), "Normal", "", None],
    # row 13: a date typed as text in the one accepted format
    ["Марина Ветрова", "+7 916 444-55-66", "marina@mail.ru", None, "2026-01-15", "высокий", "опт", None],
]


def hand_xlsx() -> bytes:
    return styled_xlsx(HAND_HEADER, HAND_ROWS, sheet="Лист1")


def test_hand_typed_headers_are_guessed(admin_client):
    got = guessed(admin_client, hand_xlsx(), "клиенты.xlsx")
    assert got == {"ФИО": "name", "Телефон": "phone", "Email": "email", "Город": "city",
                   "Дата регистрации": "registration_date", "Приоритет": "priority", "Теги": "tags", "Комментарий": ""}


def test_hand_typed_list_imports_as_a_user_expects(admin_client):
    job, _columns, preview = wizard(admin_client, hand_xlsx(), name="клиенты.xlsx")
    assert "Комментарий" in preview  # the unmapped column is said to be ignored
    got = records(job)
    assert counts(job) == ("done", 7, 0, 2, 2), got
    assert sorted(got) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]  # the blank row 11 is no row of data

    anna = client_named("Анна Смирнова")
    assert (anna.phone, anna.email, anna.city) == ("+79161234567", "anna.smirnova@mail.ru", "Москва")
    assert (anna.registration_date, anna.priority) == (date(2026, 3, 15), "high")
    assert sorted(t.name for t in anna.tags.all()) == ["VIP", "опт"]
    petr = client_named("Пётр Иванов")
    assert (petr.phone, petr.city, petr.email, petr.registration_date) == ("+79162223344", "Казань", "", None)
    assert client_named("Айгуль Нурланова").phone == "+77011234567"
    assert client_named("Айгуль Нурланова").priority == "low"
    assert client_named("Ольга Ковалёва").phone == "+375291234567"
    assert client_named("Сергей Офисный").phone == "+74951234567;ext=12"
    igor = client_named("Игорь Петров")
    assert (igor.phone, igor.registration_date) == ("+79031112233", date(2026, 1, 20))
    marina = client_named("Марина Ветрова")
    assert (marina.registration_date, marina.priority) == (date(2026, 1, 15), "high")

    assert got[7][0] == "skipped" and "row 2" in got[7][2], got
    assert got[8][0] == "skipped" and "row 2" in got[8][2], got
    assert got[9][0] == "failed" and got[9][1] == "Дата регистрации" and "2026-02-30" in got[9][2], got
    assert got[10][0] == "failed" and got[10][1] == "Телефон", got


def test_hand_typed_failed_phone_reason_quotes_the_value(admin_client):
    job, _columns, _preview = wizard(admin_client, hand_xlsx(), name="клиенты.xlsx")
    outcome, column, reason = records(job)[10]
    assert (outcome, column, reason) == ("failed", "Телефон", "Телефон: “12345” is not a phone number."), reason


def test_hand_typed_report_names_rows_columns_and_reasons(admin_client):
    job, _columns, _preview = wizard(admin_client, hand_xlsx(), name="клиенты.xlsx")
    response = admin_client.get(reverse("imports:report", args=[job.pk]))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    by_row = {r[0]: r for r in rows[1:]}
    assert by_row[9][2] == "Дата регистрации" and "2026-02-30" in by_row[9][3]
    assert "Дмитрий Орлов" in by_row[9]  # the failed row's cells are there to fix and re-import
    assert by_row[10][2] == "Телефон"
    assert "Дата создания" not in [c for r in rows[:1] for c in r if c]


def test_hand_typed_preview_shows_problems_before_the_run(admin_client):
    _job, _columns, preview = wizard(admin_client, hand_xlsx(), name="клиенты.xlsx")
    assert "2026-02-30" in preview


def test_bitrix24_a_contact_with_only_a_work_phone_has_a_phone(admin_client, sales_team):
    """Spec-open: Smith has only a work phone. A user expects the client to have a phone (the card,
    SMS, the import's duplicate check all use the main phone), not an empty one with the number aside."""
    wizard(admin_client, styled_xlsx(B24_HEADER, B24_ROWS, sheet="Контакты"), name="CONTACT_20261204.xlsx")
    assert client_named("Smith John").phone == "+12125550134"


def test_bitrix24_excel_export_that_is_html_is_refused_with_a_message(admin_client):
    """Bitrix24's "Export to Excel" writes an HTML table named CONTACT_*.xls: neither xlsx nor csv.
    DESIGN §6: such a file gets a clear message and no job."""
    from imports.models import ImportJob

    html = ("<html>\n<head>\n<meta http-equiv=\"Content-type\" content=\"text/html;charset=utf-8\" />\n</head>\n<body>\n"
            "<table border=\"1\">\n<tr><th>ID</th><th>Имя</th><th>Фамилия</th><th>Мобильный телефон</th></tr>\n"
            "<tr><td>101</td><td>Иван</td><td>Петров</td><td>+79162223344</td></tr>\n"
            "<tr><td>102</td><td>Ольга</td><td>Ким</td><td>+79163334455</td></tr>\n</table>\n</body>\n</html>\n")
    xml_2003 = ('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
                '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="Лист1"><Table>'
                '<Row><Cell><Data ss:Type="String">Наименование</Data></Cell></Row></Table></Worksheet></Workbook>\n')
    for name, data in (("CONTACT_20261204.xls", html.encode()), ("Контрагенты.xls", b"\xef\xbb\xbf" + xml_2003.encode())):
        response = admin_client.post(reverse("imports:upload"), {"file": SimpleUploadedFile(name, data)})
        page = response.content.decode()
        assert response.status_code == 200 and ImportJob.objects.count() == 0, ImportJob.objects.values("format", "headers")
        assert f"“{name}”: This file is a web page or an XML file saved with a spreadsheet&#x27;s extension" in page, name


def test_one_c_extension_written_after_a_comma_is_kept(admin_client):
    """1C and hand-kept lists often write "8 (495) 123-45-67, доб. 123": the extension belongs to the number."""
    rows = [['ООО "Луч"', "", "7700000001", "8 (495) 222-33-44, доб. 123", "luch@luch.ru", ""]]
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\r\n")
    writer.writerow(ONE_C_HEADER)
    writer.writerows(rows)
    job, _c, _p = wizard(admin_client, text.getvalue().encode("cp1251"), name="Контрагенты.csv", mapping=ONE_C_MAPPING)
    assert counts(job) == ("done", 1, 0, 0, 0), records(job)
    assert client_named('ООО "Луч"').phone == "+74952223344;ext=123"
