"""Read: what an uploaded client list holds, whatever it is called.

The content decides the format (an .xlsx workbook or a CSV text), never the name. A workbook is
checked as a zip before any spreadsheet library opens it: declared sizes and ratio (zip bombs),
every part inflated once within its declared size and CRC (lying headers, truncation), XML entity
declarations, macros, encryption. Then python-calamine reads it (openpyxl only where calamine
cannot); a sheet too big to hold in memory is streamed by `XlsxStream`. CSV: the encoding is
detected (UTF-8 with or without BOM, else charset-normalizer: Windows-1251 and the like), the
separator sniffed among , ; and tab.

Every reader yields rows as lists of cell values (str, int, float, bool, date, datetime or None)
with the spreadsheet's own row numbers, so a report names the row a user sees in Excel.
"""

import codecs
import csv
import re
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from itertools import chain
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from python_calamine import CalamineSheet, CalamineWorkbook

MAX_BYTES = 100 * 1024 * 1024  # DESIGN §6
MAX_DATA_ROWS = 1_048_575  # Excel's 1,048,576 rows, less the header
MAX_COLUMNS = 100
MAX_CELL = 5000
MAX_UNPACKED = 4 * 1024 * 1024 * 1024  # what a 100 MB workbook may declare in all
MAX_RATIO = 200  # a part inflating more than this is a zip bomb
STREAM_ABOVE = 150 * 1024 * 1024  # a sheet's XML above this is streamed, not loaded whole
CHUNK = 1024 * 1024


class ImportRefused(ValidationError):
    """The file (or sheet) cannot be imported: the message says why, in the user's language."""


def damaged() -> ImportRefused:
    return ImportRefused(_("The file is damaged or incomplete (a download cut short?): save it again and upload it."))


# Sniffing -------------------------------------------------------------------------------------


def sniff(path) -> str:
    """'xlsx' or 'csv' by the file's content; anything else is refused."""
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head:
        raise ImportRefused(_("The file is empty."))
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRefused(_("This is an encrypted workbook or an old .xls file: save it as a plain .xlsx or .csv."))
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "xlsx"
    if head.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf", b"MZ")) or b"\x00" in head:
        raise ImportRefused(_("This file is neither an Excel workbook (.xlsx) nor a CSV file."))
    if MARKUP.match(head):
        # Bitrix24's "Export to Excel" is an HTML table named .xls; 1C and old Excel write "XML
        # Spreadsheet 2003": read as CSV they would give nonsense columns.
        raise ImportRefused(_("This file is a web page or an XML file saved with a spreadsheet's extension: open it in Excel and save it as .xlsx or .csv."))
    return "csv"


# A file that begins (after a byte-order mark and blanks) with markup: <html, <table, <!DOCTYPE, <?xml, <meta…
MARKUP = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<(?:!doctype|html|head|body|table|meta|\?xml|\?mso|workbook|style)\b", re.IGNORECASE)


# Workbooks ------------------------------------------------------------------------------------


def check_xlsx(path) -> None:
    """Refuse, with a message for the user, anything that is not a plain, sane .xlsx. Memory stays
    bounded: parts are inflated in 1 MB steps and never kept."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise damaged() from None
    with archive:
        infos = archive.infolist()
        names = {info.filename for info in infos}
        if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
            raise ImportRefused(_("This file is not an Excel workbook (.xlsx), though its name says so."))
        if any(name.lower().endswith("vbaproject.bin") for name in names):
            raise ImportRefused(_("Workbooks with macros are not accepted: save it as a plain .xlsx."))
        if any(info.flag_bits & 0x1 for info in infos):
            raise ImportRefused(_("This is an encrypted workbook or an old .xls file: save it as a plain .xlsx or .csv."))
        if any(info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for info in infos):
            raise damaged()  # Excel writes stored or deflated parts only
        declared = sum(info.file_size for info in infos)
        if declared > MAX_UNPACKED or any(
            info.file_size > 1_000_000 and info.file_size > MAX_RATIO * max(info.compress_size, 1) for info in infos
        ):
            raise ImportRefused(_("The file unpacks to far more than it weighs (a zip bomb): refused."))
        for info in infos:
            _inflate_checked(archive, info)


def _inflate_checked(archive, info) -> None:
    """Inflate one part within its declared size, checking its CRC (zipfile does both); look for
    entity declarations at the start of every XML part and for a macro-enabled content type."""
    xml = info.filename.endswith((".xml", ".rels", ".vml"))
    try:
        with archive.open(info) as part:
            start = part.read(4096)
            if xml and (b"<!DOCTYPE" in start or b"<!ENTITY" in start):
                raise ImportRefused(_("The file contains XML entity declarations: refused."))
            if info.filename == "[Content_Types].xml" and b"macroEnabled" in start + part.read():
                raise ImportRefused(_("Workbooks with macros are not accepted: save it as a plain .xlsx."))
            while part.read(CHUNK):
                pass
    except ImportRefused:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError):
        raise damaged() from None


class XlsxReader:
    """python-calamine over a checked workbook; openpyxl where calamine cannot read it."""

    book: "CalamineWorkbook | None"  # None where calamine cannot read it

    def __init__(self, path) -> None:
        self.path = path
        self._loaded: dict[str, CalamineSheet | None] = {}
        try:
            from python_calamine import CalamineWorkbook

            self.book = CalamineWorkbook.from_path(str(path))
            self.names = [m.name for m in self.book.sheets_metadata if str(m.typ).endswith("WorkSheet")] or list(self.book.sheet_names)
        except Exception:  # whatever calamine trips on, openpyxl gets a try
            self.book = None
            self.names = self._openpyxl_names()

    def _sheet(self, name: str):
        """calamine's whole sheet, loaded once per reader (None where calamine cannot read it)."""
        if name not in self._loaded:
            try:
                self._loaded[name] = self.book.get_sheet_by_name(name) if self.book is not None else None
            except Exception:  # openpyxl gets a try
                self._loaded[name] = None
        return self._loaded[name]

    def _openpyxl_names(self) -> list[str]:
        from openpyxl import load_workbook

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except Exception:  # neither library can read it
            raise damaged() from None
        try:
            return list(book.sheetnames)
        finally:
            book.close()

    def sheet_names(self) -> list[str]:
        return self.names

    def rows(self, sheet: str, *, first_only: bool = False) -> Iterator[tuple[int, list]]:
        """The sheet's rows. `first_only` (the wizard's samples) streams from the top instead of
        loading the whole sheet: the columns step of a 100 MB file answers at once."""
        if sheet not in self.names:
            raise ImportRefused(_("Choose a sheet of the file."))
        part = sheet_part(self.path, self.names.index(sheet))
        if part is not None and (first_only or part.file_size > STREAM_ABOVE):
            yield from XlsxStream(self.path, part.filename).rows()
            return
        if self.book is not None:
            data = self._sheet(sheet)
            if data is not None:
                first_row, first_col = data.start or (0, 0)
                pad = [None] * first_col
                for number, cells in enumerate(data.iter_rows(), start=first_row + 1):
                    yield number, pad + [None if c == "" else c for c in cells]
                return
        yield from self._openpyxl_rows(sheet)

    def last_row(self, sheet: str) -> int | None:
        """The sheet's last row number as the file declares it, without reading the rows."""
        part = sheet_part(self.path, self.names.index(sheet))
        if self.book is not None and (part is None or part.file_size <= STREAM_ABOVE):
            data = self._sheet(sheet)
            return data.end[0] + 1 if data is not None and data.end else None
        if part is None:
            return None
        with zipfile.ZipFile(self.path) as archive, archive.open(part) as handle:
            match = re.search(rb'<(?:\w+:)?dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', handle.read(4096))
        return int(match.group(1)) if match else None

    def _openpyxl_rows(self, sheet):
        from openpyxl import load_workbook

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
            rows = book[sheet].iter_rows()
            for row in rows:
                cells = [c.value for c in row if hasattr(c, "column")]
                if not row or not cells:
                    continue
                number = getattr(row[0], "row", None)
                width = max(getattr(c, "column", 0) for c in row)
                values = [None] * width
                for cell in row:
                    if hasattr(cell, "column"):
                        values[cell.column - 1] = cell.value
                yield number, values
            book.close()
        except ImportRefused:
            raise
        except Exception:
            raise damaged() from None

    def close(self) -> None:
        if self.book is not None:
            self.book.close()


def sheet_part(path, index: int):
    """The zip entry of the workbook's index-th sheet (by workbook.xml and its relationships)."""
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = archive.read("xl/workbook.xml").decode("utf-8", "replace")
            rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
            ids = re.findall(r'<(?:\w+:)?sheet\b[^>]*?\br:id="([^"]+)"', workbook) or re.findall(r'<(?:\w+:)?sheet\b[^>]*?\bid="([^"]+)"', workbook)
            targets = dict(
                (m.group(2), m.group(1)) for m in re.finditer(r'<Relationship\b[^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"', rels)
            )
            targets.update((m.group(1), m.group(2)) for m in re.finditer(r'<Relationship\b[^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"', rels))
            target = targets.get(ids[index]) if index < len(ids) else None
            if not target:
                return None
            name = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            return archive.getinfo(name)
    except (KeyError, IndexError, zipfile.BadZipFile, OSError):
        return None


# Excel's built-in number formats that are dates or times.
DATE_FORMATS = set(range(14, 23)) | {45, 46, 47}
DATE_TOKENS = re.compile(r"[dmyhs]", re.I)


_COLUMNS: dict[str, int] = {}


def _column_index(ref: str) -> int:
    """ "C12" → 2 (memoised by letters: a million-row sheet asks ten million times)."""
    letters = ref.rstrip("0123456789")
    index = _COLUMNS.get(letters)
    if index is None:
        index = 0
        for letter in letters:
            index = index * 26 + ord(letter) - 64
        index = _COLUMNS.setdefault(letters, index - 1)
    return index


class XlsxStream:
    """A sheet read row by row from the zip (expat, constant memory) for sheets too large to load
    whole: shared strings, inline strings, numbers, booleans and date-formatted numbers."""

    def __init__(self, path, part: str):
        self.path, self.part = path, part

    def _styles(self, archive) -> tuple[list[bool], bool]:
        from xml.parsers import expat

        date_styles: list[bool] = []
        custom: dict[int, bool] = {}
        state = {"xfs": False}

        def start(tag, attrs):
            tag = tag.rsplit(":", 1)[-1]
            if tag == "numFmt":
                code = re.sub(r'"[^"]*"|\[[^\]]*\]', "", attrs.get("formatCode", ""))
                custom[int(attrs.get("numFmtId", 0))] = bool(DATE_TOKENS.search(code))
            elif tag == "cellXfs":
                state["xfs"] = True
            elif tag == "xf" and state["xfs"]:
                fmt = int(attrs.get("numFmtId", 0))
                date_styles.append(custom.get(fmt, fmt in DATE_FORMATS))

        def end(tag):
            if tag.rsplit(":", 1)[-1] == "cellXfs":
                state["xfs"] = False

        if "xl/styles.xml" in archive.namelist():
            parser = expat.ParserCreate()
            parser.StartElementHandler, parser.EndElementHandler = start, end
            parser.Parse(archive.read("xl/styles.xml"), True)
        workbook = archive.read("xl/workbook.xml")
        return date_styles, b'date1904="1"' in workbook or b"date1904='1'" in workbook or b'date1904="true"' in workbook

    def _shared(self, archive) -> list[str]:
        from xml.parsers import expat

        strings: list[str] = []
        if "xl/sharedStrings.xml" not in archive.namelist():
            return strings
        parts: list[str] = []
        state = {"in_t": False, "skip": 0}

        def start(tag, attrs):
            tag = tag.rsplit(":", 1)[-1]
            if tag in ("rPh", "phoneticPr"):
                state["skip"] += 1
            elif tag == "t" and not state["skip"]:
                state["in_t"] = True

        def end(tag):
            tag = tag.rsplit(":", 1)[-1]
            if tag == "si":
                strings.append("".join(parts))
                parts.clear()
            elif tag == "t":
                state["in_t"] = False
            elif tag in ("rPh", "phoneticPr"):
                state["skip"] -= 1

        def text(data):
            if state["in_t"]:
                parts.append(data)

        parser = expat.ParserCreate()
        parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
        with archive.open("xl/sharedStrings.xml") as handle:
            parser.ParseFile(handle)
        return strings

    def rows(self) -> Iterator[tuple[int, list]]:
        from xml.parsers import expat

        try:
            archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError):
            raise damaged() from None
        with archive:
            date_styles, date1904 = self._styles(archive)
            shared = self._shared(archive)
            epoch = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
            ready: list[tuple[int, list]] = []
            row: dict = {"n": 0, "cells": {}}
            cell: dict = {}
            text: list[str] = []

            def start(tag, attrs):
                if ":" in tag:
                    tag = tag.rsplit(":", 1)[-1]
                if tag == "row":
                    row["n"] = int(attrs.get("r") or row["n"] + 1)
                    row["cells"] = {}
                    row["next"] = 0
                elif tag == "c":
                    ref = attrs.get("r")
                    cell.clear()
                    cell.update(col=_column_index(ref) if ref else row["next"], t=attrs.get("t", "n"), s=int(attrs.get("s", 0)))
                    row["next"] = cell["col"] + 1
                    text.clear()
                elif tag in ("v", "t"):
                    text.clear()
                    cell["reading"] = True

            def end(tag):
                if ":" in tag:
                    tag = tag.rsplit(":", 1)[-1]
                if tag in ("v", "t") and cell.get("reading"):
                    cell["reading"] = False
                    cell["raw"] = cell.get("raw", "") + "".join(text)
                elif tag == "c":
                    raw = cell.get("raw")
                    if raw is not None:
                        row["cells"][cell["col"]] = _xlsx_value(raw, cell["t"], cell["s"], shared, date_styles, epoch)
                elif tag == "row":
                    cells = row["cells"]
                    if cells:
                        values = [None] * (max(cells) + 1)
                        for index, value in cells.items():
                            values[index] = value
                        ready.append((row["n"], values))

            def chars(data):
                if cell.get("reading"):
                    text.append(data)

            parser = expat.ParserCreate()
            parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, chars
            parser.buffer_text = True
            try:
                with archive.open(self.part) as handle:
                    while block := handle.read(CHUNK):
                        parser.Parse(block, False)
                        yield from ready
                        ready.clear()
                    parser.Parse(b"", True)
                    yield from ready
            except expat.ExpatError:
                raise damaged() from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
                raise damaged() from None


def _xlsx_value(raw: str, kind: str, style: int, shared, date_styles, epoch):
    if kind == "s":
        return shared[int(raw)] if raw.isdigit() and int(raw) < len(shared) else None
    if kind in ("str", "inlineStr"):
        return raw
    if kind == "b":
        return raw == "1"
    if kind == "e":
        return None
    if kind == "d":
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            return raw
    try:
        number = float(raw)
    except ValueError:
        return raw
    if style < len(date_styles) and date_styles[style]:
        moment = epoch + timedelta(days=number)
        return moment.date() if number == int(number) else moment
    return int(number) if number.is_integer() and "e" not in raw.lower() and "." not in raw else number


# CSV ------------------------------------------------------------------------------------------


def detect_encoding(path) -> str:
    """UTF-8 (with or without BOM) when the text is valid UTF-8, else charset-normalizer's guess."""
    with open(path, "rb") as handle:
        sample = handle.read(256 * 1024)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 4:  # a character cut by the sample's end
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(sample, cp_isolation=["cp1251", "koi8_r", "cp866", "mac_cyrillic", "cp1252", "latin_1", "utf_16"]).best()
    if best is None:
        raise ImportRefused(_("This file is neither an Excel workbook (.xlsx) nor a CSV file."))
    return best.encoding


class CsvReader:
    """A CSV text, streamed; one "sheet"."""

    def __init__(self, path):
        self.path = path
        self.encoding = detect_encoding(path)
        self.delimiter = self._delimiter()

    def _open(self):
        return open(self.path, encoding=self.encoding, errors="strict", newline="")

    def _delimiter(self) -> str:
        try:
            with self._open() as handle:
                sample = handle.read(64 * 1024)
        except UnicodeDecodeError:
            raise ImportRefused(_("The file's text encoding could not be read: save it as UTF-8 or Windows-1251 CSV.")) from None
        lines = [line for line in sample.splitlines() if line.strip()][:20]
        if not lines:
            return ","
        try:
            return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t").delimiter
        except csv.Error:
            counts = {d: lines[0].count(d) for d in ",;\t"}
            return max(counts, key=counts.__getitem__) if max(counts.values()) else ","

    def sheet_names(self) -> list[str]:
        return ["CSV"]

    def rows(self, sheet: str = "CSV", *, first_only: bool = False) -> Iterator[tuple[int, list]]:
        csv.field_size_limit(MAX_CELL * 20)
        try:
            with self._open() as handle:
                reader = csv.reader(handle, delimiter=self.delimiter)
                # Numbered by record, as Excel shows the file: a quoted cell with line breaks is one row.
                for number, cells in enumerate(reader, start=1):
                    yield number, [c if c != "" else None for c in cells]
        except UnicodeDecodeError:
            raise ImportRefused(_("The file's text encoding could not be read: save it as UTF-8 or Windows-1251 CSV.")) from None
        except csv.Error:
            raise damaged() from None

    def last_row(self, sheet: str = "CSV") -> int:
        last = 0
        for number, _cells in self.rows(sheet):
            last = number
        return last

    def close(self) -> None:
        pass


def open_reader(path, fmt: str):
    return CsvReader(path) if fmt == "csv" else XlsxReader(path)


# The table inside a sheet ---------------------------------------------------------------------


def is_empty(cells) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def split_header(rows: Iterator[tuple[int, list]]) -> tuple[int, list[str], Iterator[tuple[int, list]]]:
    """(the header's row number, its texts, the data rows after it). The header is the first row
    with two or more filled cells among the first ten filled rows (a title line above the table,
    "Клиенты на 01.12", is passed over), or the first filled row of a one-column list."""
    rows = iter(rows)
    seen: list[tuple[int, list]] = []
    header_at = None
    for number, cells in rows:
        if is_empty(cells):
            continue
        seen.append((number, cells))
        if sum(1 for c in cells if not (c is None or (isinstance(c, str) and not c.strip()))) >= 2:
            header_at = len(seen) - 1
            break
        if len(seen) >= 10:
            break
    if not seen:
        raise ImportRefused(_("The sheet is empty: there is nothing to import."))
    if header_at is None:
        header_at = 0
    number, cells = seen[header_at]
    return number, header_texts(cells), chain(seen[header_at + 1:], rows)


def header_texts(cells) -> list[str]:
    if len(cells) > MAX_COLUMNS:
        width = max(i for i, c in enumerate(cells) if c not in (None, "")) + 1
        if width > MAX_COLUMNS:
            raise ImportRefused(_("The sheet has %(n)s columns; at most %(max)s can be imported.") % {"n": width, "max": MAX_COLUMNS})
        cells = cells[:width]
    return [cell_text(c) for c in cells]


def cell_text(value) -> str:
    """A cell as trimmed text: no-break and other odd spaces count as spaces; 5.0 reads "5"."""
    if value is None:
        return ""
    if type(value) is str:
        return value.strip() if value.isascii() else clean_spaces(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() != time() else value.date().isoformat()
    if isinstance(value, (date, time, timedelta)):
        return str(value)
    return clean_spaces(str(value))


ODD_SPACES = re.compile(r"[\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]")


def clean_spaces(text: str) -> str:
    return ODD_SPACES.sub(" ", text).strip()


def sample_rows(reader, sheet: str, limit: int) -> tuple[list[str], list[tuple[int, list]]]:
    """The header and the first `limit` data rows (for the mapping and preview steps)."""
    _number, headers, rows = split_header(reader.rows(sheet, first_only=True))
    picked = []
    for number, cells in rows:
        if is_empty(cells):
            continue
        picked.append((number, cells))
        if len(picked) >= limit:
            break
    return headers, picked

