"""CSV output that Excel opens as the user expects: BOM, their list separator, formula injection neutralised."""

import csv
from datetime import date, datetime
from decimal import Decimal
from itertools import islice

from django.http import StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header

from crm.xlsx import DANGEROUS_START, plain_value

BATCH = 500  # rows per streamed chunk


class _Echo:
    """A file for csv.writer that hands each formatted line back instead of keeping it."""

    def write(self, line):
        return line


def csv_text(value, *, decimal_sep: str = ".") -> str:
    """One cell as text; text that a spreadsheet would evaluate gets a leading apostrophe (OWASP)."""
    value = plain_value(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f").replace(".", decimal_sep)  # never "1E+3"
    if isinstance(value, float):
        return str(value).replace(".", decimal_sep)
    if value.startswith(DANGEROUS_START):
        return "'" + value
    return value


def csv_chunks(*, header: list[str], rows, language: str):
    """The CSV text, BATCH rows at a time: UTF-8 with a BOM; Russian gets ";" and decimal commas, like its Excel."""
    russian = language.startswith("ru")
    delimiter, decimal_sep = (";", ",") if russian else (",", ".")
    zone = timezone.get_current_timezone()  # now: a streamed body is read after the middleware reset it
    writer = csv.writer(_Echo(), delimiter=delimiter)

    def chunks():
        yield "\ufeff" + writer.writerow([csv_text(h) for h in header])
        rows_left = iter(rows)
        while True:
            # A streamed body is read after the view returned and the middleware reset the language
            # and the zone: labels and local times need them back, only while this chunk is made.
            with translation.override(language), timezone.override(zone):
                lines = [writer.writerow([csv_text(v, decimal_sep=decimal_sep) for v in row])
                         for row in islice(rows_left, BATCH)]
            if not lines:
                return
            yield "".join(lines)

    return chunks()


def csv_response(*, filename: str, header: list[str], rows, language: str) -> StreamingHttpResponse:
    """Stream rows (an iterator) as CSV, chunk by chunk as they are read."""
    response = StreamingHttpResponse(csv_chunks(header=header, rows=rows, language=language),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response


def write_csv(out, *, header: list[str], rows, language: str) -> None:
    """The same CSV written to a binary file (an export run by the worker)."""
    for chunk in csv_chunks(header=header, rows=rows, language=language):
        out.write(chunk.encode("utf-8"))
