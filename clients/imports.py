"""Excel import (seed 002 rules): hostile files refused before openpyxl reads them; every row is
validated like the client form; chunks commit with their row records, so a run that dies resumes
where it stopped, and nothing is half written."""

import hashlib
import re
import zipfile
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.countries import COUNTRIES

from .models import NAME_MAX, TEXT_FIELD_MAX, Channel, CustomField, Priority
from .phones import normalize_phone

MAX_BYTES = 10 * 1024 * 1024
MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_RATIO = 200  # a member inflating more than this is a zip bomb
MAX_ROWS = 200_000
MAX_COLUMNS = 60
MAX_CELL = 5000
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

STANDARD_FIELDS = {
    "name": gettext_lazy("Full name"), "phone": gettext_lazy("Phone"), "email": gettext_lazy("Email"),
    "company": gettext_lazy("Company"), "country": gettext_lazy("Country"), "city": gettext_lazy("City"),
    "address": gettext_lazy("Address"), "channel": gettext_lazy("Channel"), "priority": gettext_lazy("Priority"),
    "external_id": gettext_lazy("Player ID"), "registration_date": gettext_lazy("Registration date"),
    "tags": gettext_lazy("Tags"), "deal_name": gettext_lazy("Deal name"), "deal_budget": gettext_lazy("Deal budget"),
}
# Header words (Russian and English, lower case) that suggest a field.
GUESSES = {
    "name": ["фио", "имя", "клиент", "name", "full name", "client"], "phone": ["телефон", "тел", "phone", "mobile"],
    "email": ["email", "e-mail", "почта", "mail"], "company": ["компания", "company", "организация"],
    "country": ["страна", "country"], "city": ["город", "city"], "address": ["адрес", "address"],
    "channel": ["канал", "источник", "channel", "source"], "priority": ["приоритет", "priority"],
    "external_id": ["id игрока", "логин", "player id", "login", "player"],
    "registration_date": ["дата регистрации", "регистрация", "registration date", "registered"],
    "tags": ["теги", "метки", "tags", "labels"], "deal_name": ["сделка", "deal"],
    "deal_budget": ["бюджет", "budget", "сумма сделки"],
}


class HostileFile(ValidationError):
    pass


def check_file(uploaded) -> None:
    """Refuse, with a message for the user, anything that is not a plain, sane .xlsx."""
    if uploaded.size > MAX_BYTES:
        raise HostileFile(_("The file is larger than %(mb)s MB.") % {"mb": MAX_BYTES // (1024 * 1024)})
    head = uploaded.read(8)
    uploaded.seek(0)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise HostileFile(_("This is an encrypted workbook or an old .xls file: save it as a plain .xlsx."))
    if not head.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(uploaded):
        raise HostileFile(_("This is not an Excel .xlsx file, whatever its name."))
    uploaded.seek(0)
    with zipfile.ZipFile(uploaded) as archive:
        names = set(archive.namelist())
        if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
            raise HostileFile(_("This is not an Excel .xlsx file, whatever its name."))
        if any(n.lower().endswith("vbaproject.bin") for n in names):
            raise HostileFile(_("Workbooks with macros are not accepted: save it as a plain .xlsx."))
        total = 0
        for info in archive.infolist():
            total += info.file_size
            if info.file_size > 1_000_000 and info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise HostileFile(_("The file unpacks to far more than it weighs (a zip bomb): refused."))
        if total > MAX_UNCOMPRESSED:
            raise HostileFile(_("The file unpacks to far more than it weighs (a zip bomb): refused."))
        for name in names:
            if name.endswith(".xml") and (name.startswith("xl/") or name == "[Content_Types].xml"):
                with archive.open(name) as part:
                    start = part.read(2048)
                if b"<!DOCTYPE" in start or b"<!ENTITY" in start:
                    raise HostileFile(_("The file contains XML entity declarations: refused."))
    uploaded.seek(0)


def _dimensions_from_start(self):
    """openpyxl reads a sheet's <dimension> on "end" events, so a sheet that has none (openpyxl's
    own write-only files, many exports) is parsed to its last row just to learn that - at every
    load. Looking at "start" events stops at <sheetData>: same answer, no full pass."""
    from openpyxl.worksheet._reader import DATA_TAG, DIMENSION_TAG, iterparse
    from openpyxl.worksheet.dimensions import SheetDimension

    for _event, element in iterparse(self.source, events=("start",)):
        if element.tag == DIMENSION_TAG:
            return SheetDimension.from_tree(element).boundaries
        if element.tag == DATA_TAG:
            return None
    return None


def open_book(path):
    from openpyxl import load_workbook
    from openpyxl.worksheet._reader import WorkSheetParser

    WorkSheetParser.parse_dimensions = _dimensions_from_start
    return load_workbook(path, read_only=True, data_only=True)


def check_sheet(sheet) -> None:
    rows, columns = sheet.max_row or 0, sheet.max_column or 0
    if rows > MAX_ROWS + 1:
        raise HostileFile(_("The sheet has %(n)s rows; at most %(max)s can be imported at once.") % {"n": rows, "max": MAX_ROWS})
    if columns > MAX_COLUMNS:
        raise HostileFile(_("The sheet has %(n)s columns; at most %(max)s are read.") % {"n": columns, "max": MAX_COLUMNS})


def headers_key(headers: list[str]) -> str:
    return hashlib.sha256("\x1f".join(h.strip().lower() for h in headers).encode()).hexdigest()


def guess_mapping(headers: list[str], custom_fields) -> dict[str, str]:
    mapping = {}
    customs = {f.label.strip().lower(): f.key for f in custom_fields}
    for index, header in enumerate(headers):
        text = (header or "").strip().lower()
        if not text:
            continue
        if text in customs:
            mapping[str(index)] = customs[text]
            continue
        for key, words in GUESSES.items():
            if text in words or any(text.startswith(w) for w in words if len(w) > 3):
                if key not in mapping.values():
                    mapping[str(index)] = key
                break
    return mapping


def field_choices(custom_fields) -> list[tuple[str, str]]:
    return [("", "—")] + [(k, str(v)) for k, v in STANDARD_FIELDS.items()] + [(f.key, f.label) for f in custom_fields]


COUNTRY_BY_NAME = {str(name).lower(): code for code, name in COUNTRIES}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_row(cells: list, mapping: dict[str, str], custom: dict[str, CustomField]) -> tuple[dict, list[str]]:
    """One row → (client data, errors). The seed's rules: no empty cells in mapped columns; numbers
    only numbers; dates only YYYY-MM-DD (a real Excel date cell is unambiguous); the form's limits."""
    data, errors, custom_values, labels = {}, [], {}, {}
    for index, key in mapping.items():
        value = cells[int(index)] if int(index) < len(cells) else None
        label = str(STANDARD_FIELDS.get(key) or (custom[key].label if key in custom else key))
        labels[key] = label
        text = _text(value)
        if not text:
            errors.append(_("%(field)s: the cell is empty.") % {"field": label})
            continue
        if len(text) > MAX_CELL:
            errors.append(_("%(field)s: the cell is too long.") % {"field": label})
            continue
        try:
            if key in custom:
                custom_values[key] = _custom_value(custom[key], value, text)
            else:
                data[key] = _standard_value(key, value, text)
        except ValidationError as error:
            errors.append(f"{label}: {' '.join(error.messages)}")
    if "name" not in data and not any("name" == k for k in mapping.values()):
        errors.append(_("Full name: no column is mapped to it."))
    if custom_values:
        data["custom"] = custom_values
    return data, errors


def _date(value, text):
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not DATE.match(text):
        raise ValidationError(_("dates only as YYYY-MM-DD."))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(_("dates only as YYYY-MM-DD."))


def _number(value, text):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    try:
        return Decimal(text.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise ValidationError(_("only numbers."))


def _standard_value(key, value, text):
    if key == "name":
        if len(text) > NAME_MAX:
            raise ValidationError(_("at most %(n)s characters.") % {"n": NAME_MAX})
        return " ".join(text.split())
    if key == "phone":
        return normalize_phone(text)
    if key == "email":
        validate_email(text)
        return text.lower()
    if key == "registration_date":
        return _date(value, text)
    if key == "deal_budget":
        return _number(value, text)
    if key == "country":
        code = text.upper() if text.upper() in dict(COUNTRIES) else COUNTRY_BY_NAME.get(text.lower())
        if not code:
            raise ValidationError(_("an unknown country."))
        return code
    if key == "channel":
        code = text.lower() if text.lower() in Channel.values else {str(v).lower(): k for k, v in Channel.choices}.get(text.lower())
        if not code:
            raise ValidationError(_("an unknown channel."))
        return code
    if key == "priority":
        code = text.lower() if text.lower() in Priority.values else {str(v).lower(): k for k, v in Priority.choices}.get(text.lower())
        if not code:
            raise ValidationError(_("an unknown priority."))
        return code
    if key == "tags":
        return [t.strip()[:30] for t in text.split(",") if t.strip()]
    limit = {"address": 200, "company": 100, "city": 60, "external_id": 64, "deal_name": 100}.get(key, TEXT_FIELD_MAX)
    if len(text) > limit:
        raise ValidationError(_("at most %(n)s characters.") % {"n": limit})
    return text


def _custom_value(field, value, text):
    if field.kind == CustomField.Kind.NUMBER:
        number = _number(value, text)
        return int(number) if number == number.to_integral_value() else float(number)
    if field.kind == CustomField.Kind.DATE:
        return _date(value, text).isoformat()
    if field.kind == CustomField.Kind.SELECT:
        if text not in field.choices:
            raise ValidationError(_("not one of the selector's values."))
        return text
    if len(text) > TEXT_FIELD_MAX:
        raise ValidationError(_("at most %(n)s characters.") % {"n": TEXT_FIELD_MAX})
    return text
