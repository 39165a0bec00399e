"""Map: the fields a column can go to, and the guess from its header (Russian or English).

A mapping is {"column index": "field key"}: a standard client field, a custom field's key
("cf_12"), "tags", "responsible", or a deal field ("deal_name", "deal_budget", "deal_stage").
"new_text" / "new_select" ask the mapping step to create a custom field from the column.
"""

import hashlib
import re

from django.utils.translation import gettext_lazy as _

# A list with the name in parts (Фамилия, Имя, Отчество as 1C and amoCRM export it): the full name
# is made of the parts in that order, where the row has no full name of its own.
NAME_PARTS = {"last_name": _("Last name"), "first_name": _("First name"), "middle_name": _("Middle name")}
CLIENT_FIELDS = {
    "name": _("Full name"), **NAME_PARTS, "phone": _("Phone"), "extra_phones": _("Other phones"), "email": _("Email"),
    "extra_emails": _("Other e-mails"),
    "company": _("Company"), "country": _("Country"), "city": _("City"), "address": _("Address"),
    "channel": _("Channel"), "source": _("Source"), "priority": _("Priority"), "external_id": _("Player ID"),
    "registration_date": _("Registration date"), "tags": _("Tags"), "responsible": _("Responsible"),
}
DEAL_FIELDS = {"deal_name": _("Deal name"), "deal_budget": _("Deal budget"), "deal_stage": _("Deal stage")}
NEW_FIELDS = {"new_text": _("New custom field: text"), "new_select": _("New custom field: selector")}
STANDARD_FIELDS = {**CLIENT_FIELDS, **DEAL_FIELDS}

# Header words that suggest a field, compared after normalising (lower case, ё → е, no punctuation).
GUESSES = {
    "name": ["фио", "ф и о", "имя", "фамилия имя", "фамилия имя отчество", "клиент", "контакт", "контактное лицо",
             "полное имя", "полное имя контакта", "имя контакта", "наименование", "наименование контрагента",
             "контрагент", "покупатель", "name", "full name", "client", "contact", "contact name", "customer",
             "contact full name"],
    "last_name": ["фамилия", "last name", "surname", "family name"],
    "first_name": ["first name", "given name"],
    "middle_name": ["отчество", "middle name", "patronymic", "second name"],
    "phone": ["телефон", "тел", "моб", "мобильный", "мобильный телефон", "номер телефона", "сотовый",
              "phone", "mobile", "phone number", "tel", "telephone", "cell"],
    "extra_phones": ["телефон 2", "доп телефон", "дополнительный телефон", "другие телефоны", "рабочий телефон",
                     "домашний телефон", "городской телефон", "phone 2", "other phones", "other phone", "work phone",
                     "second phone", "home phone"],
    "email": ["email", "e mail", "почта", "эл почта", "электронная почта", "mail", "e mail address", "email address",
              "рабочий email", "рабочий e mail", "рабочая почта", "work email"],
    "extra_emails": ["email 2", "e mail 2", "личный email", "личный e mail", "личная почта", "другой email",
                     "другие email", "доп email", "дополнительный email", "other emails", "other e mails",
                     "second email", "personal email"],
    "company": ["компания", "организация", "название компании", "фирма", "company", "organization", "organisation",
                "company name"],
    "country": ["страна", "country"], "city": ["город", "населенный пункт", "city", "town"],
    "address": ["адрес", "юридический адрес", "фактический адрес", "почтовый адрес", "адрес доставки", "address",
                "street", "postal address"],
    "channel": ["канал", "канал связи", "channel"],
    "source": ["источник", "источник лида", "откуда", "source", "lead source", "utm source"],
    "priority": ["приоритет", "priority"],
    "external_id": ["id игрока", "логин", "player id", "login", "player", "account", "аккаунт"],
    "registration_date": ["дата регистрации", "регистрация", "registration date", "registered", "signup date"],
    "tags": ["теги", "тег", "метки", "tags", "tag", "labels"],
    "responsible": ["ответственный", "менеджер", "ответственный менеджер", "responsible", "owner", "manager",
                    "assigned to", "assignee", "account manager"],
    "deal_name": ["сделка", "название сделки", "deal", "deal name"],
    "deal_budget": ["бюджет", "сумма", "сумма сделки", "бюджет сделки", "budget", "amount", "deal amount", "deal value"],
    "deal_stage": ["этап", "стадия", "статус сделки", "этап сделки", "этап воронки", "stage", "deal stage", "pipeline stage"],
}
NOT_WORD = re.compile(r"[^\w]+")


def normalise(header: str) -> str:
    return " ".join(NOT_WORD.sub(" ", (header or "").lower().replace("ё", "е")).split())


def headers_key(headers: list[str]) -> str:
    return hashlib.sha256("\x1f".join(normalise(h) for h in headers).encode()).hexdigest()


def guess_mapping(headers: list[str], custom_fields) -> dict[str, str]:
    """A field per column whose header names one; each field once, the first column wins."""
    mapping: dict[str, str] = {}
    customs = {normalise(f.label): f.key for f in custom_fields}
    # "Имя" beside "Фамилия" is the first name; alone it is the whole name.
    in_parts = any(normalise(h) in GUESSES["last_name"] + GUESSES["middle_name"] for h in headers)
    for index, header in enumerate(headers):
        text = normalise(header)
        if not text:
            continue
        key = customs.get(text) or next((k for k, words in GUESSES.items() if text in words), None)
        if key == "name" and in_parts and text in ("имя", "name"):
            key = "first_name"
        if key is None:  # "Телефон (моб.)", "Email клиента": a known word at the start
            key = next((k for k, words in GUESSES.items() for w in words if len(w) > 3 and text.startswith(w + " ")), None)
        if key and key not in mapping.values():
            mapping[str(index)] = key
    return mapping


def field_choices(custom_fields, *, can_create_fields: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped choices for the mapping step's selects."""
    groups = [
        (str(_("Client")), [(k, str(v)) for k, v in CLIENT_FIELDS.items()]),
        (str(_("Custom fields")), [(f.key, f.label) for f in custom_fields]),
        (str(_("Deal")), [(k, str(v)) for k, v in DEAL_FIELDS.items()]),
    ]
    if can_create_fields:
        groups.append((str(_("Create")), [(k, str(v)) for k, v in NEW_FIELDS.items()]))
    return [g for g in groups if g[1]]


def label_of(key: str, custom: dict) -> str:
    if key in STANDARD_FIELDS:
        return str(STANDARD_FIELDS[key])
    if key in custom:
        return custom[key].label
    return key
