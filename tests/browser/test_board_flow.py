import re

import pytest
from playwright.sync_api import expect

from clients.models import Client
from deals.models import Deal, Stage
from tests.factories import ClientFactory, DealFactory, UserFactory, role

from .boards import board_url, column
from .conftest import drag, shot

pytestmark = pytest.mark.django_db(transaction=True)


def test_drag_a_card_to_another_stage_and_find_it_after_reload(new_page, boss, stages):
    deal = DealFactory(stage=stages[0], client=ClientFactory(name="Перетаскиваемый"), responsible=boss)
    DealFactory(stage=stages[2], client=ClientFactory(name="Сосед"))
    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    card = page.locator(f"#deal-{deal.pk}")
    expect(card).to_be_visible()
    drag(page, card, column(page, stages[2]))
    expect(column(page, stages[2]).locator(f"#deal-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#column-head-{stages[2].pk} .deal-count")).to_have_text("2")
    page.reload()
    expect(column(page, stages[2]).locator(f"#deal-{deal.pk}")).to_be_visible()
    deal.refresh_from_db()
    assert deal.stage == stages[2] and deal.version == 2


def test_move_with_the_keyboard_menu(new_page, boss, stages):
    deal = DealFactory(stage=stages[0], client=ClientFactory(name="Клавиатура"))
    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    page.locator(f"#deal-{deal.pk} a.deal-id").focus()
    page.keyboard.press("Tab")  # to the card's "Move to…" menu
    menu = page.locator(f"#deal-{deal.pk} select.move-select")
    expect(menu).to_be_focused()
    menu.select_option(label="Link sent")
    expect(column(page, stages[2]).locator(f"#deal-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#deal-{deal.pk}")).to_have_attribute("data-version", "2")
    deal.refresh_from_db()
    assert deal.stage == stages[2]


def test_second_user_moving_the_same_card_sees_the_conflict(new_page, boss, stages):
    rival = UserFactory(username="rival", language="en", role=role("Admin"))
    deal = DealFactory(stage=stages[0], client=ClientFactory(name="Спорная"))
    first, second = new_page(boss), new_page(rival)
    for page in (first, second):
        page.goto(board_url(page, stages[0]))
        expect(page.locator(f"#deal-{deal.pk}")).to_be_visible()
    first.locator(f"#deal-{deal.pk} select.move-select").select_option(label="In conversation")
    expect(first.locator(f"#deal-{deal.pk}")).to_have_attribute("data-version", "2")
    second.locator(f"#deal-{deal.pk} select.move-select").select_option(label="Ignore")
    expect(second.locator("#board-status")).to_contain_text("Someone else changed this deal")
    shot(second, "10-board-conflict")
    # the board reloads to the real state: the card is where the first user put it
    expect(column(second, stages[1]).locator(f"#deal-{deal.pk}")).to_be_visible()
    deal.refresh_from_db()
    assert deal.stage == stages[1] and deal.version == 2


def test_other_users_board_shows_a_move_without_reload(new_page, boss, stages):
    deal = DealFactory(stage=stages[0], client=ClientFactory(name="Живая"))
    watcher = new_page(boss)
    watcher.goto(board_url(watcher, stages[0]))
    expect(watcher.locator(f"#deal-{deal.pk}")).to_be_visible()
    Deal.objects.filter(pk=deal.pk).update(stage=stages[3], version=2)  # another user's move
    from django.utils import timezone

    Deal.objects.filter(pk=deal.pk).update(modified_at=timezone.now())
    expect(column(watcher, stages[3]).locator(f"#deal-{deal.pk}")).to_be_visible(timeout=10_000)


def test_manual_sale_changes_the_card_and_column_sums(new_page, boss, stages):
    buyer = ClientFactory(name="Покупатель", external_id="")
    deal = DealFactory(stage=stages[0], client=buyer)
    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    head = page.locator(f"#column-head-{stages[0].pk}")
    expect(head).to_contain_text("Sales 0")
    page.locator(f"#deal-{deal.pk} a.deal-id").click()
    dialog = page.locator("dialog#modal")
    dialog.get_by_role("button", name="Add a sale").click()
    dialog.get_by_label("Player ID").fill("PL-1")
    dialog.get_by_label("Amount").fill("1250")
    shot(page, "11-manual-sale")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_text("Sale added.")).to_be_visible()
    expect(dialog.locator("#deal-sales-total")).to_contain_text("1 · 1,250.00")
    dialog.get_by_role("button", name="Close").click()
    expect(head).to_contain_text("Sales 1,250")
    expect(page.locator(f"#deal-{deal.pk}")).to_contain_text("Sales: 1 for 1,250")
    buyer.refresh_from_db()
    assert buyer.sales_count == 1 and buyer.external_id == "PL-1"


def test_quick_deal_from_the_clients_table(new_page, boss, stages):
    ClientFactory(name="Быстрый Клиент", responsible=boss)
    page = new_page(boss)
    page.get_by_role("button", name="Deals of Быстрый Клиент").click()
    expect(page.locator(".deals-row")).to_contain_text("No deals yet.")
    page.locator(".deals-row").get_by_role("button", name="+ Quick deal").click()
    dialog = page.locator("dialog#modal")
    dialog.get_by_label("Name").fill("Годовая подписка")
    dialog.get_by_label("Deal budget").fill("9900")
    dialog.get_by_label("Stage").select_option(label="Link sent")
    dialog.get_by_role("button", name="Add").click()
    expect(page.get_by_text(re.compile(r"Deal #\d+ created\."))).to_be_visible()
    page.get_by_role("button", name="Deals of Быстрый Клиент").click()
    expect(page.locator(".deals-row")).to_contain_text("Годовая подписка")
    deal = Deal.objects.get()
    assert (deal.responsible, deal.stage, deal.client.name) == (boss, stages[2], "Быстрый Клиент")


def test_reorder_stages_in_funnel_settings(new_page, boss, stages):
    page = new_page(boss)
    page.goto(f"{page.base}/deals/settings/{stages[0].line.funnel_id}/")
    rows = page.locator(f'.stage-row[data-key="{stages[3].pk}"] .handle')
    drag(page, rows, page.locator(f'.stage-row[data-key="{stages[0].pk}"]'))
    expect(page.get_by_text("Order saved.")).to_be_visible()
    page.reload()
    first = page.locator(".stage-list").first.locator(".stage-row").first
    expect(first).to_have_attribute("data-key", str(stages[3].pk))
    assert Stage.objects.filter(line=stages[0].line).order_by("position").first() == stages[3]


def test_board_with_100_deals_screenshot(new_page, boss, stages):
    clients = Client.objects.bulk_create(Client(name=f"Клиент {i}", country="RU") for i in range(100))
    Deal.objects.bulk_create(
        Deal(client=clients[i], stage=stages[i % 8], name=f"Сделка {i}", budget=1000 * (i % 7 + 1), responsible=boss,
             channel="telegram", position=i, sales_count=i % 3, sales_sum=500 * (i % 3))
        for i in range(100)
    )
    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    expect(page.locator(".deal-card")).to_have_count(100)
    shot(page, "09-board-100-deals")
