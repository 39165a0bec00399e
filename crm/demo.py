"""Demo data a Russian sales team would believe: an admin, two managers, tags, custom fields,
clients whose name, country, city, phone and e-mail go together, and deals whose feed tells
their history (created, stage moves, sales, comments, tasks, notes).

Everything is written in bulk, with the feed entries the services write (same kinds, same
fields), dated in the past in the order they happened: the card's feed renders them as usual.
"""

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext, override

from clients.models import (
    NAME_MAX,
    Channel,
    Client,
    ClientNote,
    CustomField,
    Lifecycle,
    Priority,
    Tag,
)
from clients.names import name_key
from clients.phones import phone_digits
from crm import activity
from crm.models import Activity, Role, Team

DEMO_PASSWORD = "voronka-demo"
DEMO_USERS = [
    # username, first name, last name, email, role, language
    ("admin", "Анна", "Соколова", "admin@voronka.local", Role.ADMIN, "ru"),
    ("manager1", "Иван", "Петров", "ivan@voronka.local", Role.MANAGER, "ru"),
    ("manager2", "Emily", "Clark", "emily@voronka.local", Role.MANAGER, "en"),
]
TAGS = [("VIP", "purple"), ("Новый", "green"), ("Повторный", "blue"), ("Холодный", "grey"), ("Проблемный", "red"), ("Partner", "orange")]

# Names ------------------------------------------------------------------------------------------

RU_MALE = [
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Борис", "Вадим", "Валерий", "Василий", "Виктор",
    "Виталий", "Владимир", "Владислав", "Вячеслав", "Геннадий", "Георгий", "Глеб", "Григорий", "Денис",
    "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Илья", "Кирилл", "Константин", "Леонид", "Максим",
    "Марк", "Матвей", "Михаил", "Никита", "Николай", "Олег", "Павел", "Пётр", "Роман", "Руслан", "Сергей",
    "Станислав", "Степан", "Тимофей", "Тимур", "Фёдор", "Юрий", "Ярослав",
]
RU_FEMALE = [
    "Алёна", "Алина", "Алла", "Анастасия", "Ангелина", "Анна", "Валентина", "Валерия", "Вера", "Вероника",
    "Виктория", "Галина", "Дарья", "Диана", "Евгения", "Екатерина", "Елена", "Елизавета", "Жанна", "Инна",
    "Ирина", "Карина", "Кристина", "Ксения", "Лариса", "Лидия", "Любовь", "Людмила", "Маргарита", "Марина",
    "Мария", "Надежда", "Наталья", "Нина", "Оксана", "Олеся", "Ольга", "Полина", "Светлана", "София",
    "Тамара", "Татьяна", "Ульяна", "Юлия", "Яна",
]
# (for a son, for a daughter)
RU_PATRONYMICS = [
    ("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"), ("Анатольевич", "Анатольевна"),
    ("Андреевич", "Андреевна"), ("Борисович", "Борисовна"), ("Васильевич", "Васильевна"),
    ("Викторович", "Викторовна"), ("Владимирович", "Владимировна"), ("Вячеславович", "Вячеславовна"),
    ("Геннадьевич", "Геннадьевна"), ("Григорьевич", "Григорьевна"), ("Дмитриевич", "Дмитриевна"),
    ("Евгеньевич", "Евгеньевна"), ("Иванович", "Ивановна"), ("Игоревич", "Игоревна"), ("Ильич", "Ильинична"),
    ("Константинович", "Константиновна"), ("Леонидович", "Леонидовна"), ("Михайлович", "Михайловна"),
    ("Николаевич", "Николаевна"), ("Олегович", "Олеговна"), ("Павлович", "Павловна"), ("Петрович", "Петровна"),
    ("Романович", "Романовна"), ("Сергеевич", "Сергеевна"), ("Юрьевич", "Юрьевна"),
]
# Masculine forms; feminine() gives a woman's.
RU_SURNAMES = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
    "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов",
    "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв",
    "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров",
    "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов",
    "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров",
    "Давыдов", "Беляев", "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков",
    "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов",
    "Казаков", "Афанасьев", "Ефремов", "Калинин", "Лазарев", "Голубев", "Щербаков", "Гончаров", "Зуев",
    "Соболев", "Пономарёв", "Ершов", "Фомин", "Блинов", "Савин", "Маслов", "Рыбаков", "Коновалов",
    "Ефимов", "Чернов", "Воронин", "Быков", "Федотов", "Лаптев", "Суханов", "Котов", "Пестов", "Сычёв",
    "Ковальский", "Покровский", "Вишневский", "Рождественский", "Успенский", "Островский", "Высоцкий",
    "Залесский", "Толстой", "Луговой", "Шевченко", "Бондаренко", "Кравченко", "Седых", "Черных",
]
EN_MALE = [
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Daniel",
    "Matthew", "Andrew", "Christopher", "Mark", "Paul", "Steven", "Kevin", "Brian", "George", "Edward",
    "Ryan", "Jack", "Oliver", "Harry", "Samuel", "Benjamin", "Ethan", "Nathan",
]
EN_FEMALE = [
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Susan", "Jessica", "Sarah", "Karen", "Emily",
    "Emma", "Olivia", "Sophie", "Charlotte", "Amelia", "Grace", "Hannah", "Lucy", "Rachel", "Laura",
    "Megan", "Chloe", "Rebecca", "Amy",
]
EN_SURNAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Hill", "Campbell",
    "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards",
    "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Hughes", "Wood", "Ward", "Cooper", "Bennett",
    "Gray", "Kelly", "Price", "Foster", "Walsh", "Murray", "Palmer", "Fletcher",
]


def feminine(surname: str) -> str:
    """A woman's form of a Russian surname: Петров → Петрова, Вишневский → Вишневская;
    Шевченко and Седых are the same for both."""
    if surname.endswith(("ский", "цкий", "ой", "ый")):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    return surname


# Places: the countries a client's name goes with, and real cities there -------------------------
# (only countries the client form offers: crm.countries.COUNTRIES)

CITIES = {
    "RU": [
        ("Москва", 30), ("Санкт-Петербург", 14), ("Новосибирск", 4), ("Екатеринбург", 4), ("Казань", 4),
        ("Нижний Новгород", 3), ("Челябинск", 3), ("Самара", 3), ("Омск", 2), ("Ростов-на-Дону", 3),
        ("Уфа", 2), ("Красноярск", 3), ("Воронеж", 2), ("Пермь", 2), ("Волгоград", 2), ("Краснодар", 3),
        ("Саратов", 1), ("Тюмень", 2), ("Тольятти", 1), ("Ижевск", 1), ("Барнаул", 1), ("Иркутск", 1),
        ("Ярославль", 1), ("Владивосток", 1), ("Хабаровск", 1), ("Томск", 1), ("Калининград", 1),
        ("Сочи", 2), ("Тула", 1), ("Рязань", 1),
    ],
    "KZ": [("Алматы", 5), ("Астана", 4), ("Шымкент", 1), ("Караганда", 1), ("Актобе", 1), ("Павлодар", 1), ("Костанай", 1)],
    "BY": [("Минск", 6), ("Гомель", 1), ("Могилёв", 1), ("Витебск", 1), ("Гродно", 1), ("Брест", 1)],
    "US": [
        ("New York", 6), ("Los Angeles", 4), ("Chicago", 3), ("Houston", 2), ("Phoenix", 1), ("Philadelphia", 1),
        ("San Diego", 1), ("Dallas", 1), ("Austin", 1), ("Seattle", 2), ("Denver", 1), ("Boston", 2),
        ("Miami", 2), ("Atlanta", 1), ("San Francisco", 2),
    ],
    "GB": [
        ("London", 8), ("Manchester", 2), ("Birmingham", 2), ("Leeds", 1), ("Liverpool", 1), ("Bristol", 1),
        ("Sheffield", 1), ("Newcastle upon Tyne", 1), ("Nottingham", 1), ("Edinburgh", 1), ("Glasgow", 1),
        ("Cardiff", 1), ("Belfast", 1),
    ],
}
RUSSIAN_COUNTRIES = [("RU", 85), ("KZ", 8), ("BY", 7)]
ENGLISH_COUNTRIES = [("US", 60), ("GB", 40)]
US_AREA_CODES = {
    "New York": ["212", "646", "718"], "Los Angeles": ["213", "310", "323"], "Chicago": ["312", "773"],
    "Houston": ["713", "832"], "Phoenix": ["602"], "Philadelphia": ["215"], "San Diego": ["619"], "Dallas": ["214"],
    "Austin": ["512"], "Seattle": ["206"], "Denver": ["303"], "Boston": ["617"], "Miami": ["305"],
    "Atlanta": ["404"], "San Francisco": ["415"],
}
EMAIL_DOMAINS = {
    "RU": [("mail.ru", 30), ("yandex.ru", 30), ("gmail.com", 20), ("bk.ru", 5), ("list.ru", 5), ("inbox.ru", 5), ("rambler.ru", 5)],
    "KZ": [("mail.ru", 40), ("gmail.com", 40), ("yandex.kz", 20)],
    "BY": [("mail.ru", 30), ("gmail.com", 40), ("yandex.by", 30)],
    "US": [("gmail.com", 50), ("outlook.com", 20), ("yahoo.com", 20), ("icloud.com", 10)],
    "GB": [("gmail.com", 45), ("outlook.com", 20), ("hotmail.co.uk", 20), ("btinternet.com", 15)],
}
TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"],
    strict=True,
))
RU_COMPANIES = [
    "Вектор", "Альфа-Строй", "Северный ветер", "ТехноСервис", "Гарант", "Меридиан", "Стройинвест",
    "Логистик-Плюс", "Орион", "Спектр", "Прогресс", "Автомир", "Уралснаб", "Сибирские окна", "Эталон",
    "Горизонт", "Феникс", "Лидер", "Волга-Трейд", "Балтика-Сервис",
]
EN_COMPANIES = [
    "Northwind", "Blue Harbor", "Summit", "Redwood", "Brightline", "Keystone", "Pinewood", "Silverline",
    "Oakridge", "Harborside", "Lakeview", "Ironbridge",
]
COMPANY_FORMS = {"RU": ["ООО «{}»", "АО «{}»"], "KZ": ["ТОО «{}»"], "BY": ["ООО «{}»", "ОАО «{}»"], "US": ["{} Inc.", "{} LLC"], "GB": ["{} Ltd"]}

# What managers write (gender-neutral: the author may be a man or a woman, so may the client) ----

PRODUCTS = {
    "ru": ["подписка на год", "пакет «Старт»", "пакет «Премиум»", "первый депозит", "VIP-обслуживание"],
    "en": ["annual subscription", "Starter package", "Premium package", "first deposit", "VIP service"],
}
COMMENTS = {
    "ru": {
        "in_conversation": [
            "Созвонились, клиент заинтересован, просит прислать условия.",
            "Поговорили минут десять, много вопросов про вывод средств.",
            "Клиент на связи в Telegram, отвечает быстро.",
            "Клиент перезвонил сам, просит связываться после 18:00.",
        ],
        "link_sent": [
            "Ссылка на регистрацию отправлена в WhatsApp.",
            "Клиент получил ссылку, обещает зарегистрироваться сегодня вечером.",
            "Ссылку продублировали на почту: в мессенджере не открывается.",
        ],
        "registration": ["Регистрация есть, ждём первое пополнение.", "Клиент зарегистрирован, помогли с подтверждением телефона."],
        "ignore": [
            "Третий день не берёт трубку, сообщения не читает.",
            "Сбрасывает звонки. Пауза на неделю.",
            "Клиент просит пока не звонить, ставим на паузу.",
        ],
        "back_from_ignore": ["Клиент сам написал в Telegram, снова интересуется.", "Клиент вышел на связь после паузы, просит повторить условия."],
        "first_sale": ["Первое пополнение есть! Клиент доволен.", "Первый депозит получен, рассказали про бонусную программу."],
        "to_2nd_line": ["Передаём на вторую линию: клиент активный.", "Клиент стабильно пополняет, передаём коллегам на удержание."],
        "sale": ["Ещё одно пополнение, клиент спрашивал про VIP-статус.", "Повторное пополнение прошло без вопросов."],
        "general": [
            "Клиент просит писать только в мессенджерах.",
            "Клиент в отпуске до конца месяца.",
            "Договорились созвониться в понедельник.",
            "Номер занят весь день, попробуем завтра.",
        ],
        "mention": [
            "подключись, пожалуйста: клиент просит старшего менеджера.",
            "посмотри, пожалуйста: клиент спрашивает про индивидуальные условия.",
            "это клиент с твоей прошлой сделки, передаю контакт.",
        ],
    },
    "en": {
        "in_conversation": [
            "Reached the client: interested, wants the terms in writing.",
            "Ten-minute call, lots of questions about withdrawals.",
            "The client is on Telegram and replies fast.",
            "The client called back and asks to be contacted after 6 pm.",
        ],
        "link_sent": [
            "Sign-up link sent on WhatsApp.",
            "The client got the link and promises to sign up tonight.",
            "Link resent by email: it would not open in the messenger.",
        ],
        "registration": ["Signed up, waiting for the first deposit.", "Registration done, helped to confirm the phone number."],
        "ignore": ["No answer for three days, messages unread.", "Calls declined. Pausing for a week.", "The client asked for a break from calls."],
        "back_from_ignore": ["The client wrote on Telegram, interested again.", "Back in touch after the pause, asked to go over the terms again."],
        "first_sale": ["First deposit is in! The client is happy.", "First deposit received, explained the bonus programme."],
        "to_2nd_line": ["Handing over to the 2nd line: an active client.", "Steady deposits, handing over to retention."],
        "sale": ["Another deposit; the client asked about VIP status.", "Repeat deposit went through without questions."],
        "general": ["Prefers messengers to calls.", "On holiday until the end of the month.", "Agreed to call on Monday.",
                    "Line busy all day, will try tomorrow."],
        "mention": [
            "could you take over? The client asks for a senior manager.",
            "please have a look: the client asks about custom terms.",
            "this is your client from an earlier deal, passing the contact on.",
        ],
    },
}
TASKS = {  # what to do next, by the stage the deal waits in ("retention": the 2nd line)
    "ru": {
        "not_processed": ["Первый звонок: познакомиться, выяснить интерес", "Связаться по заявке с сайта"],
        "in_conversation": ["Отправить ссылку на регистрацию", "Перезвонить, как договорились"],
        "link_sent": ["Уточнить, дошла ли ссылка", "Напомнить про регистрацию"],
        "registration": ["Предложить бонус на первое пополнение", "Помочь с первым пополнением"],
        "back_from_ignore": ["Повторить условия: клиент снова на связи", "Уточнить удобное время для звонка"],
        "retention": ["Познакомиться: новый менеджер второй линии", "Рассказать про VIP-программу"],
        "meeting": ["Встреча в офисе: условия VIP", "Видеозвонок: презентация пакета «Премиум»"],
        "result": ["Созвонились, всё в силе.", "Не отвечает, написали в WhatsApp.", "Клиент подтвердил интерес, отправили условия.",
                   "Условия отправлены на почту."],
        "birthday": "Поздравить с днём рождения",
    },
    "en": {
        "not_processed": ["First call: introduce ourselves, find out the interest", "Follow up the website request"],
        "in_conversation": ["Send the sign-up link", "Call back as agreed"],
        "link_sent": ["Check the link arrived", "Remind about signing up"],
        "registration": ["Offer the first-deposit bonus", "Help with the first deposit"],
        "back_from_ignore": ["Go over the terms again: the client is back", "Find a good time to call"],
        "retention": ["Introduce the 2nd-line manager", "Tell about the VIP programme"],
        "meeting": ["Office meeting: VIP terms", "Video call: Premium package demo"],
        "result": ["Talked, all still on.", "No answer, wrote on WhatsApp.", "The client confirmed the interest, terms sent.", "Terms sent by email."],
        "birthday": "Send birthday wishes",
    },
}
NOTES = {
    "ru": [
        "Предпочитает Telegram, звонить только после 12:00.",
        "Просит присылать всё письменно, на звонки отвечает редко.",
        "Контакт по рекомендации действующего клиента.",
        "Не звонить по выходным.",
        "Интересуют только крупные пакеты, решения принимает быстро.",
        "Общаться строго на «вы».",
    ],
    "en": [
        "Prefers Telegram; call only after noon.",
        "Wants everything in writing, rarely answers calls.",
        "Referred by an existing client.",
        "No calls at weekends.",
        "Interested in large packages only, decides fast.",
    ],
}


def _pick(rnd, weighted):
    values, weights = zip(*weighted, strict=True)
    return rnd.choices(values, weights)[0]


def _person(rnd, russian: bool) -> dict:
    """A name whose parts agree: surname and patronymic in the first name's gender."""
    male = rnd.random() < 0.5
    if russian:
        first = rnd.choice(RU_MALE if male else RU_FEMALE)
        surname = rnd.choice(RU_SURNAMES)
        surname = surname if male else feminine(surname)
        patronymic = rnd.choice(RU_PATRONYMICS)[0 if male else 1]
        full = f"{surname} {first} {patronymic}"
        name = full if len(full) <= NAME_MAX and rnd.random() < 0.6 else f"{surname} {first}"
        return {"name": name, "first": first, "last": surname, "patronymic": patronymic if name == full else ""}
    first = rnd.choice(EN_MALE if male else EN_FEMALE)
    last = rnd.choice(EN_SURNAMES)
    return {"name": f"{first} {last}", "first": first, "last": last, "patronymic": ""}


def _latin(text: str) -> str:
    return "".join(TRANSLIT.get(ch, ch) for ch in text.lower())


def _email(rnd, person: dict, country: str, used: set) -> str:
    first, last = _latin(person["first"]), _latin(person["last"])
    local = rnd.choice([f"{first}.{last}", f"{last}.{first}", f"{first[0]}.{last}", f"{last}{rnd.randint(70, 99)}", f"{first}{last}"])
    domain = _pick(rnd, EMAIL_DOMAINS[country])
    address = f"{local}@{domain}"
    while address in used:
        address = f"{local}{rnd.randint(1, 999)}@{domain}"
    used.add(address)
    return address


def _phone(rnd, country: str, city: str) -> str:
    if country == "RU":
        return f"+79{rnd.randint(10, 99)}{rnd.randint(1000000, 9999999)}"
    if country == "KZ":
        return f"+77{rnd.choice(['01', '02', '05', '07', '08', '47', '71', '75', '77', '78'])}{rnd.randint(1000000, 9999999)}"
    if country == "BY":
        return f"+375{rnd.choice(['29', '33', '44', '25'])}{rnd.randint(1000000, 9999999)}"
    if country == "US":
        return f"+1{rnd.choice(US_AREA_CODES[city])}555{rnd.randint(1000, 9999)}"
    return f"+447{rnd.randint(400000000, 999999999)}"  # GB mobile


def _company(rnd, person: dict, country: str) -> str:
    if country in ("RU", "KZ", "BY") and rnd.random() < 0.3:
        initials = " ".join(f"{part[0]}." for part in (person["first"], person["patronymic"]) if part)
        return f"ИП {person['last']} {initials}"
    words = RU_COMPANIES if country in ("RU", "KZ", "BY") else EN_COMPANIES
    return rnd.choice(COMPANY_FORMS[country]).format(rnd.choice(words))


def _insert_dated(model, objs: list, stamps: list[str]) -> list:
    """bulk_create (ids in list order), then write back the past times that auto_now(_add)
    replaced with "now": one plain UPDATE per row (bulk_update's CASE costs seconds here)."""
    kept = [[getattr(obj, name) for name in stamps] for obj in objs]
    model.objects.bulk_create(objs, batch_size=500)
    fields = [model._meta.get_field(name) for name in stamps]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    rows = []
    for obj, values in zip(objs, kept, strict=True):
        for field, value in zip(fields, values, strict=True):
            setattr(obj, field.attname, value)
        rows.append([*(f.get_db_prep_value(v, connection) for f, v in zip(fields, values, strict=True)), obj.pk])
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s", rows)
    return objs


@transaction.atomic
def load_demo(*, clients: int = 2000, seed: int = 7) -> list[tuple[str, str]]:
    """Create demo users and data once; return (username, password) pairs. Safe to run twice."""
    User = get_user_model()
    team, _ = Team.objects.get_or_create(name="Отдел продаж")
    users = []
    for username, first, last, email, role_name, language in DEMO_USERS:
        role = Role.objects.get(group__name=role_name)
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": email, "role": role, "language": language, "team": team},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
            user.groups.set([role.group])
        users.append(user)
    logins = [(u.username, DEMO_PASSWORD) for u in users]
    if Client.objects.exists():
        return logins
    Seeder(random.Random(seed), users).run(clients)
    from clients import duplicates
    from clients.models import LeadStep

    # Leads stand at their steps (seed 004): the potential clients spread over all but the last one.
    steps = list(LeadStep.objects.order_by("position", "pk"))[:-1]
    leads = list(Client.objects.filter(lifecycle=Lifecycle.POTENTIAL).order_by("pk").values_list("pk", flat=True))
    for i, step in enumerate(steps):
        Client.objects.filter(pk__in=leads[i::len(steps)]).update(step=step)

    duplicates.rebuild()  # the "Possible duplicates" list, as `manage.py find_duplicates` makes it after an import
    return logins


class Seeder:
    """One run of the demo: clients, then their deals, sales, tasks and notes, then the feed."""

    WORKDAY = (9, 21)  # local hours when managers write
    WAITING = ("not_processed", "in_conversation", "link_sent", "registration", "back_from_ignore")

    def __init__(self, rnd: random.Random, users: list):
        self.rnd = rnd
        self.users = users
        self.now = timezone.now()
        self.feed: list[tuple[datetime, int, Activity]] = []  # (when, order written, entry)
        self.emails: set[str] = set()

    def log(self, when, **fields) -> None:
        self.feed.append((when, len(self.feed), activity.entry(**fields)))

    def working(self, when: datetime) -> datetime:
        """The moment itself in working hours; at night, the next morning."""
        local = timezone.localtime(when)
        if self.WORKDAY[0] <= local.hour < self.WORKDAY[1]:
            return when
        day = local.date() + timedelta(days=1 if local.hour >= self.WORKDAY[1] else 0)
        return timezone.make_aware(datetime.combine(day, time(self.WORKDAY[0]))) + timedelta(minutes=self.rnd.randint(0, 180))

    def between(self, start: datetime, end: datetime | None = None) -> datetime:
        """A working-hours moment from start to end (now by default), never after end."""
        end = min(end or self.now, self.now)
        if end <= start:
            return end
        moment = self.working(start + (end - start) * self.rnd.random())
        return moment if moment <= end else start

    def run(self, count: int) -> None:
        rnd = self.rnd
        tags = [Tag.objects.get_or_create(name=n, defaults={"color": c})[0] for n, c in TAGS]
        CustomField.objects.get_or_create(label="Источник лида", defaults={"kind": "select", "choices": ["Лендинг", "Партнёр", "Выставка"], "position": 1})
        CustomField.objects.get_or_create(label="Дата рождения", defaults={"kind": "date", "position": 2})
        self.source, self.birthday = CustomField.objects.order_by("position")[:2]
        clients = [self.client(i) for i in range(count)]
        deal_owners = rnd.sample(clients, k=min(len(clients), round(len(clients) * 0.35)))
        plans = self.deals(deal_owners)  # sets the clients' sales, player ID and registration date
        _insert_dated(Client, clients, ["created_at", "modified_at"])
        through = Client.tags.through
        through.objects.bulk_create(
            [through(client_id=c.pk, tag_id=t.pk) for c in clients for t in rnd.sample(tags, k=rnd.choice([0, 0, 1, 1, 2]))],
            batch_size=1000,
        )
        for client in clients:
            self.log(client.created_at, client_id=client.pk, actor=client.created_by, kind=Activity.Kind.CREATED, new=client.name)
        self.save_deals(plans)
        self.comments_tasks_notes(clients, plans)
        self.save_feed()
        self.shifts()
        self.messenger()
        self.robots()
        self.partners()

    DEMO_CHATS = [  # name, country, city, phone, what they wrote
        ("Волкова Дарья", "RU", "Москва", "+79161230001", ["Здравствуйте! Сколько стоит подключение?", "А есть рассрочка?"]),
        ("Семёнов Игорь", "RU", "Казань", "+79031230002", ["Добрый день, хочу записаться на демонстрацию"]),
        ("Alice Cooper", "GB", "London", "+447700900123", ["Hi! Do you ship to London?"]),
        ("Лебедева Марина", "RU", "Санкт-Петербург", "+79031112233", ["Спасибо за ссылку, зарегистрировалась", "Как пополнить счёт?"]),
        ("Никитин Олег", "RU", "Новосибирск", "+79131230005", ["Перезвоните мне, пожалуйста, после 18:00"]),
        ("Tom Baker", "GB", "Manchester", "+447700900456", ["Is the offer still valid?"]),
    ]

    def messenger(self) -> None:
        """Issue 15: a site chat (the console channel) whose visitors wrote through the real pipeline:
        new clients and deals given out on shift, unread counts, some answered; and quick replies."""
        from deals.models import Line
        from messenger.channels import Incoming
        from messenger.models import Channel, Message, QuickReply
        from messenger.receive import receive, touch

        line = Line.objects.order_by("funnel__position", "position").first()
        channel = Channel.objects.create(kind=Channel.Kind.CONSOLE, name="Чат на сайте", line=line)
        QuickReply.objects.get_or_create(title="привет", defaults={"text": "Здравствуйте, {name}! Меня зовут {manager}, чем могу помочь?"})
        QuickReply.objects.get_or_create(title="ссылка", defaults={"text": "{name}, вот ссылка на регистрацию: https://example.com/r"})
        for index, (name, country, city, phone, texts) in enumerate(self.DEMO_CHATS):
            for number, text in enumerate(texts):
                message = receive(channel, Incoming(external_id=f"demo-{index}-{number}", chat_id=f"visitor-{index}", text=text,
                                                    name=name, phone=phone))
            if message is not None:  # what the manager filled in on the card while they talked
                Client.objects.filter(pk=message.conversation.client_id).update(country=country, city=city)
            if index % 2 and message is not None:  # answered: the conversation's unread count goes with the reply
                conversation = message.conversation
                conversation.refresh_from_db()
                reply = Message.objects.create(conversation=conversation, channel=channel, direction=Message.Direction.OUT,
                                               text="Добрый день! Сейчас подскажу.", author=conversation.assignee,
                                               status=Message.Status.READ, sent_at=self.now)
                touch(conversation, reply, count_unread=False)
                conversation.unread_by.all().delete()
                type(conversation).objects.filter(pk=conversation.pk).update(unread=0)

    def robots(self) -> None:
        """Issue 16: robots on the first line, as an admin would set them up. What the seeding did
        before them is history: its events are marked processed, so no robot fires on it."""
        from crm.models import Event
        from deals.models import Stage
        from robots.models import Robot
        from tasks.models import TaskType

        Event.objects.filter(processed_at__isnull=True).update(processed_at=timezone.now())
        stages = {s.code: s for s in Stage.objects.filter(line__funnel__name="Sales", line__position=1)}
        call = TaskType.objects.order_by("position").first()
        vip = Tag.objects.filter(name="VIP").first()
        plans = [
            ("in_conversation", "Приветствие", Robot.Trigger.ENTERED, None, {"hours_from": "09:00", "hours_to": "21:00"},
             [{"kind": "message", "text": "Здравствуйте, {name}! Меня зовут {manager}, я ваш менеджер. Чем могу помочь?"}]),
            ("link_sent", "Напомнить о регистрации", Robot.Trigger.IDLE, 120, {},
             [{"kind": "task", "task_type": call.pk if call else None, "text": "Напомнить {name} о регистрации",
               "deadline_minutes": 60, "user": 0}]),
            ("first_sale", "Первая продажа", Robot.Trigger.ENTERED, None, {},
             [{"kind": "tag_add", "tag": vip.pk if vip else None},
              {"kind": "notify", "text": "Первая продажа: {name}", "users": [], "responsible": True}]),
        ]
        for position, (code, name, trigger, minutes, conditions, actions) in enumerate(plans, 1):
            if code in stages:
                Robot.objects.create(stage=stages[code], name=name, trigger=trigger, idle_minutes=minutes,
                                     conditions=conditions, actions=actions, position=position)

    def partners(self) -> None:
        """Issue 17: a partner the demo's registration links go to (its test console sends postbacks)."""
        from partners.models import Partner

        Partner.objects.get_or_create(slug="demo-partner", defaults={
            "name": "Партнёрская сеть", "url_template": "https://example.com/register?click={click_id}&sub1={deal_id}",
            "params": {"click": "subid", "amount": "payout", "transaction": "tid"}, "currency": "RUB"})

    def shifts(self) -> None:
        """Issue 14: the 1st line hands new deals out by round robin; the managers' last two weeks
        of shifts (9:00 to 18:00 with a half-hour break, weekdays) are in the log, and Emily is on
        shift now, so "On shift now" is not empty."""
        from deals.models import Line, Shift, ShiftPause

        Line.objects.filter(funnel__name="Sales", position=1).update(distribution=Line.Distribution.ROUND_ROBIN)
        managers = [u for u in self.users if u.role and u.role.group.name == Role.MANAGER]
        today = timezone.localdate()
        for user in managers:
            for back in range(14, 0, -1):
                day = today - timedelta(days=back)
                if day.weekday() >= 5:
                    continue
                start = timezone.make_aware(datetime.combine(day, time(9, self.rnd.randint(0, 20))))
                end = timezone.make_aware(datetime.combine(day, time(18, self.rnd.randint(0, 40))))
                pause = timezone.make_aware(datetime.combine(day, time(13, self.rnd.randint(0, 30))))
                shift = Shift.objects.create(user=user, started_at=start, ended_at=end, ended_how=Shift.Ended.USER,
                                             paused_seconds=1800, seen_at=end)
                ShiftPause.objects.create(shift=shift, started_at=pause, ended_at=pause + timedelta(minutes=30))
        on_shift = next((u for u in managers if u.language == "en"), None)
        if on_shift is not None:
            started = self.now - timedelta(hours=3)
            Shift.objects.create(user=on_shift, started_at=started, seen_at=self.now)

    # Clients ------------------------------------------------------------------------------------

    def client(self, index: int) -> Client:
        rnd = self.rnd
        russian = rnd.random() < 0.7
        person = _person(rnd, russian)
        country = _pick(rnd, RUSSIAN_COUNTRIES if russian else ENGLISH_COUNTRIES)
        city = _pick(rnd, CITIES[country])
        phone = _phone(rnd, country, city)
        admin, manager1, manager2 = self.users
        owner = _pick(rnd, [(manager1, 55), (admin, 25), (manager2, 20)] if russian else [(manager2, 70), (manager1, 15), (admin, 15)])
        custom = {}
        if rnd.random() < 0.5:
            custom[self.source.key] = rnd.choice(self.source.choices)
        if rnd.random() < 0.3:
            custom[self.birthday.key] = (self.now - timedelta(days=rnd.randint(7000, 20000))).date().isoformat()
        created = self.between(self.now - timedelta(days=720), self.now - timedelta(hours=1))
        client = Client(
            name=person["name"], name_key=name_key(person["name"]), responsible=owner, phone=phone, phone_digits=phone_digits([phone]),
            email=_email(rnd, person, country, self.emails) if rnd.random() < 0.8 else "",
            country=country, city=city, company=_company(rnd, person, country) if rnd.random() < 0.35 else "",
            channel=rnd.choice(Channel.values), priority=_pick(rnd, [(Priority.NORMAL, 6), (Priority.HIGH, 2), (Priority.LOW, 2)]),
            lifecycle=Lifecycle.POTENTIAL, custom=custom, created_by=owner, modified_by=owner,
            created_at=created, modified_at=min(self.working(created + (self.now - created) * rnd.random() ** 3), self.now),
        )
        client.language = "ru" if russian else "en"  # type: ignore[attr-defined]  # the demo's own: its deal's name's language, not saved
        client.index = index  # type: ignore[attr-defined]  # the demo's own, not saved
        return client

    # Deals: each one's way through the funnel, as the board would have recorded it ------------------

    def routes(self, stages):
        """(the stages a deal went through in order, weight) for each way through the Sales funnel."""
        lines = {}
        for stage in stages:
            lines.setdefault(stage.line_id, []).append(stage)
        first, *others = lines.values()
        code = {s.code: s for s in first}
        steps = ["not_processed", "in_conversation", "link_sent", "registration", "first_sale", "to_2nd_line"]
        if not all(c in code for c in [*steps, "ignore", "back_from_ignore"]):
            return [(stages[: i + 1], 1) for i in range(len(stages))]  # a funnel rebuilt by hand: straight through
        main = [code[c] for c in steps]
        routes = [(main[: i + 1], w) for i, w in enumerate([14, 14, 10, 9, 10, 5])]
        for i in range(3):  # went quiet after the first, second or third step; some came back
            routes += [([*main[: i + 1], code["ignore"]], 3), ([*main[: i + 1], code["ignore"], code["back_from_ignore"]], 1)]
        if others:
            routes += [(main + others[0][: i + 1], 5) for i in range(len(others[0]))]
        return routes

    def timeline(self, client: Client, events: list, last_stage) -> tuple[datetime, list[datetime]]:
        """When the deal was created and when each event happened: steps a day or so apart, repeat
        sales a week or two apart, then the deal waits in its stage (briefly if it waits for the
        manager), all in working hours, after the client was created and before now."""
        rnd, day = self.rnd, 86400
        gaps = [max(600.0, rnd.expovariate(1 / (12 * day if repeat else day))) for _kind, repeat, *_ in events]
        waiting = last_stage.code in self.WAITING and last_stage.line_id == self.first_line_id
        idle = rnd.uniform(0, 14 if waiting else 120) * day
        created = max(client.created_at + timedelta(minutes=rnd.randint(10, 240)),
                      self.now - timedelta(seconds=sum(gaps) + idle + len(gaps) * 0.3 * day))
        created = min(self.working(created), self.now)
        times, moment = [], created
        for gap in gaps:
            moment = self.working(moment + timedelta(seconds=gap))
            times.append(moment)
        if times and times[-1] > self.now:  # a client of the last days: the same steps, closer together
            scale = (self.now - created) / (times[-1] - created)
            times = [created + (t - created) * scale for t in times]
        return created, times

    def deals(self, owners: list[Client]) -> list:
        from deals.models import Deal, Stage

        stages = list(Stage.objects.filter(line__funnel__name="Sales").order_by("line__position", "position"))
        if not stages:
            return []
        self.first_line_id = stages[0].line_id
        routes = self.routes(stages)
        sale_before = {s.pk for s in stages if s.code == "first_sale"} or {stages[len(stages) // 2].pk}
        rnd = self.rnd

        def amount():
            return Decimal(rnd.randrange(500, 20000, 100))

        plans = []
        for client in owners:
            path = _pick(rnd, routes)
            events: list[tuple[Any, ...]] = []  # ("move", repeat, from, to) and ("sale", repeat, amount)
            for before, stage in pairwise(path):
                if stage.pk in sale_before:
                    events.append(("sale", False, amount()))
                events.append(("move", False, before, stage))
            if any(e[0] == "sale" for e in events):
                events += [("sale", True, amount()) for _ in range(rnd.choice([0, 0, 1, 1, 2, 3]))]
            created, times = self.timeline(client, events, path[-1])
            events = [(t, *e) for t, e in zip(times, events, strict=True)]  # (when, kind, repeat, …)
            sales = [e for e in events if e[1] == "sale"]
            moved = [e[0] for e in events if e[1] == "move"]
            registered = next((e[0] for e in events if e[1] == "move" and e[4].code == "registration"), None)
            if registered or sales:
                client.external_id = str(100000 + client.index)  # type: ignore[attr-defined]  # set by self.client()
            if registered:
                client.registration_date = timezone.localtime(registered).date()
            language = client.language  # type: ignore[attr-defined]  # set by self.client()
            deal = Deal(
                client=client, stage=path[-1], name=f"{client.name.split()[0 if language == 'ru' else -1]} — {rnd.choice(PRODUCTS[language])}",
                budget=Decimal(rnd.randrange(1000, 100000, 500)), responsible=client.responsible, channel=client.channel,
                sales_count=len(sales), sales_sum=sum((e[3] for e in sales), Decimal(0)),
                last_sale_at=sales[-1][0] if sales else None, registration_date=client.registration_date if registered else None,
                version=1 + len(moved), created_by=client.responsible, created_at=created, modified_at=max([created, *times]),
                position=-(moved[-1] if moved else created).timestamp(),  # as a move or a new deal sets it
            )
            if sales:
                client.sales_count += deal.sales_count
                client.sales_sum += deal.sales_sum
                client.last_sale_at = max(filter(None, [client.last_sale_at, deal.last_sale_at]))
                client.lifecycle = Lifecycle.CONVERTED
            plans.append((deal, path[0], events))
        return plans

    def save_deals(self, plans) -> None:
        """The deals and sales, and the feed entries deal_create, deal_move and sale_add write."""
        from deals.models import Deal, Sale

        if not plans:
            return
        _insert_dated(Deal, [deal for deal, _first, _events in plans], ["created_at", "modified_at"])
        sales = []
        for deal, first, events in plans:
            actor, client = deal.responsible, deal.client
            with override(actor.language):
                self.log(deal.created_at, client_id=client.pk, deal_id=deal.pk, actor=actor, kind=Activity.Kind.DEAL,
                         new=f"#{deal.pk} {deal.name} · {first}")
            for when, kind, _repeat, *rest in events:
                if kind == "move":
                    self.log(when, client_id=client.pk, deal_id=deal.pk, actor=actor, kind=Activity.Kind.STAGE,
                             field="stage", old=rest[0].pk, new=rest[1].pk)
                else:
                    sales.append(Sale(deal=deal, client_id=client.pk, player_id=client.external_id, amount=rest[0],
                                      created_by=actor, created_at=when))
                    self.log(when, client_id=client.pk, deal_id=deal.pk, actor=actor, kind=Activity.Kind.SALE,
                             new=rest[0], text=client.external_id)
        _insert_dated(Sale, sales, ["created_at"])

    # What the managers wrote and planned -------------------------------------------------------

    def comments_tasks_notes(self, clients, plans) -> None:
        """Comments after some steps (as comment_add writes them), tasks done and to do (as
        task_create and task_complete write them), and notes (as note_save writes them)."""
        from tasks.models import Task, TaskType

        rnd, now = self.rnd, self.now
        types = {t.name: t for t in TaskType.objects.filter(is_default_name=True)}
        contact, meeting, greeting = (types.get(n) for n in ("Contact the client", "Meeting", "Birthday greeting"))
        tasks = []

        def comment(client, actor, pool, start, end=None):
            text = rnd.choice(COMMENTS[actor.language][pool])
            if rnd.random() < 0.05:
                colleague = rnd.choice([u for u in self.users if u.pk != actor.pk] or [actor])
                text = f"@{colleague.username} {rnd.choice(COMMENTS[actor.language]['mention'])}"
            end = min(end or now, start + timedelta(hours=3))
            self.log(self.between(start, end), client_id=client.pk, actor=actor, kind=Activity.Kind.COMMENT, text=text)

        def task(client, deal, type_, text, created, deadline, done_at=None):
            if type_ is None:
                return
            actor = client.responsible
            item = Task(client=client, deal=deal, type=type_, description=text[:200], responsible=actor, deadline=deadline,
                        created_by=actor, created_at=created)
            if done_at:
                item.status, item.completed_by, item.completed_at = Task.Status.DONE, actor, done_at
                item.result = rnd.choice(TASKS[actor.language]["result"])
            elif deadline <= now:  # overdue: its reminder went out then
                item.reminded_overdue_at = deadline
            tasks.append(item)

        def deadline_after(moment):
            """A round working-hours time within a week of today (yesterday's is overdue)."""
            day = timezone.localtime(now).date() + timedelta(days=rnd.randint(-1, 7))
            at = timezone.make_aware(datetime.combine(day, time(rnd.randint(10, 19), rnd.choice([0, 30]))))
            return at if at > moment + timedelta(minutes=30) else at + timedelta(days=(moment - at).days + 1)

        for deal, _first, events in plans:
            client, actor = deal.client, deal.responsible
            lang = actor.language
            for index, (when, kind, repeat, *rest) in enumerate(events):
                after = events[index + 1][0] if index + 1 < len(events) else None
                pool = ("sale" if repeat else None) if kind == "sale" else rest[1].code
                if pool in COMMENTS[lang] and rnd.random() < (0.25 if kind == "sale" else 0.4):
                    comment(client, actor, pool, when, after)
                first_call = kind == "move" and rest[1].code == "in_conversation" and rest[1].line_id == self.first_line_id
                if first_call and rnd.random() < 0.4:  # the call that got through
                    created = self.between(events[index - 1][0] if index else deal.created_at, when)
                    task(client, deal, contact, rnd.choice(TASKS[lang]["not_processed"]), created,
                         created + timedelta(days=1), done_at=when)
            stage, first_line = deal.stage, deal.stage.line_id == self.first_line_id
            waits = stage.code in self.WAITING if first_line else stage.code in ("not_processed", "in_conversation")
            if waits and rnd.random() < 0.5:  # the next step, planned in the last days
                type_, pool = (meeting, "meeting") if rnd.random() < 0.15 else (contact, stage.code if first_line else "retention")
                created = self.between(max(deal.modified_at, now - timedelta(days=rnd.randint(1, 4))))
                task(client, deal, type_, rnd.choice(TASKS[lang][pool]), created, deadline_after(created))
        with_deal = {deal.client.pk for deal, _first, _events in plans}
        local_today = timezone.localtime(now).date()
        for client in clients:
            actor = client.responsible
            if client.pk not in with_deal and rnd.random() < 0.15:
                comment(client, actor, "general", self.between(client.created_at), now)
            born = client.custom.get(self.birthday.key)
            if born:
                try:
                    day = date.fromisoformat(born).replace(year=local_today.year)
                except ValueError:  # 29 February
                    continue
                if 1 <= (day - local_today).days <= 30:
                    deadline = timezone.make_aware(datetime.combine(day, time(10)))
                    created = self.between(max(client.created_at, now - timedelta(days=2)))
                    task(client, None, greeting, TASKS[actor.language]["birthday"], created, deadline)
        if tasks:
            _insert_dated(Task, tasks, ["created_at"])
        for item in tasks:
            deal_id = item.deal.pk if item.deal else None
            self.log(item.created_at, client_id=item.client.pk, deal_id=deal_id, actor=item.created_by, kind=Activity.Kind.TASK,
                     field="created", new=f"{self.label(item.type, item.created_by.language)}: {item.description}", text=str(item.pk))
            if item.status == Task.Status.DONE:
                self.log(item.completed_at, client_id=item.client.pk, deal_id=deal_id, actor=item.completed_by,
                         kind=Activity.Kind.TASK, field="done", new=item.description, text=item.result)
        notes = []
        for client in rnd.sample(clients, k=len(clients) // 12):
            actor = client.responsible
            note = ClientNote(client=client, text=rnd.choice(NOTES[actor.language]), updated_by=actor,
                              updated_at=self.between(client.created_at))
            notes.append(note)
            with override(actor.language):
                self.log(note.updated_at, client_id=client.pk, actor=actor, kind=Activity.Kind.NOTE,
                         field_label=gettext("Note"), old="", new=note.text)
        _insert_dated(ClientNote, notes, ["updated_at"])

    @staticmethod
    def label(obj, language: str) -> str:
        with override(language):
            return str(obj)

    def save_feed(self) -> None:
        """The entries in the order they happened: the feed lists newest first by id."""
        entries = []
        for when, _order, entry in sorted(self.feed, key=lambda item: item[:2]):
            entry.created_at = when
            entries.append(entry)
        _insert_dated(Activity, entries, ["created_at"])
