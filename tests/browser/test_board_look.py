"""The board's look and keyboard, and the funnel settings list, in Debian's Chromium at 1366×768."""

import re

import pytest
from playwright.sync_api import expect

from deals.models import Deal, Line, Stage
from tests.factories import ClientFactory, DealFactory

from .boards import board_url, column
from .conftest import drag, shot

pytestmark = pytest.mark.django_db(transaction=True)


def settings_url(page, stage):
    return f"{page.base}/deals/settings/{stage.line.funnel_id}/"


def stage_order(line_id):
    return list(Stage.objects.filter(line_id=line_id).order_by("position").values_list("pk", flat=True))


# Funnel settings ---------------------------------------------------------------------------------


def test_drag_a_stage_to_reorder_and_find_it_saved_after_reload(new_page, boss, stages):
    page = new_page(boss)
    page.goto(settings_url(page, stages[0]))
    shot(page, "40-funnel-settings")
    with page.expect_response(lambda r: "/stages/order/" in r.url) as answer:
        drag(page, page.locator(f"#stage-{stages[4].pk} .drag-handle"), page.locator(f"#stage-{stages[1].pk}"))
    assert answer.value.status == 200
    expect(page.locator("#settings-status")).to_have_text("Order saved.")
    page.reload()
    rows = page.locator(f"#line-{stages[0].line_id} .stage-row")
    expect(rows.nth(1)).to_have_attribute("data-key", str(stages[4].pk))
    assert stage_order(stages[0].line_id)[:3] == [stages[0].pk, stages[4].pk, stages[1].pk]


def test_reorder_with_alt_arrows_on_the_handle(new_page, boss, stages):
    page = new_page(boss)
    page.goto(settings_url(page, stages[0]))
    handle = page.locator(f"#stage-{stages[2].pk} .drag-handle")
    handle.focus()
    with page.expect_response(lambda r: "/stages/order/" in r.url):
        page.keyboard.press("Alt+ArrowUp")
    expect(handle).to_be_focused()
    expect(page.locator(f"#line-{stages[0].line_id} .stage-row").nth(1)).to_have_attribute("data-key", str(stages[2].pk))
    assert stage_order(stages[0].line_id)[:3] == [stages[0].pk, stages[2].pk, stages[1].pk]


def test_rename_in_place_escape_cancels_enter_saves_errors_stay_inline(new_page, boss, stages):
    page = new_page(boss)
    page.goto(settings_url(page, stages[0]))
    row = page.locator(f"#stage-{stages[1].pk}")
    row.locator("[data-inline-edit]").click()
    field = row.get_by_label("Stage name")
    expect(field).to_be_focused()
    field.fill("Не сохранять")
    page.keyboard.press("Escape")
    expect(field).to_be_hidden()
    expect(row.locator("[data-inline-edit]")).to_be_focused()
    expect(row.locator("[data-inline-edit]")).to_contain_text("In conversation")
    # a name the server refuses (the browser's maxlength is taken away): the error shows, the text stays
    row.locator("[data-inline-edit]").click()
    field.evaluate("input => input.removeAttribute('maxlength')")
    field.fill("Д" * 61)
    with page.expect_response(lambda r: "/stages/" in r.url and r.request.method == "POST"):
        page.keyboard.press("Enter")
    row = page.locator(f"#stage-{stages[1].pk}")
    expect(row.get_by_role("alert")).to_contain_text("at most 60 characters")
    expect(row.get_by_label("Stage name")).to_have_value("Д" * 61)
    expect(row.get_by_label("Stage name")).to_be_focused()
    shot(page, "41-funnel-settings-inline-error")
    row.get_by_label("Stage name").fill("В работе")
    page.keyboard.press("Enter")
    expect(page.locator(f"#stage-{stages[1].pk} [data-inline-edit]")).to_contain_text("В работе")
    expect(page.locator("#settings-status")).to_have_text("Stage saved.")
    assert Stage.objects.get(pk=stages[1].pk).name == "В работе"


def test_colour_swatch(new_page, boss, stages):
    page = new_page(boss)
    page.goto(settings_url(page, stages[0]))
    row = page.locator(f"#stage-{stages[0].pk}")
    row.locator("summary.swatch").click()
    green = row.get_by_role("button", name="Green")
    expect(green).to_have_css("background-color", "rgb(47, 158, 91)")  # each choice shows its colour
    green.click()
    expect(page.locator(f"#stage-{stages[0].pk}")).to_have_class(re.compile(r"\bstage-green\b"))
    stage = Stage.objects.get(pk=stages[0].pk)
    assert (stage.color, stage.name, stage.is_default_name) == ("green", "Not processed", True)


def test_deleting_a_line_and_the_funnel_asks_first_and_says_what_goes(new_page, boss, stages):
    spare = Line.objects.create(funnel=stages[0].line.funnel, name="Spare line", position=5)
    for i in range(2):
        Stage.objects.create(line=spare, name=f"Spare {i}", position=i + 1)
    DealFactory(stage=stages[0])
    page = new_page(boss)
    page.goto(settings_url(page, stages[0]))
    card = page.locator(f"#line-{spare.pk}")
    card.get_by_label("More actions for the line Spare line").click()
    card.get_by_role("button", name="Delete line…").click()
    dialog = page.locator("dialog#modal")
    expect(dialog).to_contain_text("Deleting the line also deletes its 2 stages, for good.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Line.objects.filter(pk=spare.pk).exists()
    # the funnel holds a deal: the confirmation says so and offers no way to delete
    page.get_by_label("More actions for the funnel Sales").click()
    page.get_by_role("button", name="Delete funnel…").click()
    expect(dialog).to_contain_text("The funnel still holds 1 deal")
    expect(dialog.get_by_role("button", name="Delete funnel")).to_have_count(0)
    shot(page, "42-funnel-delete-confirmation")
    dialog.get_by_role("button", name="Cancel").click()
    card.get_by_label("More actions for the line Spare line").click()
    card.get_by_role("button", name="Delete line…").click()
    dialog.get_by_role("button", name="Delete line").click()
    expect(page.get_by_text("Line deleted.")).to_be_visible()
    assert not Line.objects.filter(pk=spare.pk).exists()


# The board ---------------------------------------------------------------------------------------


def test_move_to_menu_waits_for_enter_and_escape_cancels(new_page, boss, stages):
    deal = DealFactory(stage=stages[0], client=ClientFactory(name="Клавиатурный"), responsible=boss)
    page = new_page(boss)
    moves = []
    page.on("request", lambda request: "/move/" in request.url and moves.append(request.url))
    page.goto(board_url(page, stages[0]))
    menu = page.locator(f"#deal-{deal.pk} select.move-select")
    page.locator(f"#deal-{deal.pk} a.deal-id").focus()
    page.keyboard.press("Tab")
    expect(menu).to_be_focused()

    # the arrow keys only choose: nothing is sent, the card stays
    page.keyboard.press("ArrowDown")
    expect(menu).to_have_class(re.compile(r"\bpending\b"))
    expect(menu).to_have_value(str(stages[1].pk))
    page.keyboard.press("ArrowDown")
    expect(menu).to_have_value(str(stages[2].pk))
    expect(page.locator(f"#deal-{deal.pk} .move-pending-hint")).to_be_visible()
    shot(page, "43-board-move-to-pending")
    assert moves == []
    expect(column(page, stages[0]).locator(f"#deal-{deal.pk}")).to_be_visible()
    assert Deal.objects.get(pk=deal.pk).stage_id == stages[0].pk

    # Escape puts the menu back; still nothing sent
    page.keyboard.press("Escape")
    expect(menu).to_have_value("")
    expect(menu).not_to_have_class(re.compile(r"\bpending\b"))
    expect(menu).to_be_focused()
    assert moves == [] and Deal.objects.get(pk=deal.pk).stage_id == stages[0].pk

    # choose again, Enter moves it, once
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(menu).to_have_value(str(stages[3].pk))
    with page.expect_response(lambda r: "/move/" in r.url) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    expect(column(page, stages[3]).locator(f"#deal-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#deal-{deal.pk}")).to_have_attribute("data-version", "2")
    moved = page.locator(f"#deal-{deal.pk} select.move-select")
    expect(moved).to_be_focused()
    # the menu now offers the stage the deal left, not the one it is in
    expect(moved.locator(f'option[value="{stages[0].pk}"]')).to_have_count(1)
    expect(moved.locator(f'option[value="{stages[3].pk}"]')).to_have_count(0)
    assert len(moves) == 1
    assert Deal.objects.get(pk=deal.pk).stage_id == stages[3].pk


def test_column_heads_line_up_and_the_board_shows_it_scrolls(new_page, boss, stages):
    Stage.objects.filter(pk=stages[2].pk).update(
        name="A very long stage name that never fits a column", is_default_name=False)
    for index, stage in enumerate(stages):
        DealFactory(stage=stage, client=ClientFactory(name=f"Клиент {index}"), responsible=boss,
                    budget=10 ** (index + 2) + 7)  # budgets of different widths in every head
    page = new_page(boss)
    page.goto(board_url(page, stages[0]))
    expect(page.locator(".deal-card")).to_have_count(len(stages))
    heads = page.locator(".column-head").evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    assert len(set(heads)) == 1, heads
    tops = page.locator(".column").evaluate_all(
        "cols => cols.map(c => c.querySelector('.deal-card').getBoundingClientRect().top)")
    assert max(tops) - min(tops) < 0.5, tops
    widths = page.locator(".column").evaluate_all("cols => cols.map(c => c.getBoundingClientRect().width)")
    assert len(set(widths)) == 1, widths
    long_name = page.locator(f"#stage-{stages[2].pk}-name")
    expect(long_name).to_have_attribute("title", re.compile("A very long stage name"))
    assert long_name.evaluate("h => h.scrollWidth > h.clientWidth")  # cut with an ellipsis, not wrapped

    # eight columns do not fit 1366 px: the right edge says so, the left one does not yet
    scroller = page.locator(".board-scroller")
    expect(scroller).to_have_class(re.compile(r"\bmore-right\b"))
    expect(scroller).not_to_have_class(re.compile(r"\bmore-left\b"))
    left, right = page.locator(".board-scroll.left"), page.locator(".board-scroll.right")
    expect(left).to_be_hidden()
    shot(page, "44-board-heads-and-scroll")
    board = page.locator("#board-columns")
    step, width = board.evaluate(
        "el => { const c = el.querySelectorAll('.column'); return [c[1].offsetLeft - c[0].offsetLeft, el.clientWidth]; }")
    right.click()
    # a page less one column, ending on a column's edge
    expect(board).to_have_js_property("scrollLeft", step * max(1, width // step - 1))
    expect(scroller).to_have_class(re.compile(r"\bmore-left\b"))
    expect(left).to_be_visible()
    page.locator("#board-columns").evaluate("el => el.scrollTo({left: el.scrollWidth})")
    expect(scroller).not_to_have_class(re.compile(r"\bmore-right\b"))
    expect(right).to_be_hidden()
    shot(page, "45-board-scrolled-to-the-end")
