"""Excel output that is safe to open: text is always text, never a formula; memory bounded."""

import tempfile
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter
from django.http import FileResponse
from django.utils import timezone
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

# A cell a spreadsheet would read as a formula or a command (OWASP "CSV injection").
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


def plain_value(value):
    """A value as a spreadsheet shows it: numbers and dates stay typed, datetimes local and naive."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, (int, float, Decimal, date)):
        return value
    return str(value)


def clean_text(value: str) -> str:
    """Text without the control characters an .xlsx may not hold (tab and newlines are kept)."""
    if value.isprintable():  # most cells: only then can it hold control characters
        return value
    return ILLEGAL_CHARACTERS_RE.sub("", value)


class SafeSheet:
    """Rows into an XlsxWriter worksheet, every value typed as it should be read.

    Text is always written as text (write_string), so "=…" is never a formula and "#N/A" never an
    error. Text that starts like a formula gets Excel's quotePrefix style instead of a literal
    apostrophe: the cell holds the exact text ("+7 916 …"), and Excel shows it without ever
    evaluating it. Numbers stay numbers; dates and date-times are real dates, in the reader's zone.
    """

    def __init__(self, book, sheet):
        self.sheet = sheet
        self.quoted = book.add_format({"quote_prefix": True})
        self.day = book.add_format({"num_format": "dd.mm.yyyy"})
        self.moment = book.add_format({"num_format": "dd.mm.yyyy hh:mm"})
        self.row = 0

    def append(self, values) -> None:
        sheet, row = self.sheet, self.row
        for column, raw in enumerate(values):
            value = raw if type(raw) is str else plain_value(raw)
            if isinstance(value, str):
                if value:
                    value = clean_text(value)
                    if value.startswith(DANGEROUS_START):
                        sheet.write_string(row, column, value, self.quoted)
                    else:
                        sheet.write_string(row, column, value)
            elif isinstance(value, datetime):
                sheet.write_datetime(row, column, value, self.moment)
            elif isinstance(value, date):
                sheet.write_datetime(row, column, value, self.day)
            else:
                sheet.write_number(row, column, value)
        self.row += 1


XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SPOOL_BYTES = 8 * 1024 * 1024  # a small workbook stays in memory; a larger one goes to a temporary file


def write_xlsx(out, *, header: list[str], rows) -> int:
    """Write rows (an iterator, read once) into a workbook saved to `out`; the row count.

    XlsxWriter in constant-memory mode writes each row out as soon as the next one starts, text as
    inline strings (no shared-strings table in memory): memory stays flat whatever the number of
    rows, and it writes about twice as fast as openpyxl's write-only mode."""
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False, "tmpdir": tempfile.gettempdir(),
                                     "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = SafeSheet(book, book.add_worksheet())
    sheet.append(header)
    count = 0
    for row in rows:
        sheet.append(row)
        count += 1
    book.close()
    return count


def xlsx_response(*, filename: str, header: list[str], rows) -> FileResponse:
    """Write rows (an iterator) in write-only mode to a spooled temporary file, then stream that file."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    write_xlsx(spool, header=header, rows=rows)
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)
