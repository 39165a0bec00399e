"""Excel output that is safe to open: text is always text, never a formula; memory bounded."""

import tempfile
from datetime import date, datetime
from decimal import Decimal

from django.http import FileResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

# A cell a spreadsheet would read as a formula or a command (OWASP "CSV injection").
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
_ERROR_CODES = frozenset(ERROR_CODES)


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


def safe_cell(sheet, value):
    """A typed value as is; text as a text cell, so "=…" is never a formula nor "#N/A" an error.

    Text that starts like a formula gets Excel's quotePrefix style instead of a literal apostrophe:
    the cell holds the exact text ("+7 916 …"), and Excel shows it without ever evaluating it.
    """
    if type(value) is not str:  # text first: most cells of an export are (a million per 100,000 clients)
        value = plain_value(value)
        if not isinstance(value, str):
            return value
    if not value.isprintable():  # only then can it hold control characters openpyxl refuses to write
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    dangerous = value.startswith(DANGEROUS_START)
    if not dangerous and value not in _ERROR_CODES:
        return value  # plain text: openpyxl writes it as a text cell (a cell object per value costs 60% more time)
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # openpyxl guessed "f" for "=…" and "e" for "#N/A"
    cell.quotePrefix = dangerous
    return cell


XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SPOOL_BYTES = 8 * 1024 * 1024  # a small workbook stays in memory; a larger one goes to a temporary file


def write_xlsx(out, *, header: list[str], rows) -> int:
    """Write rows (an iterator, read once) into a write-only workbook saved to `out`; the row count.

    openpyxl's write-only sheet writes each row to its own temporary file as it is appended, and
    text goes out as inline strings (no shared-strings table in memory): memory stays flat
    whatever the number of rows."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([safe_cell(sheet, h) for h in header])
    count = 0
    for row in rows:
        sheet.append([safe_cell(sheet, v) for v in row])
        count += 1
    book.save(out)
    return count


def xlsx_response(*, filename: str, header: list[str], rows) -> FileResponse:
    """Write rows (an iterator) in write-only mode to a spooled temporary file, then stream that file."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    write_xlsx(spool, header=header, rows=rows)
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)
