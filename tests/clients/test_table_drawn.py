"""The clients table's rows are drawn once and kept by what they show (crm.drawn,
clients.selectors.TablePage.drawn): the same page asked again draws nothing, and a change to
anything a row shows, or to whoever reads it, is drawn afresh."""

import re

import pytest
from django.urls import reverse

from clients import selectors
from clients.models import Client, CustomField, LeadStep
from crm.models import TableSettings
from tests.factories import ClientFactory, TagFactory, UserFactory, role

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r'(csrf-token" content=|name="csrfmiddlewaretoken" value=)"[^"]+"')


def row_of(page: str, person) -> str:
    start = page.index(f'value="{person.pk}"')
    return page[page.rindex("<tr>", 0, start) : page.index("</tr>", start)]


def table(client, **params) -> str:
    return client.get(reverse("clients:list"), params).content.decode()


@pytest.fixture
def drawn():
    selectors.DRAWN_ROWS.clear()
    return selectors.DRAWN_ROWS


def test_the_same_page_asked_again_draws_no_row_and_reads_the_same(admin_client, drawn, monkeypatch):
    for i in range(12):
        ClientFactory(name=f"Клиент {i}", phone=f"8 916 000-00-{i:02d}")
    first = table(admin_client)
    assert (drawn.misses, drawn.hits) == (1, 0)

    def refuse(*args, **kwargs):
        raise AssertionError("a kept page of rows was drawn again")

    monkeypatch.setattr(selectors, "_table_rows", refuse)
    again = table(admin_client)
    assert (drawn.misses, drawn.hits) == (1, 1)
    assert TOKEN.sub("", again) == TOKEN.sub("", first)
    assert again.count('<td class="name">') == 12


def test_what_a_row_shows_is_drawn_afresh_when_it_changes(admin_client, drawn):
    boss = UserFactory(first_name="Ирина", last_name="Котова")
    person = ClientFactory(name="Анна Старая", responsible=boss)
    assert "Ирина Котова" in row_of(table(admin_client), person)
    boss.first_name = "Ирма"
    boss.save()  # the client's row is unchanged; its responsible's name is not
    assert "Ирма Котова" in row_of(table(admin_client), person)
    person.tags.add(TagFactory(name="Опт", color="green"))
    assert '<span class="tag tag-green">Опт</span>' in row_of(table(admin_client), person)
    Client.objects.filter(pk=person.pk).update(name="Анна Новая")
    assert "Анна Новая" in row_of(table(admin_client), person)


def test_each_reader_and_each_address_gets_its_own_rows(client, drawn):
    person = ClientFactory(name="Общий", lifecycle="converted")
    russian = UserFactory(role=role("Admin"), language="ru")
    english = UserFactory(role=role("Admin"), language="en")
    client.force_login(russian)
    assert 'aria-label="Выбрать Общий"' in row_of(table(client), person)
    client.force_login(english)
    row = row_of(table(client), person)
    assert 'aria-label="Select Общий"' in row and "Выбрать" not in row
    # the deals row sends the user back to the page they are on
    assert "next=/clients/%3Fview%3Dall" in row_of(table(client, view="all"), person)
    assert "next=/clients/%3Fview%3Dall" not in row_of(table(client), person)


def test_the_step_column_reads_the_steps_as_renamed(admin_client, admin, drawn):
    person = ClientFactory(name="Лид", lifecycle="potential")
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "step"])
    first = LeadStep.objects.order_by("position").first()
    assert first is not None
    before = row_of(table(admin_client), person)
    first.name = "Первый контакт"
    first.save()
    after = row_of(table(admin_client), person)
    assert "Первый контакт" in after and "Первый контакт" not in before


def test_a_custom_fields_column_is_drawn_every_time_and_reads_right(admin_client, admin, drawn):
    field = CustomField.objects.create(label="Город доставки", kind="text")
    person = ClientFactory(name="С полем", custom={field.key: "Казань"})
    TableSettings.objects.create(user=admin, table="clients", columns=["name", field.column_key])
    assert "Казань" in row_of(table(admin_client), person)
    Client.objects.filter(pk=person.pk).update(custom={field.key: "Самара"})
    assert "Самара" in row_of(table(admin_client), person)


def test_rows_that_do_not_bring_their_tags_are_drawn_every_time(admin, drawn):
    """Elsewhere than PostgreSQL (and on the ORM's pages) the rows do not carry their tags, which
    tags_of reads apart: a renamed tag changes no row, so such a page is never kept."""
    from clients.columns import SYSTEM_COLUMNS
    from clients.selectors import TablePage, _row_class

    person = ClientFactory(name="Без тегов в строке")
    tag = TagFactory(name="Старое имя", color="blue")
    person.tags.add(tag)
    columns = [col for col in SYSTEM_COLUMNS if col.key in ("name", "tags")]
    row = _row_class(("id", "name"))._make((person.pk, person.name))

    def drawn_now() -> str:
        return TablePage(found=[row], columns=columns, total=1, total_capped=False).drawn(selectable=True, with_deals=False)

    assert "Старое имя" in drawn_now()
    tag.name = "Новое имя"
    tag.save()
    assert "Новое имя" in drawn_now() and len(drawn) == 0
