"""The import bench's workbook: N rows × 10 columns of a realistic client list, made once per size
and kept in bench/out/ (gitignored); making it is never timed.

    .venv/bin/python bench/import_file.py [--rows 100000]      # makes (or finds) the file, prints its path

What a list exported from another CRM or typed by hand looks like: Russian headers; phones in
every usual format ("8 (916) 123-45-67", "+7 916 123-45-67", "79161234567" as text and as a
number cell, "8-916-…", ten digits); empty optional cells; a source column ("Авито", "Cold call",
"Выставка"); tags ("VIP, Опт"); registration dates as real date cells; a country by its Russian
name or code. About 1 % of the rows repeat an earlier row's phone in another format (in-file
duplicates), about 0.5 % have an e-mail that is not one and 0.2 % a phone that is not one.
"""

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

from common import OUT  # first: the project on the path and the bench's settings chosen (bench/common.py)

from crm.xlsx import column_letters

VERSION = 3  # bump when the content changes: a cached file of another version is not reused
SHEET = "Клиенты"
HEADERS = ["ФИО", "Телефон", "Email", "Город", "Компания", "Страна", "Источник", "Теги", "Дата регистрации", "ID игрока"]
FIELDS = ["name", "phone", "email", "city", "company", "country", "source", "tags", "registration_date", "external_id"]

LAST = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Волков", "Новиков", "Морозов", "Лебедев",
        "Smith", "Brown", "Taylor", "Wilson", "Ким", "Ли"]
FIRST = ["Иван", "Пётр", "Анна", "Мария", "Ольга", "Сергей", "Алексей", "Елена", "Дмитрий", "Юлия", "John", "Emily"]
MIDDLE = ["", "", "Иванович", "Петрович", "Сергеевна", "Олеговна", "Андреевич"]
LATIN = ["ivan", "petr", "anna", "maria", "olga", "sergey", "alex", "elena", "dima", "julia", "john", "emily"]
DOMAINS = ["mail.ru", "gmail.com", "yandex.ru", "bk.ru", "inbox.ru", "example.com"]
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург", "Тула", "Самара", "Алматы", "Минск"]
COMPANIES = ["ООО «Ромашка»", "ИП Сидоров", "АО «Вектор»", "ООО «Альфа-Трейд»", "ЗАО «Север»", "Acme Ltd"]
COUNTRIES = ["Россия", "Россия", "Россия", "RU", "Казахстан", "Беларусь", "ru"]
SOURCES = ["Авито", "Cold call", "Выставка"]
TAGS = ["VIP", "Опт", "VIP, Опт", "Новый", "Розница"]


def phone_cell(body: str, rnd: random.Random):
    """One number (ten digits after the country code) in one of the formats people type."""
    a, b, c, d = body[:3], body[3:6], body[6:8], body[8:]
    style = rnd.randrange(8)
    if style == 0:
        return f"8 ({a}) {b}-{c}-{d}"
    if style == 1:
        return f"+7 {a} {b}-{c}-{d}"
    if style == 2:
        return f"7{body}"
    if style == 3:
        return int(f"7{body}")  # a number cell, as Excel keeps digits typed without a quote
    if style == 4:
        return f"+7({a}){b}{c}{d}"
    if style == 5:
        return f"8-{a}-{b}-{c}-{d}"
    if style == 6:
        return f"+7 {a} {b} {c} {d}"
    return body


def rows(count: int):
    rnd = random.Random(VERSION * 1000 + 3)
    bodies: list[str] = []
    start = date(2019, 1, 1)
    for i in range(count):
        if bodies and rnd.random() < 0.01:
            body = rnd.choice(bodies)  # the same person again, typed another way
        else:
            body = f"9{rnd.randint(100000000, 999999999)}"
            bodies.append(body)
        roll = rnd.random()
        phone = None if roll < 0.03 else ("нет" if roll < 0.032 else phone_cell(body, rnd))
        first = rnd.randrange(len(FIRST))
        email = None
        if rnd.random() < 0.6:
            email = f"{LATIN[first]}.{i}@{rnd.choice(DOMAINS)}"
            if rnd.random() < 0.1:
                email = email.upper()
            if rnd.random() < 0.008:
                email = rnd.choice(["нет", f"{LATIN[first]}@", f"{LATIN[first]} {i}@mail"])
        name = " ".join(part for part in (rnd.choice(LAST), FIRST[first], rnd.choice(MIDDLE)) if part)
        yield [
            name,
            phone,
            email,
            rnd.choice(CITIES) if rnd.random() < 0.8 else None,
            rnd.choice(COMPANIES) if rnd.random() < 0.5 else None,
            rnd.choice(COUNTRIES) if rnd.random() < 0.9 else None,
            rnd.choice(SOURCES) if rnd.random() < 0.85 else None,
            rnd.choice(TAGS) if rnd.random() < 0.4 else None,
            start + timedelta(days=rnd.randrange(2500)) if rnd.random() < 0.7 else None,
            f"P{rnd.randint(100000, 999999)}" if rnd.random() < 0.5 else None,
        ]


PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "docProps/app.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        "<Application>Microsoft Excel</Application></Properties>"
    ),
    "docProps/core.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>bench</dc:creator></cp:coreProperties>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{SHEET}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
    # Style 1: Excel's built-in short date (numFmtId 14), what a typed date gets.
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
    ),
}
EXCEL_EPOCH = date(1899, 12, 30)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_xlsx(path: Path, count: int) -> None:
    """Write the workbook as Excel saves one: a shared-strings table (UTF-8), a <dimension>,
    numbers as number cells, dates as serial numbers in a date style."""
    import zipfile

    strings: dict[str, int] = {}
    columns = [column_letters(i) for i in range(len(HEADERS))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, text in PARTS.items():
            archive.writestr(_entry(name), text)
        with archive.open(_entry("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as part:
            part.write((
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                f'<dimension ref="A1:{columns[-1]}{count + 1}"/><sheetData>'
            ).encode())
            buffer: list[str] = []
            for number, cells in enumerate(_with_header(count), start=1):
                out = [f'<row r="{number}">']
                for letter, value in zip(columns, cells, strict=False):  # a row may be shorter
                    if value is None:
                        continue
                    if isinstance(value, str):
                        index = strings.setdefault(value, len(strings))
                        out.append(f'<c r="{letter}{number}" t="s"><v>{index}</v></c>')
                    elif isinstance(value, date):
                        out.append(f'<c r="{letter}{number}" s="1"><v>{(value - EXCEL_EPOCH).days}</v></c>')
                    else:
                        out.append(f'<c r="{letter}{number}"><v>{value}</v></c>')
                out.append("</row>")
                buffer.append("".join(out))
                if len(buffer) >= 5000:
                    part.write("".join(buffer).encode())
                    buffer.clear()
            part.write(("".join(buffer) + "</sheetData></worksheet>").encode())
        with archive.open(_entry("xl/sharedStrings.xml"), "w", force_zip64=True) as part:
            part.write((
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" '
                f'uniqueCount="{len(strings)}">'
            ).encode())
            chunk: list[str] = []
            for text in strings:  # insertion order: the indexes
                chunk.append(f"<si><t>{_escape(text)}</t></si>")
                if len(chunk) >= 10000:
                    part.write("".join(chunk).encode())
                    chunk.clear()
            part.write(("".join(chunk) + "</sst>").encode())


def _entry(name: str):
    import zipfile

    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _with_header(count: int):
    yield HEADERS
    yield from rows(count)


def make_file(count: int) -> Path:
    """The workbook for `count` rows: made once (into a temporary name, renamed when complete)."""
    path = OUT / f"import_v{VERSION}_{count}.xlsx"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    write_xlsx(partial, count)
    partial.rename(path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    print(make_file(parser.parse_args().rows))
