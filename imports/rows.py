"""Validate a row: one spreadsheet row → the client (and deal) it describes, or its problems.

Rules (seed 002, DESIGN §6): only the full name is required; an empty optional cell is no error
(and in update mode leaves the stored value alone), unless the import asks for every mapped cell
to be filled. Numbers are number cells or digit-only text; dates are real date cells or text
YYYY-MM-DD; phones go to E.164; choices match by code or by their Russian or English label in
any case; an unknown value fails the row, quoting it. Every text is trimmed, no-break spaces
included. A formula cell counts by the value Excel last showed (its cached value): formulas are
never evaluated and never stored.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import translation
from django.utils.translation import gettext as _

from clients.models import NAME_MAX, TEXT_FIELD_MAX, Channel, CustomField, Priority
from clients.phones import EXTENSION_MAX, PHONE_SEPARATORS, normalize_phone, split_phones
from crm.countries import COUNTRIES

from .fields import NAME_PARTS, label_of, normalise
from .readers import MAX_CELL, cell_text

if TYPE_CHECKING:
    from deals.models import Stage

DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER_TEXT = re.compile(r"^-?\d+(?:[.,]\d+)?$")
# Several e-mails in one cell ("a@x.ru; b@x.ru", as 1C exports them): the first is the e-mail, the
# others are kept as the client's other e-mails.
EMAIL_SPLIT = re.compile(r"[,;\s]+")
LIMITS = {"address": 200, "company": 100, "city": 60, "external_id": 64, "source": 100, "deal_name": 100}
TAG_MAX = 30
BUDGET_MAX = Decimal(10) ** 12  # Deal.budget: 14 digits, 2 after the point


@dataclass
class Row:
    """A validated row: `client` holds only the cells that were filled; `problems` is a list of
    (column header, message)."""

    number: int
    client: dict = field(default_factory=dict)
    custom: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    responsible_id: int | None = None
    deal: dict = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.empty

    @property
    def phone(self) -> str:
        return self.client.get("phone", "")

    @property
    def email(self) -> str:
        return self.client.get("email", "")

    @property
    def phones(self) -> list[str]:
        """Every phone of the row (the phone, then the other phones): a duplicate is found by any."""
        return [p for p in (self.phone, *self.client.get("extra_phones", ())) if p]

    @property
    def emails(self) -> list[str]:
        """Every e-mail of the row, lower case (they are lowered when read)."""
        return [e for e in (self.email, *self.client.get("extra_emails", ())) if e]

    def reason(self) -> str:
        return "; ".join(f"{column}: {message}" if column else message for column, message in self.problems)


def _choice_lookup(choices) -> dict[str, str]:
    """Code and label (Russian and English, any case) → code."""
    table: dict[str, str] = {}
    for language in ("en", "ru"):
        with translation.override(language):
            for code, label in choices:
                table[normalise(str(label))] = code
    for code, _label in choices:
        table[normalise(code)] = code
    return table


class RowValidator:
    """Knows the job's mapping, headers, custom fields, users and stages; turns cells into a Row."""

    def __init__(self, *, mapping: dict[str, str], headers: list[str], custom_fields, users=(), stages=(),
                 require_all: bool = False):
        self.columns = sorted(((int(i), key) for i, key in mapping.items()), key=lambda c: c[0])
        self.headers = headers
        self.custom = {f.key: f for f in custom_fields}
        self.require_all = require_all
        self.countries = _choice_lookup(COUNTRIES)
        self.channels = _choice_lookup(Channel.choices)
        self.priorities = _choice_lookup(Priority.choices)
        self.users, self.ambiguous_users = self._user_lookup(users)
        self.stages: dict[str, Stage] = {}
        for stage in stages:
            for name in (stage.name, *self._stage_labels(stage)):
                self.stages.setdefault(normalise(name), stage)
        self.first_stage = stages[0] if stages else None
        self.stage_names = ", ".join(str(s) for s in stages)
        self.selects = {
            key: {normalise(choice): choice for choice in f.choices} for key, f in self.custom.items()
            if f.kind == CustomField.Kind.SELECT
        }

    @staticmethod
    def _stage_labels(stage) -> list[str]:
        labels = []
        for language in ("en", "ru"):
            with translation.override(language):
                labels.append(str(stage))
        return labels

    @staticmethod
    def _user_lookup(users) -> tuple[dict[str, int], set[str]]:
        found: dict[str, int] = {}
        ambiguous: set[str] = set()
        for user in users:
            names = {user.username, user.email, f"{user.first_name} {user.last_name}", f"{user.last_name} {user.first_name}"}
            for name in names:
                key = normalise(name)
                if not key:
                    continue
                if key in found and found[key] != user.pk:
                    ambiguous.add(key)
                found[key] = user.pk
        return found, ambiguous

    def header(self, index: int) -> str:
        return self.headers[index] if index < len(self.headers) and self.headers[index] else f"#{index + 1}"

    @cached_property
    def plan_keys(self) -> dict[str, str]:
        """{field key: column header} of the mapped columns."""
        return {key: column for _index, key, column in self.plan}

    @cached_property
    def plan(self) -> list[tuple[int, str, str]]:
        """(column index, field key, column header) for each mapped column."""
        return [(index, key, self.header(index)) for index, key in self.columns]

    def validate(self, number: int, cells: list) -> Row:
        row = Row(number=number)
        for cell in cells:  # a plain loop: this runs for every row of the file
            if cell is not None and (not isinstance(cell, str) or cell.strip()):
                break
        else:
            row.empty = True
            return row
        width = len(cells)
        parts: dict[str, str] = {}
        for index, key, column in self.plan:
            value = cells[index] if index < width else None
            text = cell_text(value)
            if not text:
                if key == "name" and not self.name_parts:
                    row.problems.append((column, _("the full name is required.")))
                elif self.require_all:
                    row.problems.append((column, _("the cell is empty (this import asks for every mapped cell).")))
                continue
            if len(text) > MAX_CELL:
                row.problems.append((column, _("the cell is too long.")))
                continue
            if key in NAME_PARTS:
                parts[key] = text
                continue
            try:
                self._put(row, key, value, text)
            except ValidationError as error:
                row.problems.append((column, " ".join(error.messages)))
        if self.name_parts and "name" not in row.client:
            self._name_from_parts(row, parts)
        return row

    @cached_property
    def name_parts(self) -> list[tuple[str, str]]:
        """(field key, column header) of the columns mapped to parts of the name, in the name's order."""
        return [(key, self.plan_keys[key]) for key in NAME_PARTS if key in self.plan_keys]

    def _name_from_parts(self, row: Row, parts: dict[str, str]) -> None:
        """The full name of a row whose own full-name cell is empty or unmapped: its parts, last name first."""
        column = self.plan_keys.get("name", self.name_parts[0][1])
        name = " ".join(parts[key] for key, _column in self.name_parts if key in parts)
        if not name:
            row.problems.insert(0, (column, _("the full name is required.")))
            return
        try:
            row.client["name"] = self._standard("name", name, name)
        except ValidationError as error:
            row.problems.insert(0, (column, " ".join(error.messages)))

    def _put(self, row: Row, key: str, value, text: str) -> None:
        if key in self.custom:
            row.custom[key] = self._custom(self.custom[key], value, text)
        elif key == "tags":
            row.tags = self._tags(text)
        elif key == "responsible":
            row.responsible_id = self._responsible(text)
        elif key == "deal_name":
            row.deal["name"] = self._limited(text, LIMITS["deal_name"])
        elif key == "deal_budget":
            number = number_value(value, text)
            if number < 0 or number >= BUDGET_MAX:
                raise ValidationError(_("a budget from 0 to 999,999,999,999."))
            row.deal["budget"] = number
        elif key == "deal_stage":
            row.deal["stage"] = self._stage(text)
        elif key == "phone":
            if not PHONE_SEPARATORS.search(text):  # one number, as nearly always
                row.client["phone"] = self._phone(text)
                return
            phones = self._phones(text)
            row.client["phone"] = phones[0]
            if len(phones) > 1:
                row.client["extra_phones"] = row.client.get("extra_phones", []) + phones[1:]
        elif key == "extra_phones":
            row.client["extra_phones"] = self._phones(text) + row.client.get("extra_phones", [])
        elif key == "extra_emails":
            emails = [self._email(part) for part in EMAIL_SPLIT.split(text) if part]
            row.client["extra_emails"] = list(dict.fromkeys(emails + row.client.get("extra_emails", [])))
        elif key == "email":
            parts = [part for part in EMAIL_SPLIT.split(text) if part]
            if len(parts) > 1 and text.count("@") < 2:  # one address and words: quoted whole
                raise ValidationError(_("“%(value)s” is not an e-mail address.") % {"value": text})
            emails = [self._email(part) for part in parts]
            row.client["email"] = emails[0]
            if others := [e for e in dict.fromkeys(emails[1:] + row.client.get("extra_emails", [])) if e != emails[0]]:
                row.client["extra_emails"] = others
        else:
            row.client[key] = self._standard(key, value, text)

    def _standard(self, key: str, value, text: str):
        if key == "name":
            name = " ".join(text.split())
            if len(name) > NAME_MAX:
                raise ValidationError(_("at most %(n)s characters (this one has %(m)s).") % {"n": NAME_MAX, "m": len(name)})
            return name
        if key == "registration_date":
            return date_value(value, text)
        if key in ("country", "channel", "priority"):
            table = {"country": self.countries, "channel": self.channels, "priority": self.priorities}[key]
            code = table.get(normalise(text))
            if code is None:
                if key == "channel":
                    raise ValidationError(_("“%(value)s” is not one of the channels; map the column to Source to keep any text.") % {"value": text})
                raise ValidationError(_("unknown value “%(value)s”.") % {"value": text})
            return code
        return self._limited(text, LIMITS.get(key, TEXT_FIELD_MAX))

    @classmethod
    def _phones(cls, text: str) -> list[str]:
        """The numbers of a cell holding several ("8 (495) 123-45-67, доб. 12, +7 916 …")."""
        return [cls._phone(part) for part in split_phones(text)]

    @staticmethod
    def _phone(text: str) -> str:
        try:
            return normalize_phone(text)
        except ValidationError as error:
            if error.code == "extension":
                raise ValidationError(_("“%(value)s”: an extension is at most %(n)s digits.") % {"value": text, "n": EXTENSION_MAX}) from None
            raise ValidationError(_("“%(value)s” is not a phone number.") % {"value": text}) from None

    @staticmethod
    def _email(text: str) -> str:
        email = text.lower()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(_("“%(value)s” is not an e-mail address.") % {"value": text}) from None
        return email

    @staticmethod
    def _limited(text: str, limit: int) -> str:
        if len(text) > limit:
            raise ValidationError(_("at most %(n)s characters (this one has %(m)s).") % {"n": limit, "m": len(text)})
        return text

    def _tags(self, text: str) -> list[str]:
        tags, seen = [], set()
        for name in text.split(","):
            name = " ".join(name.split())
            if not name or name.lower() in seen:
                continue
            if len(name) > TAG_MAX:
                raise ValidationError(_("the tag “%(value)s” is longer than %(n)s characters.") % {"value": name, "n": TAG_MAX})
            seen.add(name.lower())
            tags.append(name)
        return tags

    def _responsible(self, text: str) -> int:
        key = normalise(text)
        if key in self.ambiguous_users:
            raise ValidationError(_("several users match “%(value)s”: use the username or e-mail.") % {"value": text})
        if key not in self.users:
            raise ValidationError(_("no active user “%(value)s” (a username, e-mail or full name).") % {"value": text})
        return self.users[key]

    def _stage(self, text: str):
        stage = self.stages.get(normalise(text))
        if stage is None:
            raise ValidationError(_("no stage “%(value)s” in this line (stages: %(names)s).") % {"value": text, "names": self.stage_names})
        return stage

    def _custom(self, custom_field, value, text: str):
        kind = custom_field.kind
        if kind == CustomField.Kind.NUMBER:
            number = number_value(value, text)
            return int(number) if number == number.to_integral_value() else float(number)
        if kind == CustomField.Kind.DATE:
            return date_value(value, text).isoformat()
        if kind == CustomField.Kind.SELECT:
            choice = self.selects[custom_field.key].get(normalise(text))
            if choice is None:
                raise ValidationError(_("“%(value)s” is not one of the selector's values.") % {"value": text})
            return choice
        return self._limited(text, TEXT_FIELD_MAX)

    def labels(self) -> list[str]:
        return [label_of(key, self.custom) for _i, key in self.columns]


def date_value(value, text: str) -> date:
    """A real date cell (its date part, no time-zone shift), or text YYYY-MM-DD that is a real date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if DATE_TEXT.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationError(_("“%(value)s” is not a real date.") % {"value": text}) from None
    raise ValidationError(_("“%(value)s”: dates only as YYYY-MM-DD or a date cell.") % {"value": text})


def number_value(value, text: str) -> Decimal:
    """A number cell, or digit-only text (spaces as thousands separators, a comma or dot decimal)."""
    if isinstance(value, bool):
        raise ValidationError(_("“%(value)s” is not a number.") % {"value": text})
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    compact = text.replace(" ", "")
    if not NUMBER_TEXT.match(compact):
        raise ValidationError(_("“%(value)s” is not a number.") % {"value": text})
    try:
        return Decimal(compact.replace(",", "."))
    except InvalidOperation:
        raise ValidationError(_("“%(value)s” is not a number.") % {"value": text}) from None
