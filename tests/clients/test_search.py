"""The clients table's search: phones as typed in Russia, names by their words in any order."""

import html
import re

import pytest
from django.db import connection
from django.urls import reverse

from clients.filters import search_q
from clients.models import Client
from clients.phones import phone_digits, phone_search
from tests.conftest import HX
from tests.factories import ClientFactory, DealFactory

pytestmark = pytest.mark.django_db

NAME_CELL = re.compile(r'<td class="name"><a href="[^"]+">([^<]*)</a></td>')


def shown(response) -> list[str]:
    """The client names in the rendered table."""
    assert response.status_code == 200
    return sorted(html.unescape(name) for name in NAME_CELL.findall(response.content.decode()))


def client_with(name, *phones):
    return ClientFactory(name=name, phone=phones[0], extra_phones=list(phones[1:]), phone_digits=phone_digits(list(phones)))


@pytest.fixture
def people(db):
    client_with("Назаров Егор", "+79991234567")
    client_with("Смирнова Анна", "+79161112233", "+79997654321")  # a second phone
    client_with("Egorov Nazar", "+74958999120")  # "8999 12" in the middle of its digits
    client_with("Smith John", "+12025550143")


@pytest.mark.parametrize("typed", ["89991234567", "8 (999) 123-45-67", "+7 999 123 45 67", "9991234567", "8-999-123-45-67"])
def test_a_russian_number_in_any_everyday_form_finds_the_client(typed, admin_client, people):
    page = admin_client.get(reverse("clients:list"), {"q": typed}, headers=HX)
    assert shown(page) == ["Назаров Егор"]


@pytest.mark.parametrize("typed,found", [
    ("123-45", ["Назаров Егор"]),  # the middle of a number
    ("4567", ["Назаров Егор"]),
    ("555", ["Smith John"]),
    ("8 999 123", ["Назаров Егор"]),  # the beginning, with the trunk 8
    ("8 999", ["Egorov Nazar", "Назаров Егор", "Смирнова Анна"]),  # trunk-8 start, or those digits anywhere
    ("+7 999 765", ["Смирнова Анна"]),  # her second phone
    ("8 999 765", ["Смирнова Анна"]),
    ("+1 202 555 0143", ["Smith John"]),
])
def test_digit_fragments_still_search_as_substrings(typed, found, admin_client, people):
    assert shown(admin_client.get(reverse("clients:list"), {"q": typed}, headers=HX)) == found


def test_the_phone_filter_reads_numbers_the_same_way(admin_client, people):
    url = reverse("clients:list")
    assert shown(admin_client.get(url, {"phone": "8 (999) 765-43-21"})) == ["Смирнова Анна"]
    assert shown(admin_client.get(url, {"phone": "89991234567"})) == ["Назаров Егор"]
    response = admin_client.get(reverse("clients:search"), {"go": "1", "phone": "8 999 123 45 67"})
    assert response.status_code == 302 and response.url == Client.objects.get(name="Назаров Егор").get_absolute_url()


def test_phone_search_patterns():
    assert phone_search("8 (999) 123-45-67").anywhere == ("89991234567", "79991234567")
    assert phone_search("+7 999 123 45 67") == phone_search("79991234567")
    assert phone_search("9991234567").anywhere == ("9991234567",)  # already a substring of the stored digits
    assert phone_search("8 999 12").at_start == ("799912",)
    assert phone_search("+8 999").at_start == ()  # a + means the country code was typed
    assert phone_search("абв") == phone_search("") == phone_search(None)


@pytest.mark.parametrize("typed", ["Егор Назаров", "Назаров Егор", "назаров  ЕГОР", " егор назар ", "Наз Ег"])
def test_name_words_match_in_any_order(typed, admin_client, people):
    assert shown(admin_client.get(reverse("clients:list"), {"q": typed}, headers=HX)) == ["Назаров Егор"]


@pytest.mark.parametrize("typed", ["Егор Смирнова", "Назаров Иван", "Егор Назаров 4567"])
def test_every_word_must_match(typed, admin_client, people):
    assert shown(admin_client.get(reverse("clients:list"), {"q": typed}, headers=HX)) == []


def test_one_word_still_finds_every_name_containing_it(admin_client, people):
    assert shown(admin_client.get(reverse("clients:list"), {"q": "nazar"}, headers=HX)) == ["Egorov Nazar"]
    assert shown(admin_client.get(reverse("clients:list"), {"q": "Егор"}, headers=HX)) == ["Назаров Егор"]


def test_client_or_deal_name_filter_takes_words_in_any_order(admin_client, admin, people):
    buyer = ClientFactory(name="Покупатель")
    DealFactory(client=buyer, name="Поставка кирпича", responsible=admin)
    url = reverse("clients:list")
    assert shown(admin_client.get(url, {"name": "кирпича поставка"})) == ["Покупатель"]
    assert shown(admin_client.get(url, {"name": "Егор Назаров"})) == ["Назаров Егор"]
    assert shown(admin_client.get(url, {"name": "Назаров кирпича"})) == []  # words split between a client and a deal


@pytest.fixture
def crowd(people):
    """Enough clients, analysed, for the planner to choose between a scan and an index honestly."""
    Client.objects.bulk_create(
        Client(name=f"Клиент {i} Иванов", phone=f"+7916{i:07d}", phone_digits=f"7916{i:07d}") for i in range(5000)
    )
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk insert: new GIN entries wait in a pending list that every
        # search reads whole, and the planner (rightly) avoids the index while it is long.
        cursor.execute("SELECT gin_clean_pending_list(name::regclass) FROM unnest(%s::text[]) AS name",
                       [["client_name_upper_trgm", "client_phone_trgm"]])
        cursor.execute("ANALYZE clients_client")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL-only")
@pytest.mark.parametrize("typed,index", [
    ("Егор Назаров", "client_name_upper_trgm"),
    ("8 (999) 123-45-67", "client_phone_trgm"),
    ("8 999 12", "client_phone_trgm"),
])
def test_search_conditions_use_the_trigram_indexes(typed, index, crowd):
    plan = Client.objects.alive().filter(search_q(typed)).explain()
    assert f"Bitmap Index Scan on {index}" in plan and "Seq Scan" not in plan, plan
    if index == "client_name_upper_trgm":  # every word is a condition of the index scan, not a filter after it
        conditions = plan.split("Index Cond:", 1)[1]
        assert all(word in conditions for word in typed.upper().split()), plan


def test_format_phone_cuts_russian_mobiles_as_phonenumbers_does():
    """The hand-cut fast path for +79… agrees with the library on every number tried; other
    numbers still go to the library."""
    import random

    import phonenumbers

    from clients.phones import format_phone

    rng = random.Random(7)
    numbers = ["+79000000000", "+79999999999"] + [f"+79{rng.randrange(10**9):09d}" for _ in range(2000)]
    for number in numbers:
        expected = phonenumbers.format_number(phonenumbers.parse(number, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        assert format_phone(number) == expected, number
    assert format_phone("+74951234567") == "+7 495 123-45-67" and format_phone("+16195554744") == "+1 619-555-4744"
    assert format_phone("") == "" and format_phone("not a phone") == "not a phone"


def test_the_search_box_alone_and_with_a_filter_find_the_same_clients(admin_client, admin, people):
    """The search box alone is answered without a filter set (the live search's requests); with a
    filter beside it the filter set answers: both read the box the same way."""
    Client.objects.update(country="RU")
    Client.objects.filter(name="Smith John").update(responsible=admin, country="US")
    url = reverse("clients:list")
    for typed in ("8 999", "Егор", "nazar egorov", "555"):
        alone = shown(admin_client.get(url, {"q": typed}, headers=HX))
        with_view = shown(admin_client.get(url, {"q": typed, "view": "all"}, headers=HX))
        with_filter = shown(admin_client.get(url, {"q": typed, "country": ["RU", "US"]}, headers=HX))
        assert alone == with_view == with_filter, typed
    assert shown(admin_client.get(url, {"q": "555", "responsible": admin.pk}, headers=HX)) == ["Smith John"]


def test_a_search_with_a_nul_character_finds_nothing_and_fails_nothing(admin_client, people):
    page = admin_client.get(reverse("clients:list"), {"q": "Назаров\x00"}, headers=HX)
    assert shown(page) == []
