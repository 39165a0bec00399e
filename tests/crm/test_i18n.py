"""Both catalogues are complete and compiled: every string a user sees exists in Russian and English."""

import gettext
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

LOCALE = Path(__file__).resolve().parents[2] / "locale"
ENTRY = re.compile(r'^(?:msgctxt "(?P<ctx>.*)"\n)?msgid "(?P<id>.*)"\n(?:msgid_plural .*\n)?msgstr(?:\[0\])? "(?P<str>.*)"$', re.MULTILINE)


def entries(language):
    text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text()
    found = []
    for block in text.split("\n\n"):
        if "#, fuzzy" in block and 'msgid ""\nmsgstr ""\n"Project' not in block:
            found.append(("FUZZY", block))
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        body = body.replace('"\n"', "")  # join continued strings
        match = ENTRY.search(body)
        if match and match["id"]:
            found.append((match["ctx"], match["id"], match["str"]))
    return found


@pytest.mark.parametrize("language", ["ru", "en"])
def test_catalogue_complete(language):
    rows = entries(language)
    assert len(rows) > 200
    assert not [r for r in rows if r[0] == "FUZZY"], "fuzzy entries left"
    assert not [r[1] for r in rows if not r[2]], "untranslated entries"


def test_catalogues_list_the_same_strings():
    # fuzzy entries are test_catalogue_complete's to report
    assert {r[:2] for r in entries("ru") if len(r) == 3} == {r[:2] for r in entries("en") if len(r) == 3}


def test_compiled_catalogue_matches_source():
    translation = gettext.translation("django", localedir=LOCALE, languages=["ru"])
    for ctx, msgid, msgstr in (row for row in entries("ru") if len(row) == 3):
        if "%" in msgid or "\\" in msgid:
            continue
        got = translation.pgettext(ctx, msgid) if ctx else translation.gettext(msgid)
        assert got == msgstr, f"stale .mo for {msgid!r}: run scripts/i18n"


# --- No English in a Russian page -------------------------------------------------------------

class VisibleText(HTMLParser):
    """The text a person sees (or hears) in a page: text nodes outside scripts and styles, and the
    attributes shown as tooltips, placeholders, confirmations or read aloud."""

    SHOWN_ATTRS = frozenset({"title", "placeholder", "aria-label", "alt", "hx-confirm", "data-all-label", "data-ticked-label"})
    HIDDEN_TAGS = frozenset({"script", "style"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.nodes = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN_TAGS:
            self.hidden += 1
        for name, value in attrs:
            if value and (name in self.SHOWN_ATTRS or (name == "value" and ("type", "submit") in attrs)):
                self.nodes.append(value)

    def handle_endtag(self, tag):
        if tag in self.HIDDEN_TAGS and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.nodes.append(data)


TRAILING_NOTE = re.compile(r"\s*\([^()]*\)$")


def visible_text(html: str) -> set[str]:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    nodes = set()
    for node in parser.nodes:
        node = " ".join(node.split())
        nodes.add(node)
        nodes.add(node.rstrip(":*…. ").strip())  # a label's colon, a required star, an ellipsis
        nodes.add(TRAILING_NOTE.sub("", node))  # "Moscow (UTC+3)", "Tags (2)"
    return nodes - {""}


WORDY = re.compile(r"[A-Za-z]{2}")


def english_msgids() -> set[str]:
    """Every English source string the Russian catalogue translates into something else."""
    return {
        msgid for _ctx, msgid, msgstr in (row for row in entries("ru") if len(row) == 3)
        if msgstr != msgid and len(msgid) >= 4 and WORDY.search(msgid) and "%" not in msgid and "\\" not in msgid
    }


def untranslated_library_msgids() -> set[str]:
    """English strings of Django and django-filter that have no Russian translation, even with ours merged in."""
    import django
    import django_filters
    import polib

    catalogues = [
        Path(django.__file__).parent / "conf" / "locale" / "en" / "LC_MESSAGES" / "django.po",
        Path(django.__file__).parent / "contrib" / "auth" / "locale" / "en" / "LC_MESSAGES" / "django.po",
        Path(django_filters.__file__).parent / "locale" / "ru" / "LC_MESSAGES" / "django.po",
    ]
    ours = {row[1] for row in entries("ru") if len(row) == 3}  # our catalogue decides ("Email" stays "Email")
    english = set()
    with translation.override("ru"):
        for path in catalogues:
            for entry in polib.pofile(str(path)):
                msgid = entry.msgid
                if entry.msgid_plural or msgid in ours or len(msgid) < 4 or not WORDY.search(msgid) or "%" in msgid:
                    continue
                shown = translation.pgettext(entry.msgctxt, msgid) if entry.msgctxt else translation.gettext(msgid)
                if shown == msgid:
                    english.add(msgid)
    return english


@pytest.fixture
def russian_world(db):
    """A Russian-speaking admin with data everywhere; every name is Russian, so none can be a msgid."""
    from clients import services as client_services
    from clients.models import CustomField, Tag
    from deals import services as deal_services
    from deals.models import Funnel
    from tasks import services as task_services
    from tasks.models import TaskType
    from tests.factories import TeamFactory, UserFactory, role

    team = TeamFactory(name="Отдел продаж")
    with translation.override("ru"):
        boss = UserFactory(username="ivan", first_name="Иван", last_name="Петров", language="ru", role=role("Admin"), team=team)
        colleague = UserFactory(username="olga", first_name="Ольга", last_name="Смирнова", language="ru",
                                role=role("Manager"), team=team)
        CustomField.objects.create(label="Любимый цвет", kind=CustomField.Kind.SELECT, choices=["Красный", "Синий"], position=1)
        CustomField.objects.create(label="Бюджет клиента", kind=CustomField.Kind.NUMBER, position=2)
        tag = Tag.objects.create(name="ВИП", color="blue")
        client = client_services.client_create(
            actor=boss, data={"name": "Анна Кузнецова", "phone": "+79161234567", "email": "anna@example.ru",
                              "company": "Ромашка", "city": "Казань", "responsible": colleague, "tags": [tag]},
        )
        client_services.client_create(  # a possible duplicate of Анна (the same name in another order, the same city)
            actor=boss, data={"name": "Кузнецова Анна", "phone": "+79161234599", "city": "Казань", "responsible": colleague})
        funnel = Funnel.objects.order_by("position", "pk").first()
        stage = funnel.lines.order_by("position").first().stages.order_by("position").first()
        deal = deal_services.deal_create(actor=boss, client=client, stage=stage, name="Поставка мебели", budget=50000)
        deal_services.sale_add(actor=boss, deal=deal, player_id="12345", amount=1500)
        task = task_services.task_create(actor=boss, client=client, type=TaskType.objects.first(), description="Перезвонить",
                                         responsible=colleague, deadline="2030-01-01T10:00Z", deal=deal)
        done = task_services.task_create(actor=boss, client=client, type=TaskType.objects.first(),
                                         description="Отправить договор", responsible=boss, deadline="2020-01-01T10:00Z")
        task_services.task_complete(actor=boss, task=done, result="Отправлено")
        client_services.comment_add(actor=colleague, client=client, text="@ivan посмотрите, пожалуйста")  # notifies
        from messenger import ignore
        from messenger.channels import Incoming
        from messenger.models import Channel
        from messenger.receive import receive

        chat = Channel.objects.create(kind=Channel.Kind.CONSOLE, name="Чат на сайте")
        said = receive(chat, Incoming(external_id="1", chat_id="гость-1", text="Здравствуйте!", name="Пётр Сидоров"))
        ignore.ignore_client(actor=boss, client=said.conversation.client, reason="спам")
        from robots.models import Robot

        robot = Robot.objects.create(stage=stage, name="Приветствие", trigger=Robot.Trigger.IDLE, idle_minutes=30,
                                     conditions={"channels": ["telegram"], "tags": [tag.pk], "hours_from": "09:00",
                                                 "hours_to": "18:00", "days": [0, 1, 2, 3, 4]},
                                     actions=[{"kind": "message", "text": "Здравствуйте, {name}!"},
                                              {"kind": "tag_add", "tag": tag.pk}])
        from partners import links, postbacks
        from partners.models import Partner

        partner = Partner.objects.create(name="Партнёрская сеть", slug="set", url_template="https://p.example/?c={click_id}")
        link = links.link_create(actor=boss, deal=deal, partner=partner)
        links.click(link.token, user_agent="", ip="")
        postbacks.receive("set", method="GET", params={"token": "неверный"}, query="", body="", headers={}, ip="127.0.0.1")
    return {"boss": boss, "colleague": colleague, "client": client, "deal": deal, "funnel": funnel, "task": task,
            "conversation": said.conversation, "chat": chat, "robot": robot, "partner": partner}


def russian_pages(world):
    client, deal, funnel = world["client"].pk, world["deal"].pk, world["funnel"].pk
    return {
        "clients": reverse("clients:list"),
        "client card": reverse("clients:detail", args=[client]),
        "client form": reverse("clients:edit", args=[client]),
        "new client": reverse("clients:create"),
        "advanced search": reverse("clients:search"),
        "possible duplicates": reverse("clients:duplicates"),
        "client filters": reverse("clients:filters"),
        "deal board": reverse("deals:board", args=[funnel]),
        "deal table": reverse("deals:table", args=[funnel]),
        "deal filters": reverse("deals:filters", args=[funnel]),
        "deal window": reverse("deals:detail", args=[deal]),
        "deal form": reverse("deals:edit", args=[deal]),
        "tasks": reverse("tasks:list"),
        "task form": reverse("tasks:create", args=[client]),
        "task completion": reverse("tasks:complete", args=[world["task"].pk]),
        "task types": reverse("tasks:types"),
        "users": reverse("crm:users"),
        "user form": reverse("crm:user-edit", args=[world["colleague"].pk]),
        "new user": reverse("crm:user-create"),
        "roles": reverse("crm:roles"),
        "new role": reverse("crm:role-create"),
        "fields": reverse("fields:list"),
        "new field": reverse("fields:create"),
        "card layout": reverse("clients:layout", args=["contact"]),
        "funnels": reverse("deals:funnels"),
        "funnel settings": reverse("deals:settings", args=[funnel]),
        "import upload": reverse("imports:upload"),
        "notifications": reverse("crm:notifications"),
        "profile": reverse("crm:profile"),
        "password": reverse("crm:password"),
        "messenger": reverse("messenger:inbox") + f"?f=all&c={world['conversation'].pk}",
        "ignore list": reverse("messenger:ignore-list"),
        "channels": reverse("messenger:channels"),
        "channel form": reverse("messenger:channel-edit", args=[world["chat"].pk]),
        "new telegram channel": reverse("messenger:channel-create") + "?kind=telegram",
        "new mailbox": reverse("messenger:channel-create") + "?kind=email",
        "quick replies": reverse("messenger:quick-replies"),
        "robots": reverse("robots:board", args=[funnel]),
        "robot form": reverse("robots:edit", args=[funnel, world["robot"].pk]),
        "new robot": reverse("robots:create", args=[funnel, world["robot"].stage_id]),
        "robot log": reverse("robots:log", args=[funnel, world["robot"].pk]),
        "partners": reverse("partners:list"),
        "partner form": reverse("partners:edit", args=[world["partner"].pk]),
        "new partner": reverse("partners:create"),
        "postback log": reverse("partners:log"),
        "merge, finding the other": reverse("clients:merge", args=[client]) + "?q=Пётр",
        "merge side by side": reverse("clients:merge", args=[client]) + f"?other={world['conversation'].client_id}",
        "lead steps": reverse("fields:steps"),
        "today's actions": reverse("clients:today-actions"),
        "convert form": reverse("clients:convert", args=[client]),
        "link to a customer": reverse("clients:link", args=[client]) + "?q=Пётр",
    }


def test_russian_pages_show_no_english(client, russian_world):
    """A Russian user sees no English msgid, and no bare "---------", as a whole piece of text in any main page."""
    english = english_msgids() | untranslated_library_msgids()
    assert "Clients" in english and "Open" in english  # the catalogue was read
    client.force_login(russian_world["boss"])
    found = {}
    for page, url in russian_pages(russian_world).items():
        response = client.get(url)
        assert response.status_code == 200, (page, url, response.status_code)
        assert response.headers["Content-Language"] == "ru"
        text = visible_text(response.text)
        leaks = sorted((text & english) | {node for node in text if set(node) <= set("-–— ") and len(node) > 3})
        if leaks:
            found[page] = leaks
    assert not found, f"English in Russian pages: {found}"


def test_time_zones_are_worded_in_the_users_language():
    from datetime import UTC, datetime

    from crm.timezones import TIME_ZONES, time_zone_choices

    winter = datetime(2026, 1, 15, 12, tzinfo=UTC)
    with translation.override("ru"):
        (russia, russian_zones), (elsewhere, other_zones) = time_zone_choices(winter)
        assert (str(russia), str(elsewhere)) == ("Россия", "Другие страны")
        labels = dict(russian_zones + other_zones)
    assert labels["Europe/Moscow"] == "Москва (UTC+3)"
    assert labels["Asia/Kamchatka"] == "Камчатка (UTC+12)"
    assert labels["America/New_York"] == "Нью-Йорк (UTC-5)"
    assert sorted(labels) == sorted(TIME_ZONES)  # each zone once
    with translation.override("en"):
        summer = dict(time_zone_choices(datetime(2026, 7, 15, 12, tzinfo=UTC))[1][1])
    assert summer["Europe/London"] == "London (UTC+1)"


def test_the_request_carries_the_signed_in_user_itself_not_a_proxy(client, db):
    """UserLanguageMiddleware reads the user and puts it on the request in place of the lazy proxy
    (each attribute read through the proxy cost Python code): signed in, the user; signed out, the
    anonymous user; both in their language."""
    from django.contrib.auth.models import AnonymousUser

    from crm.models import User
    from tests.factories import UserFactory, role

    response = client.get(reverse("crm:login"), headers={"Accept-Language": "en"})
    assert type(response.wsgi_request.user) is AnonymousUser and response.headers["Content-Language"] == "en"
    person = UserFactory(role=role("Manager"), language="ru")
    client.force_login(person)
    response = client.get(reverse("clients:list"))
    assert type(response.wsgi_request.user) is User and response.wsgi_request.user.pk == person.pk
    assert response.headers["Content-Language"] == "ru" and response.context["user"] is response.wsgi_request.user
