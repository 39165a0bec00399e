"""Client lists as staff really have them, written from DESIGN §6 and seed 002 (not from what the
code accepts): a styled header with frozen panes, Russian or English headers, mixed phone formats
(the Russian leading 8, +7, 7…, ten digits), names in either word order, empty optional cells,
date cells, a Source column, tags with repeats; CSV from 1C and Excel; and hostile files."""

import csv
import io
import random
import re
import struct
import zipfile
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

FIRST = ["Иван", "Ольга", "Пётр", "Анна", "Сергей", "Мария", "Егор", "Дарья", "John", "Emily"]
LAST = ["Иванов", "Смирнова", "Кузнецов", "Попова", "Назаров", "Волкова", "Соколов", "Орлова", "Smith", "Brown"]
SOURCES = ["Cold call", "Авито", "Выставка", "Сайт", "Рекомендация"]
CITIES = ["Москва", "Казань", "Тула", "Омск", "Пермь"]


def phone_formats(n: int) -> list[str]:
    """The same kind of number written as people write it (each a distinct Russian mobile)."""
    digits = f"916{n:07d}"
    return [
        f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        f"+7 {digits[:3]} {digits[3:6]} {digits[6:8]} {digits[8:]}",
        f"7{digits}",
        f"8{digits}",
        f"{digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        f"+7({digits[:3]}){digits[3:]}",
    ]


def e164(n: int) -> str:
    return f"+7916{n:07d}"


def clean_list(rows: int = 200, seed: int = 7):
    """A clean ordinary list: 15 rows without e-mail, 31 without company, 34 with empty tags (as
    the issue found them), names in both orders, a Source column, a real date column. Returns the
    header and the rows (cell values as a spreadsheet holds them)."""
    rnd = random.Random(seed)
    no_email = set(rnd.sample(range(rows), 15))
    no_company = set(rnd.sample(range(rows), 31))
    no_tags = set(rnd.sample(range(rows), 34))
    header = ["ФИО", "Телефон", "E-mail", "Компания", "Город", "Источник", "Теги", "Дата регистрации"]
    body = []
    for i in range(rows):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 3) % len(LAST)]
        name = f"{last} {first}" if i % 2 else f"{first} {last}"
        phone = phone_formats(i)[i % 6]
        body.append([
            name + ("\u00a0" if i % 17 == 0 else ""),  # a no-break space pasted from a web page
            phone,
            None if i in no_email else f"client{i}@Example.com",
            None if i in no_company else f"ООО «Ромашка {i % 9}»",
            CITIES[i % len(CITIES)],
            SOURCES[i % len(SOURCES)],
            None if i in no_tags else ["VIP, опт", "vip , VIP,Опт", "новый"][i % 3],
            date(2024, 1 + i % 12, 1 + i % 28) if i % 4 else None,
        ])
    return header, body


def styled_xlsx(header, rows, *, title: str | None = None, sheet: str = "Клиенты", extra_sheets=()) -> bytes:
    """A workbook as people save it: a bold, filled header, frozen panes, optionally a title line."""
    book = Workbook()
    ws = book.active
    ws.title = sheet
    if title:
        ws.append([title])
    ws.append(header)
    head_row = ws.max_row
    for cell in ws[head_row]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEEFF")
    ws.freeze_panes = f"A{head_row + 1}"
    for row in rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, datetime):
                cell.number_format = "DD.MM.YYYY HH:MM"
            elif isinstance(cell.value, date):
                cell.number_format = "DD.MM.YYYY"
    for name, content in extra_sheets:
        other = book.create_sheet(name)
        for row in content:
            other.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plain_xlsx(rows) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(header, rows, *, delimiter=";", encoding="cp1251", bom=False) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    data = text.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def rewritten(data: bytes, change) -> bytes:
    """The same zip with each part passed through change(name, content) -> content."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, change(item.filename, source.read(item.filename)))
    return out.getvalue()


def with_cached_formula(data: bytes, cell: str, formula: str, cached: str) -> bytes:
    """A workbook whose cell holds a formula with the value Excel last showed (openpyxl itself
    writes formulas without one)."""
    def change(name, content):
        if name != "xl/worksheets/sheet1.xml":
            return content
        cached_cell = f'<c r="{cell}" t="str"><f>{formula}</f><v>{cached}</v></c>'
        return re.sub(rf'<c r="{cell}"[^>]*?(/>|>.*?</c>)', cached_cell, content.decode()).encode()

    return rewritten(data, change)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def lying_sizes(data: bytes) -> bytes:
    """The same zip, but every header says each part unpacks to 100 bytes."""
    buf = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := buf.find(signature, start)) != -1:
            struct.pack_into("<I", buf, start + offset, 100)
            start += 4
    return bytes(buf)


def broken_xml(data: bytes) -> bytes:
    return rewritten(data, lambda name, content: content[: len(content) // 2] + b"<<<>>>"
                     if name == "xl/worksheets/sheet1.xml" else content)


def bzip2_parts(data: bytes) -> bytes:
    """A zip whose parts use a compression Excel never writes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
    return out.getvalue()


def with_part(data: bytes, name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr(name, content)
    return out.getvalue()


def entity_bomb(data: bytes) -> bytes:
    def change(name, content):
        if name != "xl/workbook.xml":
            return content
        body = content.split(b"?>", 1)[1] if content.startswith(b"<?xml") else content
        return b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>' + body

    return rewritten(data, change)


def zip_bomb(data: bytes) -> bytes:
    return with_part(data, "xl/media/huge.bin", b"\0" * 60_000_000)
