"""Excel output that is safe to open: formula injection neutralised, memory bounded."""

import tempfile
from datetime import date, datetime
from decimal import Decimal

from django.http import FileResponse
from django.utils import timezone
from openpyxl import Workbook

# A cell a spreadsheet would read as a formula or a command (OWASP "CSV injection").
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, (int, float, Decimal, date)):
        return value
    text = str(value)
    if text.startswith(DANGEROUS_START):
        return "'" + text
    return text


def xlsx_response(*, filename: str, header: list[str], rows) -> FileResponse:
    """Write rows (an iterator) in write-only mode to a temporary file, then stream that file."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([safe_cell(h) for h in header])
    for row in rows:
        sheet.append([safe_cell(v) for v in row])
    spool = tempfile.TemporaryFile()
    book.save(spool)
    spool.seek(0)
    response = FileResponse(spool, as_attachment=True, filename=filename,
                            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return response
