import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from clients.models import Client
from deals.models import Deal
from tests.conftest import HX
from tests.factories import ClientFactory, DealFactory, TagFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def deal_names(html: str) -> list[str]:
    """The names of the deals behind the cards of `html`, in card order (a card shows the number, not the name)."""
    pks = [int(pk) for pk in re.findall(r'<li class="deal-card" id="deal-(\d+)"', html)]
    names = dict(Deal.objects.filter(pk__in=pks).values_list("pk", "name"))
    return [names[pk] for pk in pks]


def board_cards(response) -> str:
    return "".join(column.cards for column in response.context["columns"])


def test_default_funnel_has_two_lines_and_the_seed_stages(sales_funnel):
    lines = list(sales_funnel.lines.order_by("position"))
    assert [line.name for line in lines] == ["1st line", "2nd line"]
    assert [s.name for s in lines[0].stages.order_by("position")] == [
        "Not processed", "In conversation", "Link sent", "Deal: registration", "Ignore",
        "Back from ignore", "Deal: first sale", "Transfer to 2nd line",
    ]


def test_stage_names_in_the_users_language(client, sales_funnel, db):
    russian = UserFactory(language="ru", role=role("Admin"))
    client.force_login(russian)
    page = client.get(sales_funnel.get_absolute_url()).content.decode()
    assert "Не обработано" in page and "Перевод на 2-ю линию" in page and "1-я линия" in page
    english = UserFactory(language="en", role=role("Admin"))
    client.force_login(english)
    page = client.get(sales_funnel.get_absolute_url()).content.decode()
    assert "Not processed" in page and "Transfer to 2nd line" in page


def test_columns_show_counts_budget_and_sales_and_cards_show_the_seed_fields(admin_client, admin, stages):
    vip = TagFactory(name="VIP")
    buyer = ClientFactory(name="Анна Покупатель", country="KZ")
    DealFactory(client=buyer, stage=stages[0], budget=1500, sales_count=2, sales_sum=Decimal("700"),
                responsible=admin, channel="telegram", tags=[vip])
    DealFactory(stage=stages[0], budget=500)
    DealFactory(stage=stages[1], budget=10)
    response = admin_client.get(stages[0].line.funnel.get_absolute_url())
    columns = {c.stage.pk: c for c in response.context["columns"]}
    assert (columns[stages[0].pk].count, columns[stages[0].pk].budget, columns[stages[0].pk].sales) == (2, 2000, 700)
    assert columns[stages[1].pk].count == 1 and columns[stages[2].pk].count == 0
    page = response.content.decode()
    card = page[page.index("Анна Покупатель") - 400 : page.index("Анна Покупатель") + 900]
    for text in ("Telegram", "Kazakhstan", str(admin), "Sales: 2 for 700", "VIP"):
        assert text in card, text
    # a deal without sales says so; one without a channel shows its country alone, no dash
    quiet = DealFactory(stage=stages[0], channel="", client=ClientFactory(name="Тихий Клиент", country="RU"))
    page = admin_client.get(stages[0].line.funnel.get_absolute_url()).content.decode()
    card = page[page.index(f'id="deal-{quiet.pk}"'):]
    card = card[: card.index("</li>")]
    assert '<p class="card-line">Russia</p>' in card and "No sales yet" in card and "Sales:" not in card


def test_deleted_and_foreign_deals_are_not_on_the_board(manager_client, manager, admin, stages):
    DealFactory(stage=stages[0], responsible=manager, name="mine")
    DealFactory(stage=stages[0], responsible=admin, name="admins")
    DealFactory(stage=stages[0], responsible=manager, name="gone", deleted_at=timezone.now())
    response = manager_client.get(stages[0].line.funnel.get_absolute_url())
    assert deal_names(board_cards(response)) == ["mine"] == deal_names(response.content.decode())


def test_a_column_renders_15_cards_then_loads_30_more_at_a_time(admin_client, stages, settings):
    client = ClientFactory()
    Deal.objects.bulk_create(Deal(client=client, stage=stages[0], name=f"d{i}", position=i) for i in range(75))
    funnel = stages[0].line.funnel
    response = admin_client.get(funnel.get_absolute_url())
    column = response.context["columns"][0]
    assert column.shown == 15 and column.more_after and column.count == 75
    assert "intersect once" in response.content.decode()
    seen = deal_names(response.content.decode())
    assert len(seen) == 15
    cursor = column.more_after
    pages = []
    while cursor:
        more = admin_client.get(reverse("deals:more", args=[funnel.pk, stages[0].pk]), {"after": cursor}, headers=HX)
        pages.append(len(deal_names(more.content.decode())))
        seen += deal_names(more.content.decode())
        cursor = more.context["cursor"]
    assert seen == [f"d{i}" for i in range(75)] and pages == [30, 30]


@pytest.mark.parametrize("deals", [10, 10_000])
def test_board_query_count_is_the_same_at_10_and_10000_deals(deals, admin_client, stages, django_assert_num_queries):
    clients = Client.objects.bulk_create(Client(name=f"c{i}") for i in range(50))
    Deal.objects.bulk_create(
        Deal(client=clients[i % 50], stage=stages[i % 8], name=f"d{i}", position=i, budget=i,
             channel="vk" if i % 2 else "") for i in range(deals)
    )
    url = stages[0].line.funnel.get_absolute_url()
    # user with perms; the frame (funnels, lines, the line's stages with their counters: three
    # statements in one round trip, selectors.board_frame); the cards with their tags and unread messages
    with django_assert_num_queries(3):
        response = admin_client.get(url)
    assert sum(c.count for c in response.context["columns"]) == deals
    with django_assert_num_queries(4):  # filtered: the totals grouped over the matching deals
        admin_client.get(url, {"q": "d1", "channel": ["telegram", "vk"]}, headers={"HX-Request": "true", "HX-Target": "board-columns"})


def test_filters_combine_and_stay_in_the_url(admin_client, admin, manager, stages):
    kz = ClientFactory(name="Kazakh", country="KZ", lifecycle="converted")
    DealFactory(client=kz, stage=stages[0], responsible=manager, channel="vk", name="target")
    DealFactory(client=kz, stage=stages[0], responsible=admin, channel="vk", name="other owner")
    DealFactory(stage=stages[0], responsible=manager, channel="vk", name="other country")
    params = {"responsible": [manager.pk], "country": ["KZ"], "channel": ["vk"], "status": "converted"}
    response = admin_client.get(stages[0].line.funnel.get_absolute_url(), params)
    assert deal_names(response.content.decode()) == ["target"]
    assert "country=KZ" in response.context["filters"]
    assert f'href="{reverse("deals:table", args=[stages[0].line.funnel_id])}?line=' in response.content.decode()


def test_keyword_search_finds_deal_client_and_tag_names(admin_client, stages):
    DealFactory(stage=stages[0], name="Поставка леса")
    DealFactory(stage=stages[0], client=ClientFactory(name="Лесников"))
    DealFactory(stage=stages[0], tags=[TagFactory(name="лесной")])
    DealFactory(stage=stages[0], name="Другое")
    response = admin_client.get(stages[0].line.funnel.get_absolute_url(), {"q": "лес"})
    assert sum(c.count for c in response.context["columns"]) == 3


def test_poll_answers_204_until_something_changes(admin_client, stages):
    deal = DealFactory(stage=stages[0])
    funnel = stages[0].line.funnel
    token = admin_client.get(funnel.get_absolute_url()).context["token"]
    url = reverse("deals:changes", args=[funnel.pk])
    assert admin_client.get(url, {"since": token}).status_code == 204
    Deal.objects.filter(pk=deal.pk).update(stage=stages[1], modified_at=timezone.now())
    response = admin_client.get(url, {"since": token})
    assert response.status_code == 200 and json.loads(response["HX-Trigger"]) == {"board-stale": {}}


@pytest.mark.parametrize("deals", [3, 60])
def test_poll_and_totals_query_counts(deals, admin_client, stages, django_assert_num_queries):
    client = ClientFactory()
    Deal.objects.bulk_create(Deal(client=client, stage=stages[i % 3], name=f"d{i}", position=i) for i in range(deals))
    funnel = stages[0].line.funnel
    with django_assert_num_queries(2):  # user with perms, the frame with the counters
        admin_client.get(reverse("deals:changes", args=[funnel.pk]), {"since": "x"})
    with django_assert_num_queries(2):  # user with perms, the frame with the counters
        page = admin_client.get(reverse("deals:totals", args=[funnel.pk]), headers=HX).content.decode()
    assert 'hx-swap-oob="true"' in page


@pytest.mark.parametrize("deals", [3, 60])
def test_table_view_query_count(deals, admin_client, stages, django_assert_num_queries):
    client = ClientFactory()
    Deal.objects.bulk_create(Deal(client=client, stage=stages[i % 3], name=f"d{i}", position=i) for i in range(deals))
    with django_assert_num_queries(6):  # user with perms, the frame, stages of funnel, rows, line, change token
        response = admin_client.get(reverse("deals:table", args=[stages[0].line.funnel_id]))
    assert len(response.context["rows"]) == min(deals, 50)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_card_sums_read_as_the_column_totals_do(language):
    """Cards format sums in Python; they must read as the template's floatformat:"0g" does."""
    from django.template.defaultfilters import floatformat
    from django.utils import translation

    from deals.cards import Money

    with translation.override(language):
        money = Money()
        for value in ("0", "0.5", "1.49", "2.5", "999.99", "1234567.50", "-1500.5"):
            assert money(Decimal(value)) == floatformat(Decimal(value), "0g"), value


def test_a_card_escapes_what_users_typed(admin_client, stages):
    """The cards are a Jinja2 fragment (crm/fragments.py): autoescaped like Django's templates."""
    hostile = '<img src=x onerror="alert(1)">'
    DealFactory(client=ClientFactory(name=hostile), stage=stages[0], tags=[TagFactory(name="<b>tag</b>")])
    page = admin_client.get(stages[0].line.funnel.get_absolute_url()).content.decode()
    assert hostile not in page and "<b>tag</b>" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page and "&lt;b&gt;tag&lt;/b&gt;" in page


def column_heads(page: str) -> dict[str, str]:
    """Each column head's text (whitespace collapsed), by the head's id."""
    import re

    heads = re.findall(r'<header class="column-head" id="(column-head-\d+)"[^>]*>(.*?)</header>', page, re.S)
    return {head_id: re.sub(r"[ \t\n]+", " ", re.sub(r"<[^>]+>", " ", body)).strip() for head_id, body in heads}


def test_columns_read_in_the_users_language_and_the_totals_after_a_move_match_them(client, stages, sales_funnel):
    """The columns (fragments/deals/columns.html): each head's stage, count and sums in the
    reader's language, the robot mark labelled in it, the sentinel that loads more keeping the
    line and the filters; the heads swapped in after a move (column_heads) read the same."""
    from deals.selectors import FIRST_CARDS
    from robots.models import Robot

    reader = UserFactory(role=role("Admin"), language="ru")
    client.force_login(reader)
    owner = ClientFactory(name="Ёлкин & Co <b>")
    Deal.objects.bulk_create(Deal(client=owner, stage=stages[0], name=f"d{i}", position=i, budget=Decimal("1234567.5"))
                             for i in range(FIRST_CARDS + 2))
    DealFactory(stage=stages[1], client=owner, budget=Decimal("999.49"))
    Robot.objects.create(stage=stages[1], name="Приветствие", is_active=True)
    response = client.get(sales_funnel.get_absolute_url(), {"line": stages[0].line_id})
    page = response.content.decode()
    heads = column_heads(page)
    first, second = heads[f"column-head-{stages[0].pk}"], heads[f"column-head-{stages[1].pk}"]
    with translation.override("ru"):
        names = [str(stage) for stage in stages]
    assert first == f"{names[0]} {FIRST_CARDS + 2} Бюджет 20\xa0987\xa0648 Продажи 0", first
    assert second == f"1 {names[1]} 1 Бюджет 999 Продажи 0", second  # the robot mark's count first
    assert 'aria-label="Роботов: 1"' in page and page.count('class="robot-mark"') == 1
    assert "Ёлкин &amp; Co &lt;b&gt;" in page and "<b>" not in page.split("</header>", 1)[1].split("</ol>")[0]
    more = reverse("deals:more", args=[sales_funnel.pk, stages[0].pk])
    assert page.count('class="more-sentinel"') == 1
    assert f'hx-get="{more}?line={stages[0].line_id}&amp;after=' in page
    assert f'<option value="{stages[0].pk}">{names[0]}</option>' in page  # the move menu's stages
    totals = client.get(reverse("deals:totals", args=[sales_funnel.pk]), {"line": stages[0].line_id}, headers=HX)
    assert column_heads(totals.content.decode()) == heads
    assert totals.content.decode().count('hx-swap-oob="true"') == len(heads) == len(stages)
