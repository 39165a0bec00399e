"""The rules a row is validated by, on lists as users have them."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from clients.models import Client, CustomField, Tag
from deals.models import Deal, Stage
from imports import services
from imports.models import ImportJob, ImportRecord
from tests.factories import ClientFactory, CustomFieldFactory, FunnelFactory, UserFactory, role

from .conftest import selected, service_import, upload, wizard
from .files import clean_list, csv_bytes, e164, plain_xlsx, styled_xlsx, with_cached_formula

pytestmark = pytest.mark.django_db


def test_a_clean_list_with_empty_optional_cells_imports_every_row(admin_client, admin):
    """200 rows, 15 without e-mail, 31 without company, 34 with empty tags: all 200 are imported."""
    header, rows = clean_list()
    job, columns, preview = wizard(admin_client, styled_xlsx(header, rows))
    assert selected(columns) == ["name", "phone", "email", "company", "city", "source", "tags", "registration_date"]
    assert "empty" not in preview
    assert (job.status, job.created, job.failed, job.skipped, job.total) == ("done", 200, 0, 0, 200)
    assert Client.objects.count() == 200
    # mixed phone formats all land in E.164, the no-break space is trimmed, e-mails lower-cased
    assert set(Client.objects.values_list("phone", flat=True)) == {e164(i) for i in range(200)}
    first = Client.objects.get(phone=e164(0))
    assert (first.name, first.email, first.source, first.city) == ("Иван Иванов", "client0@example.com", "Cold call", "Москва")
    assert Client.objects.get(phone=e164(1)).source == "Авито"
    assert Client.objects.get(phone=e164(1)).registration_date == date(2024, 2, 2)  # a date cell, no shift
    assert Client.objects.filter(email="").count() == 15 and Client.objects.filter(company="").count() == 31
    # "VIP, опт" / "vip , VIP,Опт" / "новый": trimmed, repeats dropped, case-insensitive, one tag each
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["VIP", "новый", "опт"]
    assert Client.objects.filter(tags__isnull=True).count() == 34


def test_an_english_csv_with_a_title_line_and_source_column(admin_client):
    header = ["Full name", "Phone", "Email", "Lead source", "Company"]
    rows = [["Emily Brown", "+44 20 7946 0958", "", "Cold call", ""], ["John Smith", "8 916 123-45-67", "john@x.com", "", "ACME"]]
    job, columns, _preview = wizard(admin_client, csv_bytes(header, rows, delimiter=",", encoding="utf-8"), name="export.csv")
    assert selected(columns) == ["name", "phone", "email", "source", "company"]
    assert (job.created, job.failed) == (2, 0)
    assert Client.objects.get(name="Emily Brown").phone == "+442079460958"


def test_update_mode_leaves_what_the_file_does_not_mention(admin):
    client = ClientFactory(name="Старое Имя", phone="+79161234567", email="old@example.com", company="ООО Старое", city="Тула")
    data = plain_xlsx([["ФИО", "Телефон", "Email", "Компания", "Город"], ["Новое Имя", "8 916 123-45-67", None, None, "Омск"]])
    job = service_import(admin, data, {0: "name", 1: "phone", 2: "email", 3: "company", 4: "city"}, duplicates="update")
    client.refresh_from_db()
    assert job.updated == 1
    assert (client.name, client.email, client.company, client.city) == ("Новое Имя", "old@example.com", "ООО Старое", "Омск")


def test_only_the_name_is_required_unless_every_cell_is_asked_for(admin):
    data = plain_xlsx([["ФИО", "Город"], [None, "Тула"], ["Анна", None], ["  \u00a0 ", "Омск"]])
    job = service_import(admin, data, {0: "name", 1: "city"})
    assert (job.created, job.failed) == (1, 2)
    reasons = list(ImportRecord.objects.filter(job=job, outcome="failed").values_list("column", "reason"))
    assert reasons == [("ФИО", "ФИО: the full name is required."), ("ФИО", "ФИО: the full name is required.")]
    strict = service_import(admin, data, {0: "name", 1: "city"}, duplicates="create", require_all=True)
    assert (strict.created, strict.failed) == (0, 3)


def test_formats_dates_numbers_priority_and_formulas(admin):
    level = CustomFieldFactory(label="Уровень", kind=CustomField.Kind.NUMBER)
    header = ["ФИО", "Дата регистрации", "Приоритет", "Уровень", "Город"]
    rows = [
        ["Дата текстом", "2024-03-01", "Высокий", "5", "Тула"],
        ["Дата ячейкой", datetime(2024, 2, 29, 23, 30), "HIGH", 7, "Омск"],
        ["Дата по-русски", "12.03.2024", "normal", "1", "Уфа"],
        ["Не дата", "2024-02-30", "низкий", "1", "Уфа"],
        ["Не число", "2024-01-01", "low", "много", "Уфа"],
        ["Число с пробелом", date(2024, 1, 5), "Обычный", "1 500", "Сочи"],
        ["Непонятный", "2024-01-01", "срочно", "1", "Уфа"],
    ]
    data = styled_xlsx(header, rows)
    job = service_import(admin, data, {0: "name", 1: "registration_date", 2: "priority", 3: level.key, 4: "city"})
    got = {c.name: c for c in Client.objects.all()}
    assert got["Дата текстом"].registration_date == date(2024, 3, 1) and got["Дата текстом"].priority == "high"
    assert got["Дата ячейкой"].registration_date == date(2024, 2, 29) and got["Дата ячейкой"].custom[level.key] == 7
    assert got["Число с пробелом"].custom[level.key] == 1500 and got["Число с пробелом"].priority == "normal"
    failed = dict(ImportRecord.objects.filter(job=job, outcome="failed").values_list("row", "reason"))
    assert "“12.03.2024”: dates only as YYYY-MM-DD" in failed[4]
    assert "“2024-02-30” is not a real date" in failed[5]
    assert "“много” is not a number" in failed[6]
    assert "unknown value “срочно”" in failed[8]
    assert job.created == 3


def test_a_formula_cell_is_imported_by_its_cached_value(admin):
    data = with_cached_formula(plain_xlsx([["ФИО", "Город"], ["Анна", "x"]]), "B2", 'UPPER("тула")', "ТУЛА")
    service_import(admin, data, {0: "name", 1: "city"})
    assert Client.objects.get().city == "ТУЛА"


def test_channel_is_a_choice_and_source_keeps_any_text(admin):
    data = plain_xlsx([["ФИО", "Канал", "Источник"], ["Анна", "Telegram", "Авито"], ["Борис", "Авито", "Выставка"]])
    job = service_import(admin, data, {0: "name", 1: "channel", 2: "source"})
    assert Client.objects.get(name="Анна").channel == "telegram" and Client.objects.get(name="Анна").source == "Авито"
    reason = ImportRecord.objects.get(job=job, outcome="failed").reason
    assert "“Авито” is not one of the channels; map the column to Source" in reason


def test_a_new_custom_field_from_a_column_text_or_selector(admin_client, admin):
    header = ["ФИО", "Уровень клиента", "Комментарий менеджера"]
    rows = [["Анна", "Gold", "перезвонить"], ["Борис", "silver", ""], ["Вера", "Gold ", "VIP"], ["Глеб", "", "x" * 31]]
    job, _columns, _preview = wizard(admin_client, plain_xlsx([header] + rows),
                                     mapping={"Уровень клиента": "new_select", "Комментарий менеджера": "new_text"})
    level = CustomField.objects.get(label="Уровень клиента")
    note = CustomField.objects.get(label="Комментарий менеджера")
    assert level.kind == "select" and level.choices == ["Gold", "silver"]
    assert note.kind == "text"
    got = {c.name: c.custom for c in Client.objects.all()}
    assert got["Анна"] == {level.key: "Gold", note.key: "перезвонить"}
    assert got["Вера"][level.key] == "Gold" and got["Борис"] == {level.key: "silver"}
    assert "at most 30 characters" in ImportRecord.objects.get(job=job, outcome="failed").reason  # seed 002's text limit
    assert job.created == 3
    # the field is on the card layout and the mapping is remembered with it
    assert level.card_fields.exists()
    again = upload(admin_client, plain_xlsx([header] + rows))
    page = admin_client.get(again["Location"]).content.decode()
    assert selected(page)[1] == level.key


def test_new_fields_need_the_configure_permission(client, admin):
    from django.contrib.auth.models import Permission

    importer_role = role("Manager")
    importer_role.group.permissions.add(Permission.objects.get(codename="import_clients"))
    importer = UserFactory(role=importer_role)
    client.force_login(importer)
    upload(client, plain_xlsx([["ФИО", "Уровень"], ["Анна", "Gold"]]))
    job = ImportJob.objects.get()
    response = client.post(reverse("imports:map", args=[job.pk]), {"col_0": "name", "col_1": "new_select", "duplicates": "skip"})
    assert response.status_code == 403 and not CustomField.objects.exists()


def test_per_row_responsible_and_stage(admin_client, admin):
    UserFactory(username="olga", email="olga.k@voronka.local", first_name="Ольга", last_name="Кузнецова")
    UserFactory(username="ivan", first_name="Иван", last_name="Петров")
    funnel = FunnelFactory(name="Продажи Импорт")
    line = funnel.lines.get()
    stages = list(line.stages.order_by("position"))
    header = ["ФИО", "Телефон", "Ответственный", "Этап", "Сделка", "Бюджет"]
    rows = [
        ["Анна", "+7 916 000 00 01", "OLGA", stages[1].name, "Первая сделка", 15000],
        ["Борис", "+7 916 000 00 02", "olga.k@voronka.local", "", "", "1 500,50"],
        ["Вера", "+7 916 000 00 03", "Кузнецова Ольга", stages[2].name.upper(), None, None],
        ["Глеб", "+7 916 000 00 04", "", "", None, None],
        ["Дина", "+7 916 000 00 05", "Неизвестный Менеджер", "", None, None],
        ["Егор", "+7 916 000 00 06", "ivan", "Нет такого этапа", None, None],
    ]
    job, columns, _preview = wizard(admin_client, plain_xlsx([header] + rows), deal_line=line)
    assert selected(columns) == ["name", "phone", "responsible", "deal_stage", "deal_name", "deal_budget"]
    assert (job.created, job.failed) == (4, 2)
    deals = {d.client.name: d for d in Deal.objects.select_related("client", "responsible", "stage")}
    assert (deals["Анна"].stage, deals["Анна"].responsible.username, deals["Анна"].name, deals["Анна"].budget) == (
        stages[1], "olga", "Первая сделка", Decimal("15000"))
    assert (deals["Борис"].stage, deals["Борис"].budget, deals["Борис"].name) == (stages[0], Decimal("1500.50"), "Борис")
    assert deals["Вера"].stage == stages[2] and deals["Вера"].responsible.username == "olga"
    assert deals["Глеб"].responsible == admin and Client.objects.get(name="Глеб").responsible == admin
    assert Client.objects.get(name="Анна").responsible.username == "olga"
    failed = dict(ImportRecord.objects.filter(job=job, outcome="failed").values_list("row", "reason"))
    assert "no active user “Неизвестный Менеджер”" in failed[6]
    assert "no stage “Нет такого этапа” in this line" in failed[7]
    assert not Client.objects.filter(name__in=["Дина", "Егор"]).exists()  # never half written
    # the board of that funnel shows the deals in their stages
    board = admin_client.get(reverse("deals:board", args=[funnel.pk])).content.decode()
    assert board.count('class="deal-card"') == 4 and "Анна" in board and "Вера" in board and "Дина" not in board


def test_a_stage_by_its_russian_label(admin):
    funnel = FunnelFactory(name="Воронка")
    line = funnel.lines.get()
    stage = line.stages.order_by("position")[1]
    Stage.objects.filter(pk=stage.pk).update(name="In conversation", is_default_name=True)
    data = plain_xlsx([["ФИО", "Этап"], ["Анна", "ведет общение"]])  # «Ведёт общение», any case, е for ё
    service_import(admin, data, {0: "name", 1: "deal_stage"}, deal_line=line)
    assert Deal.objects.get().stage_id == stage.pk


def test_mapping_rules_are_checked(admin_client, admin):
    upload(admin_client, plain_xlsx([["ФИО", "Имя", "Бюджет"], ["Анна", "Анна", "5"]]))
    job = ImportJob.objects.get()
    url = reverse("imports:map", args=[job.pk])
    page = admin_client.post(url, {"col_0": "city", "duplicates": "skip"}).content.decode()
    assert "Map a column to Full name" in page
    page = admin_client.post(url, {"col_0": "name", "col_1": "name", "duplicates": "skip"}).content.decode()
    assert "Each field can take one column only" in page
    page = admin_client.post(url, {"col_0": "name", "col_2": "deal_budget", "duplicates": "skip"}).content.decode()
    assert "Choose the funnel line for the deals" in page
    page = admin_client.post(url, {"col_0": "name", "col_1": "is_staff", "duplicates": "skip"}).content.decode()
    assert "Choose a field for each column from the list" in page
    assert ImportJob.objects.get().mapping == {}


def test_the_preview_names_unmapped_columns_and_row_problems(admin_client):
    upload(admin_client, plain_xlsx([["ФИО", "Заметки", "Телефон"], ["Анна", "что-то", "12"], ["Борис", "", "8 916 111-22-33"]]))
    job = ImportJob.objects.get()
    admin_client.post(reverse("imports:map", args=[job.pk]), {"col_0": "name", "col_1": "", "col_2": "phone", "duplicates": "skip"})
    page = admin_client.get(reverse("imports:preview", args=[job.pk])).content.decode()
    assert "Not imported (no field chosen):" in page and "Заметки" in page
    assert "“12” is not a phone number." in page


def test_the_report_lists_row_column_reason_and_the_failed_cells(admin_client, admin):
    from io import BytesIO

    from openpyxl import load_workbook

    job, _c, _p = wizard(admin_client, plain_xlsx([["ФИО", "Email"], ["Анна", "anna@x.ru"], ["Борис", "не почта"]]))
    response = admin_client.get(reverse("imports:report", args=[job.pk]))
    rows = list(load_workbook(BytesIO(b"".join(response.streaming_content))).active.iter_rows(values_only=True))
    assert rows[0][:5] == ("Row", "Outcome", "Column", "Reason", "Client ID") and rows[0][5:] == ("ФИО", "Email")
    assert rows[1][:3] == (2, "Created", None) and rows[1][4] == Client.objects.get().pk
    assert rows[2][:3] == (3, "Failed", "Email") and "“не почта” is not an e-mail address" in rows[2][3]
    assert rows[2][5:] == ("Борис", "не почта")


def test_counts_and_report_in_russian_say_created_not_date_of_creation(client, admin):
    from crm.models import User

    User.objects.filter(pk=admin.pk).update(language="ru")
    admin.refresh_from_db()
    client.force_login(admin)
    job, _c, _p = wizard(client, plain_xlsx([["ФИО"], ["Анна"]]))
    page = client.get(reverse("imports:job", args=[job.pk])).content.decode()
    assert "Создано" in page and "Дата создания" not in page


def test_import_pages_need_the_permission_and_are_the_importers_own(manager_client, manager, admin):
    assert manager_client.get(reverse("imports:upload")).status_code == 403
    assert upload(manager_client, plain_xlsx([["ФИО"], ["Анна"]])).status_code == 403
    assert not ImportJob.objects.exists()



def test_the_fast_path_for_russian_phones_agrees_with_phonenumbers():
    import random

    import phonenumbers

    from clients.phones import _russian

    def library(raw):
        try:
            number = phonenumbers.parse(raw, "RU")
        except phonenumbers.NumberParseException:
            return None
        ok = phonenumbers.is_possible_number(number)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if ok else None

    rnd = random.Random(5)
    checked = 0
    for _ in range(3000):
        d = rnd.choice("9993") + "".join(rnd.choice("0123456789") for _ in range(9))
        for raw in (f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}", f"+7 {d[:3]} {d[3:]}", "7" + d, "8" + d, d, "+" + d, d[:9]):
            fast = _russian(raw)
            if fast is not None:
                checked += 1
                assert fast == library(raw), raw
    assert checked > 10000


def test_several_emails_in_one_cell_keep_the_others_as_other_emails(admin):
    """1C puts every e-mail of a counterparty in one cell: the first is the e-mail, the others
    (any case, repeats dropped) the client's other e-mails; an update adds to those it has and
    undo puts them back; one part that is not an address fails the row, quoting it."""
    header = ["Контрагент", "Телефон", "Электронная почта"]
    rows = [
        ["Лукашенко Игорь", "+375 29 123-45-67", "igor@tut.by; IGOR2@tut.by, igor@tut.by"],
        ["Орлова Ольга", "", "olga@mail.ru  olga@mail.ru"],
        ["Смирнов Олег", "", "oleg@mail.ru;"],
        ["Петров Пётр", "", "petr@mail.ru; нет"],
    ]
    job = service_import(admin, csv_bytes(header, rows), {0: "name", 1: "phone", 2: "email"}, name="1c.csv")
    assert (job.created, job.failed) == (3, 1)
    assert Client.objects.get(name="Смирнов Олег").email == "oleg@mail.ru"
    failed = job.records.get(outcome="failed")
    assert (failed.row, failed.reason) == (5, "Электронная почта: “petr@mail.ru; нет” is not an e-mail address.")
    igor = Client.objects.get(name="Лукашенко Игорь")
    assert (igor.phone, igor.email, igor.extra_emails) == ("+375291234567", "igor@tut.by", ["igor2@tut.by"])
    assert Client.objects.get(name="Орлова Ольга").extra_emails == []

    update = [["Контрагент", "Электронная почта"], ["Игорь Лукашенко", "igor@tut.by, igor3@tut.by; Igor2@tut.by"]]
    job = service_import(admin, plain_xlsx(update), {0: "name", 1: "email"}, duplicates="update")
    igor.refresh_from_db()
    assert job.updated == 1 and igor.extra_emails == ["igor2@tut.by", "igor3@tut.by"]
    services.import_undo(actor=admin, job=job)
    igor.refresh_from_db()
    assert (igor.name, igor.extra_emails) == ("Лукашенко Игорь", ["igor2@tut.by"])


def test_a_name_in_parts_is_joined_last_name_first(client, admin):
    """Фамилия, Имя, Отчество in columns of their own (as 1C and amoCRM export contacts): the
    columns step guesses each part ("Имя" beside "Фамилия" is the first name), and the full name
    is made of the parts, last name first; a row with none of them fails for want of a name."""
    client.force_login(admin)
    header = ["Фамилия", "Имя", "Отчество", "Телефон"]
    rows = [
        ["Иванов", "Иван", "Иванович", "8 916 000-11-22"],
        ["Петрова\u00a0", " Анна", None, "+7 916 000-11-23"],
        [None, "Кристина", None, None],
        [None, None, None, "8 916 000-11-24"],
    ]
    job, columns, _preview = wizard(client, styled_xlsx(header, rows))
    assert selected(columns) == ["last_name", "first_name", "middle_name", "phone"]
    assert (job.created, job.failed) == (3, 1)
    assert sorted(Client.objects.values_list("name", flat=True)) == ["Иванов Иван Иванович", "Кристина", "Петрова Анна"]
    failed = job.records.get(outcome="failed")
    assert (failed.row, failed.column, failed.reason) == (5, "Фамилия", "Фамилия: the full name is required.")


def test_an_alone_first_name_column_is_the_full_name(client, admin):
    client.force_login(admin)
    job, columns, _preview = wizard(client, styled_xlsx(["Имя", "Телефон"], [["Сидоров Семён", "8 916 000-11-25"]]))
    assert selected(columns) == ["name", "phone"] and job.created == 1
    assert Client.objects.get().name == "Сидоров Семён"


def test_an_office_number_keeps_its_extension(client, admin):
    """"доб. 12" (or "ext. 12", "#12") after a number is the extension of an office line: kept
    with the number, shown in the reader's language, and two contacts on one switchboard are two
    clients, not duplicates; the search column holds the number alone."""
    header = ["ФИО", "Телефон"]
    rows = [
        ["Орлова Ольга", "+7 (495) 123-45-67 доб. 12"],
        ["Смирнов Олег", "8 495 123 45 67 доб 13; +7 916 000-11-22"],
        ["Петров Пётр", "+7 495 123-45-67 ext. 12"],  # Ольга's line again: skipped as her duplicate
        ["Лебедев Лев", "+7 495 123-45-67 доб. 12345678901"],  # too long to be an extension
    ]
    job = service_import(admin, csv_bytes(header, rows), {0: "name", 1: "phone"}, name="office.csv")
    assert (job.created, job.skipped, job.failed) == (2, 1, 1)
    olga, oleg = Client.objects.get(name="Орлова Ольга"), Client.objects.get(name="Смирнов Олег")
    assert (olga.phone, olga.phone_digits) == ("+74951234567;ext=12", "74951234567")
    assert (oleg.phone, oleg.extra_phones) == ("+74951234567;ext=13", ["+79160001122"])
    failed = job.records.get(outcome="failed")
    assert failed.row == 5 and "10" in failed.reason

    admin.language = "ru"
    admin.save(update_fields=["language"])
    client.force_login(admin)
    card = client.get(olga.get_absolute_url()).content.decode()
    assert 'href="tel:+74951234567;ext=12">+7 495 123-45-67 доб. 12</a>' in card
    card = client.get(oleg.get_absolute_url()).content.decode()
    assert '<a href="tel:+79160001122">+7 916 000-11-22</a>' in card  # the other phones are links too
    found = client.get(reverse("clients:list"), {"q": "495 123-45-67"}, headers={"HX-Request": "true"}).content.decode()
    assert "Орлова Ольга" in found and "Смирнов Олег" in found


def test_the_preview_tells_duplicates_and_the_finished_page_lists_what_was_not_imported(admin_client, admin):
    """The preview decides the first rows as the run will (reading only: nothing is written), so a
    row matching a client or an earlier row shows as skipped there; the finished import lists the
    rows it did not import with their reasons; undo asks first; the report is named after the file."""
    import re
    from io import BytesIO

    from openpyxl import load_workbook

    olga = ClientFactory(name="Орлова Ольга", phone="+79161234567")
    data = plain_xlsx([["ФИО", "Телефон"], ["Ольга О.", "8 916 123-45-67"], ["Пётр", "+7 916 000-00-01"],
                       ["Пётр П.", "89160000001"], ["", "+7 916 000-00-02"]])
    job, _columns, preview = wizard(admin_client, data, name="список.xlsx")
    steps = re.findall(r'<li (?:aria-current="step"|class="done")?>([^<]+)</li>', preview.split('class="wizard-steps"')[1])
    assert preview.count('<li class="done">') == 3 and 'aria-current="step">Preview<' in preview, steps  # the steps behind are done
    outcomes = re.findall(r'<tr class="outcome-(\w+)">', preview)
    assert outcomes == ["skipped", "created", "skipped", "failed"]
    assert f"Already there: client #{olga.pk} “Орлова Ольга”." in preview
    assert "Already there: client “Пётр” (row 3 of this file)." in preview  # not written yet: no id
    assert (job.created, job.skipped, job.failed) == (1, 2, 1)

    page = admin_client.get(reverse("imports:job", args=[job.pk])).content.decode()
    listed = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td><td class=\"wrap\">", page)
    assert listed == [("2", "Skipped"), ("4", "Skipped"), ("5", "Failed")]
    assert page.count('<li class="done">') == 5 and 'aria-current="step"' not in page  # finished: every step done
    assert "Undo the import…" in page and "The 1 client this import created" not in page
    assert "The client this import created is deleted (with its deals) and the 0 it updated" in page

    response = admin_client.get(reverse("imports:report", args=[job.pk]))
    from urllib.parse import quote

    assert response["Content-Disposition"].endswith("filename*=utf-8''" + quote("список — import report.xlsx"))
    book = load_workbook(BytesIO(b"".join(response.streaming_content)))
    assert book.sheetnames == ["Import report"]


def test_undo_is_not_offered_when_the_import_changed_nothing(admin_client, admin):
    ClientFactory(name="Орлова Ольга", phone="+79161234567")
    job, _columns, _preview = wizard(admin_client, plain_xlsx([["ФИО", "Телефон"], ["Ольга", "89161234567"]]))
    assert (job.created, job.updated, job.skipped) == (0, 0, 1)
    page = admin_client.get(reverse("imports:job", args=[job.pk])).content.decode()
    assert "Undo the import" not in page and "Download the report" in page


@pytest.mark.parametrize(("typed", "stored"), [
    ("+7 (495) 123-45-67 вн. 12", "+74951234567;ext=12"),
    ("8 495 123 45 67 внутр.7", "+74951234567;ext=7"),
    ("+7 495 123-45-67 добавочный 345", "+74951234567;ext=345"),
    ("+7 495 123-45-67 #5", "+74951234567;ext=5"),
    ("'+7 916 123-45-67", "+79161234567"),  # a text cell with Excel's leading apostrophe
    ("tel:+79161234567", "+79161234567"),
])
def test_extensions_and_prefixes_as_people_type_them(typed, stored):
    from clients.phones import normalize_phone

    assert normalize_phone(typed) == stored
