"""The demo data (manage.py load_demo): names, places and deal histories a Russian sales team
would believe, and a feed that renders them like any other."""

import re
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, ClientNote
from crm import demo
from crm.countries import COUNTRIES
from crm.models import Activity
from deals.models import Deal, Sale
from tasks.models import Task
from tests.conftest import HX

CLIENTS = 600
CYRILLIC = re.compile(r"^[А-ЯЁа-яё -]+$")
LATIN = re.compile(r"^[A-Za-z' -]+$")
# Surname endings, longest first: a woman's form ends in -а/-ая, a man's does not.
FEMININE_SURNAME = ("ова", "ева", "ёва", "ина", "ына", "ская", "цкая", "ая")
MASCULINE_SURNAME = ("ов", "ев", "ёв", "ин", "ын", "ский", "цкий", "ой")
PHONE_PREFIX = {"RU": "+79", "KZ": "+77", "BY": "+375", "US": "+1", "GB": "+447"}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo loaded once for the module, through the management command, and rolled back after."""
    with django_db_blocker.unblock(), transaction.atomic():
        started = timezone.now()
        call_command("load_demo", clients=CLIENTS, stdout=StringIO())
        yield started
        transaction.set_rollback(True)


pytestmark = pytest.mark.django_db


def gender_of_first_name(first: str) -> str:
    assert (first in demo.RU_MALE) != (first in demo.RU_FEMALE), first
    return "m" if first in demo.RU_MALE else "f"


def test_russian_names_agree_in_gender(seeded):
    names = list(Client.objects.filter(name__regex=r"[А-Яа-яЁё]").values_list("name", flat=True))
    assert len(names) > CLIENTS // 2
    checked = Counter()
    for name in names:
        assert CYRILLIC.match(name), name
        assert len(name) <= 30, name
        surname, first, *patronymic = name.split()
        gender = gender_of_first_name(first)
        if surname.endswith(FEMININE_SURNAME):
            assert gender == "f", name
            checked["f"] += 1
        elif surname.endswith(MASCULINE_SURNAME):
            assert gender == "m", name
            checked["m"] += 1
        else:
            assert surname in demo.RU_SURNAMES, name  # Шевченко, Седых: one form for both
        if patronymic:
            assert patronymic[0].endswith("ич" if gender == "m" else "на"), name
    assert checked["m"] > 50 and checked["f"] > 50
    assert any(n.split()[0].endswith("ская") for n in names) and any(n.split()[0].endswith("ский") for n in names)


def test_the_surname_rule():
    assert [demo.feminine(s) for s in ["Ефремов", "Соловьёв", "Никитин", "Вишневский", "Толстой", "Шевченко", "Седых"]] == [
        "Ефремова", "Соловьёва", "Никитина", "Вишневская", "Толстая", "Шевченко", "Седых",
    ]


def test_countries_cities_and_phones_go_with_the_name(seeded):
    known_countries = {code for code, _label in COUNTRIES}
    cities = {country: {city for city, _weight in pairs} for country, pairs in demo.CITIES.items()}
    english, russian = Counter(), Counter()
    for name, country, city, phone, email in Client.objects.values_list("name", "country", "city", "phone", "email"):
        assert country in known_countries
        assert city in cities[country], (name, country, city)
        assert phone.startswith(PHONE_PREFIX[country]), (name, country, phone)
        assert email == "" or re.fullmatch(r"[a-z0-9.]+@[a-z.]+", email), email
        if LATIN.match(name):
            assert country in ("US", "GB"), (name, country)
            english[country] += 1
        else:
            assert CYRILLIC.match(name) and country in ("RU", "KZ", "BY"), (name, country)
            russian[country] += 1
    assert not (set(english) & {"RU", "KZ", "BY"})
    assert english["US"] and english["GB"] and russian["RU"] > russian["KZ"] + russian["BY"]
    assert Client.objects.exclude(email="").values("email").annotate(n=Count("id")).filter(n__gt=1).count() == 0


def test_every_deal_has_its_history_in_the_feed(seeded):
    now = timezone.now()
    deals = list(Deal.objects.select_related("client", "stage"))
    sold = [d for d in deals if d.sales_count]
    chats = [d for d in deals if d.client.source == "Чат на сайте"]  # the site chat's visitors (issue 15): a deal each
    assert len(chats) == len(demo.Seeder.DEMO_CHATS)
    assert len(deals) - len(chats) == round(CLIENTS * 0.35) and len(sold) > 30
    entries = defaultdict(list)
    for entry in Activity.objects.exclude(deal=None).order_by("pk"):
        entries[entry.deal_id].append(entry)
    created = set(Activity.objects.filter(kind=Activity.Kind.CREATED).values_list("client_id", flat=True))
    sales = defaultdict(list)
    for sale in Sale.objects.all():
        sales[sale.deal_id].append(sale)
    for deal in deals:
        feed = entries[deal.pk]
        kinds = [e.kind for e in feed]
        assert deal.client_id in created
        assert kinds[0] == Activity.Kind.DEAL and kinds.count(Activity.Kind.DEAL) == 1, deal
        assert feed[0].new_value.startswith(f"#{deal.pk} {deal.name} · ")
        moves = [e for e in feed if e.kind == Activity.Kind.STAGE]
        assert deal.version == 1 + len(moves)
        if moves:  # each move starts where the one before ended, the last one where the deal is
            assert all(a.new_value == b.old_value for a, b in pairwise(moves))
            assert moves[-1].new_value == str(deal.stage_id)
        sale_entries = [e for e in feed if e.kind == Activity.Kind.SALE]
        assert len(sale_entries) == deal.sales_count == len(sales[deal.pk])
        assert sum((Decimal(e.new_value) for e in sale_entries), Decimal(0)) == deal.sales_sum
        assert {e.text for e in sale_entries} <= {deal.client.external_id}
        if deal.sales_count:
            assert Activity.Kind.DEAL in kinds and Activity.Kind.SALE in kinds
            assert deal.last_sale_at == max(s.created_at for s in sales[deal.pk])
            assert deal.client.lifecycle == "converted" and deal.client.external_id
        times = [e.created_at for e in feed]
        assert times == sorted(times) and times[-1] <= now
        # the seeder writes a deal and its first entry at one instant; a chat's deal is made live, a moment apart
        assert times[0] - deal.created_at <= (timedelta(seconds=1) if deal in chats else timedelta(0)) and times[0] >= deal.created_at
        assert deal.created_at >= deal.client.created_at
    # the client's totals are its deals' totals
    for client in Client.objects.filter(sales_count__gt=0).prefetch_related("deals"):
        assert client.sales_count == sum(d.sales_count for d in client.deals.all())
        assert client.sales_sum == sum(d.sales_sum for d in client.deals.all())


def test_feed_ids_follow_time_so_newest_is_on_top(seeded):
    rows = list(Activity.objects.order_by("client_id", "pk").values_list("client_id", "created_at"))
    by_client = defaultdict(list)
    for client_id, created_at in rows:
        by_client[client_id].append(created_at)
    assert all(times == sorted(times) for times in by_client.values())
    assert all(t <= timezone.now() for _c, t in rows)


def test_comments_tasks_and_notes(seeded):
    comments = Activity.objects.filter(kind=Activity.Kind.COMMENT)
    assert comments.count() > CLIENTS // 5
    assert comments.filter(text__startswith="@").exists()
    assert not comments.filter(text="").exists()
    tasks = list(Task.objects.select_related("type"))
    assert {t.status for t in tasks} == {Task.Status.OPEN, Task.Status.DONE}
    task_entries = {(e.text, e.field) for e in Activity.objects.filter(kind=Activity.Kind.TASK, field="created")}
    for task in tasks:
        assert (str(task.pk), "created") in task_entries
        assert task.created_at < task.deadline
        if task.status == Task.Status.DONE:
            assert task.result and task.completed_at and task.completed_by_id == task.responsible_id
    assert Activity.objects.filter(kind=Activity.Kind.TASK, field="done").count() == sum(t.status == "done" for t in tasks)
    notes = list(ClientNote.objects.all())
    assert notes
    note_entries = {(e.client_id, e.new_value) for e in Activity.objects.filter(kind=Activity.Kind.NOTE)}
    assert all((n.client_id, n.text) in note_entries for n in notes)


def test_the_card_feed_renders_a_deals_history(seeded, client):
    deal = (
        Deal.objects.filter(sales_count__gt=0, stage__line__position=2)
        .filter(client__activities__kind=Activity.Kind.COMMENT).order_by("pk").first()
    )
    client.force_login(get_user_model().objects.get(username="admin"))
    response = client.get(reverse("clients:feed", args=[deal.client_id]), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    for kind in ("deal", "stage", "sale", "comment"):
        assert f"kind-{kind}" in html, kind
    stage_rows = [row for row in response.context["feed"] if row.kind == Activity.Kind.STAGE]
    assert stage_rows and all("—" not in (row.old_label, row.new_label) for row in stage_rows)


def test_loading_again_changes_nothing(seeded):
    counts = (Client.objects.count(), Deal.objects.count(), Activity.objects.count(), Task.objects.count())
    call_command("load_demo", clients=CLIENTS, stdout=StringIO())
    assert (Client.objects.count(), Deal.objects.count(), Activity.objects.count(), Task.objects.count()) == counts


def test_leads_stand_at_their_steps(seeded):
    from clients.models import Client, LeadStep

    steps = list(LeadStep.objects.order_by("position", "pk"))
    leads = Client.objects.filter(lifecycle="potential")
    assert leads.exists() and not leads.filter(step__isnull=True).exists()
    assert set(leads.values_list("step", flat=True)) == {s.pk for s in steps[:-1]}  # all but "Conversion"
