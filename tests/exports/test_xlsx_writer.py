"""crm.xlsx.write_xlsx: the workbook our exports write, read back by openpyxl and by python-calamine
(the reader the import uses), cell by cell."""

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from openpyxl.utils.escape import unescape
from python_calamine import CalamineWorkbook

from crm.xlsx import write_xlsx

HEADER = ["Имя", "Телефон", "Сумма", "Дата", "Изменён", "Примечание"]
ROWS = [
    ["Анна Петрова", "+7 916 123-45-67", 1500, date(2026, 3, 8), datetime(2026, 12, 3, 14, 5), "A & B <b>ok</b>"],
    ["Bob", "", Decimal("12.50"), None, None, "  leading and trailing  "],
    ["=HYPERLINK(\"http://x\")", "@SUM(A1)", 0, date(1900, 3, 1), datetime(2026, 1, 1, 0, 0), "line one\nline two"],
    ["_x0041_ stays text", "-1", 3.25, None, None, "tab\tinside"],
]


def workbook(rows=ROWS, header=HEADER) -> bytes:
    out = io.BytesIO()
    assert write_xlsx(out, header=header, rows=iter(rows)) == len(rows)
    return out.getvalue()


def test_openpyxl_reads_every_cell_with_its_type():
    book = load_workbook(io.BytesIO(workbook()))
    sheet = book.active
    cells = [list(row) for row in sheet.iter_rows()]
    assert [c.value for c in cells[0]] == HEADER
    anna = cells[1]
    assert [c.value for c in anna] == ["Анна Петрова", "+7 916 123-45-67", 1500, datetime(2026, 3, 8),
                                       datetime(2026, 12, 3, 14, 5), "A & B <b>ok</b>"]
    assert anna[1].quotePrefix is True and anna[0].quotePrefix is False  # "+7 …" shown as typed, never a formula
    assert anna[3].number_format == "dd.mm.yyyy" and anna[4].number_format == "dd.mm.yyyy hh:mm"
    bob = cells[2]
    assert bob[1].value is None and bob[3].value is None  # empty cells are left out
    assert bob[2].value == 12.5 and bob[5].value == "  leading and trailing  "
    formula = cells[3]
    assert formula[0].data_type == "s" and formula[0].value == '=HYPERLINK("http://x")' and formula[0].quotePrefix
    assert formula[1].value == "@SUM(A1)" and formula[1].quotePrefix
    assert formula[3].value == datetime(1900, 3, 1) and formula[4].value == datetime(2026, 1, 1, 0, 0)
    assert formula[5].value == "line one\nline two"
    last = cells[4]
    assert unescape(last[0].value) == "_x0041_ stays text"  # a literal escape-like text is not decoded
    assert last[1].value == "-1" and last[1].data_type == "s" and last[1].quotePrefix
    assert last[2].value == 3.25 and last[5].value == "tab\tinside"
    assert sheet.freeze_panes == "A2"  # the header stays in view


def test_calamine_reads_the_same_values():
    rows = CalamineWorkbook.from_filelike(io.BytesIO(workbook())).get_sheet_by_index(0).to_python()
    assert rows[0] == HEADER
    assert rows[1][:3] == ["Анна Петрова", "+7 916 123-45-67", 1500]
    assert rows[1][3] == date(2026, 3, 8) and rows[1][4] == datetime(2026, 12, 3, 14, 5)
    assert rows[4][0] == "_x0041_ stays text"


def test_a_carriage_return_and_non_characters_survive_as_excel_escapes():
    data = workbook(rows=[["a\rb", "x\ufffey"]], header=["one", "two"])
    cells = list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))[1]
    assert [unescape(v) for v in cells] == ["a\rb", "x\ufffey"]


def test_an_export_without_rows_is_a_header_and_a_valid_package():
    data = workbook(rows=[])
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.testzip() is None
        assert {"[Content_Types].xml", "xl/workbook.xml", "xl/styles.xml", "xl/worksheets/sheet1.xml"} <= set(package.namelist())
    assert list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)) == [tuple(HEADER)]


@pytest.mark.parametrize("columns", [1, 26, 27, 53, 703])
def test_column_letters_past_z(columns):
    header = [f"c{i}" for i in range(columns)]
    sheet = load_workbook(io.BytesIO(workbook(rows=[list(range(columns))], header=header))).active
    assert sheet.max_column == columns
    assert sheet.cell(row=2, column=columns).value == columns - 1
