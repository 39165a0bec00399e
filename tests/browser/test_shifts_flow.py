"""Shifts and lead distribution (issue 14, point 9), as the people using them see it: a manager
starts a shift and a new deal arrives on their board without a reload; a manager ends the shift
and the deal they did not work moves to a colleague on shift; the admin's "On shift now" page with
its queues, ending someone's shift there, and the shift log."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from deals import shifts
from deals.models import Deal, Line, Shift, Stage
from deals.services import deal_create
from tests.conftest import wait_for
from tests.factories import ClientFactory, DealFactory, TeamFactory, UserFactory, role

from .boards import board_url, column
from .conftest import shot
from .test_accessibility import violations

pytestmark = pytest.mark.django_db(transaction=True)

POLL = 12_000  # the board polls every 4 s and the bell every 5 s: two rounds and some slack


@pytest.fixture
def boss(transactional_db):
    return UserFactory(username="boss", first_name="Big", last_name="Boss", language="en", role=role("Admin"))


@pytest.fixture
def mila(transactional_db):
    return UserFactory(username="mila", first_name="Mila", last_name="Orlova", language="en", role=role("Manager"))


@pytest.fixture
def nick(mila):
    """Created after mila: round robin (by user id, from the start) serves mila first."""
    return UserFactory(username="nick", first_name="Nick", last_name="Petrov", language="en", role=role("Manager"))


def first_line(**settings) -> Line:
    line = Line.objects.get(funnel__name="Sales", position=1)
    for name, value in settings.items():
        setattr(line, name, value)
    line.save()
    return line


def panel(page):
    """The shift widget in the board's panel (the top bar has another)."""
    return page.locator(".shift-slot.in-panel .shift-widget")


def topbar(page):
    return page.locator("header.topbar .shift-slot .shift-widget")


def button(widget, action):
    return widget.locator(f'[data-shift-action="{action}"]')


def expect_on_shift(widget):
    expect(widget.locator(".shift-state")).to_contain_text("On shift")
    expect(button(widget, "end")).to_have_text("End shift")
    expect(button(widget, "pause")).to_have_text("Pause")
    expect(button(widget, "start")).to_have_count(0)


def expect_off_shift(widget):
    expect(button(widget, "start")).to_have_text("Start shift")
    expect(widget.locator(".shift-state")).to_have_count(0)
    expect(button(widget, "end")).to_have_count(0)


def bell(page):
    return page.locator("#bell-count")


def test_start_a_shift_and_a_new_deal_arrives_on_the_board(new_page, boss, mila, stages):
    first_line(distribution=Line.Distribution.ROUND_ROBIN)
    page = new_page(mila)
    page.goto(board_url(page, stages[0]))
    expect_off_shift(panel(page))
    expect_off_shift(topbar(page))
    expect(bell(page)).to_have_attribute("data-unread", "0")
    shot(page, "shifts-01-board-before-shift")

    button(panel(page), "start").click()
    expect(page.locator("#app-toast")).to_have_text("Shift started: new deals can come to you.")
    expect_on_shift(panel(page))
    expect_on_shift(topbar(page))  # both widgets follow the button
    expect(panel(page).locator(".shift-clock")).to_have_text(re.compile(r"^\d+ min$"))
    assert Shift.objects.filter(user=mila, ended_at__isnull=True, paused_at__isnull=True).count() == 1
    shot(page, "shifts-02-on-shift")

    page.evaluate("window.shiftTestMarker = 'same page'")  # gone if the page reloads
    deal = deal_create(actor=boss, client=ClientFactory(name="Новый Лид"), stage=stages[0], name="Заявка с сайта",
                       distribute=True)
    assert deal.responsible == mila
    card = column(page, stages[0]).locator(f"#deal-{deal.pk}")
    expect(card).to_be_visible(timeout=POLL)
    expect(card).to_contain_text("Новый Лид")
    expect(page.locator(f"#column-head-{stages[0].pk} .deal-count")).to_have_text("1")
    expect(bell(page)).to_have_attribute("data-unread", "1", timeout=POLL)
    expect(bell(page)).to_contain_text("1")
    # the sound is on by default. It may come one bell poll late (reported: app.js reads the replaced
    # #bell-count of an outerHTML swap, so the rise is heard at the next swap of anything)
    expect(page.locator("body")).to_have_attribute("data-chimed", "1", timeout=POLL)
    assert page.evaluate("window.shiftTestMarker") == "same page", "the board reloaded instead of updating"
    shot(page, "shifts-03-new-deal-arrived")

    button(panel(page), "pause").click()
    expect(page.locator("#app-toast")).to_have_text("You are on a break: no new deals come to you.")
    for widget in (panel(page), topbar(page)):
        expect(widget.locator(".shift-state")).to_have_text("On a break")
        expect(button(widget, "resume")).to_have_text("Resume")
        expect(button(widget, "pause")).to_have_count(0)
    expect(button(panel(page), "end")).to_be_visible()
    # the top bar keeps its buttons one click away, in the shift's menu
    expect(button(topbar(page), "end")).to_be_hidden()
    topbar(page).locator("summary.shift-state").click()
    expect(button(topbar(page), "end")).to_be_visible()
    expect(button(topbar(page), "resume")).to_be_visible()
    topbar(page).locator("summary.shift-state").click()
    assert Shift.objects.get(user=mila).paused_at is not None
    shot(page, "shifts-04-on-a-break")

    button(panel(page), "resume").click()
    expect(page.locator("#app-toast")).to_have_text("Back from the break.")
    expect_on_shift(panel(page))
    expect_on_shift(topbar(page))
    shift = Shift.objects.get(user=mila)
    assert shift.paused_at is None and shift.ended_at is None and shift.pauses.count() == 1


def test_ending_a_shift_hands_the_unworked_deal_to_a_colleague(new_page, boss, mila, nick, stages):
    first_line(distribution=Line.Distribution.ROUND_ROBIN, shift_end=Line.ShiftEnd.HAND_BACK)
    first, second = new_page(mila), new_page(nick)
    first.goto(board_url(first, stages[0]))
    button(topbar(first), "start").click()  # the top bar's button this time
    expect_on_shift(panel(first))
    shifts.start(user=nick)
    second.goto(board_url(second, stages[0]))
    expect_on_shift(panel(second))

    def new_deal(client, name):
        return deal_create(actor=boss, client=ClientFactory(name=client), stage=stages[0], name=name, distribute=True)

    unworked, nicks, worked = new_deal("Недоработанный", "Заявка 1"), new_deal("Ника", "Заявка 2"), new_deal("Отработанный", "Заявка 3")
    assert (unworked.responsible, nicks.responsible, worked.responsible) == (mila, nick, mila)  # round robin, mila first
    for deal in (unworked, worked):
        expect(column(first, stages[0]).locator(f"#deal-{deal.pk}")).to_be_visible(timeout=POLL)
    expect(second.locator(f"#deal-{unworked.pk}")).to_have_count(0)
    expect(column(second, stages[0]).locator(f"#deal-{nicks.pk}")).to_be_visible(timeout=POLL)
    expect(bell(second)).to_have_attribute("data-unread", "1", timeout=POLL)  # "a new deal is yours": Заявка 2
    # mila works one of hers (a stage move) and leaves the other untouched
    first.locator(f"#deal-{worked.pk} select.move-select").select_option(label="In conversation")
    expect(column(first, stages[1]).locator(f"#deal-{worked.pk}")).to_have_attribute("data-version", "2")

    button(panel(first), "end").click()
    expect(first.locator("#app-toast")).to_have_text("Shift ended. Deals not yet worked handed back: 1.")
    expect_off_shift(panel(first))
    expect_off_shift(topbar(first))
    assert wait_for(lambda: Deal.objects.get(pk=unworked.pk).responsible_id == nick.pk, timeout=10), \
        f"the deal stayed with {Deal.objects.get(pk=unworked.pk).responsible}"
    assert Deal.objects.get(pk=worked.pk).responsible == mila  # worked: she keeps it
    assert Deal.objects.get(pk=nicks.pk).responsible == nick

    card = column(second, stages[0]).locator(f"#deal-{unworked.pk}")
    expect(card).to_be_visible(timeout=POLL)  # the colleague's board, without a reload
    expect(card).to_contain_text("Nick Petrov")
    expect(bell(second)).to_have_attribute("data-unread", "2", timeout=POLL)  # told of the handed deal too
    expect(first.locator(f"#deal-{unworked.pk}")).to_have_count(0, timeout=POLL)  # gone from mila's board
    expect(column(first, stages[1]).locator(f"#deal-{worked.pk}")).to_be_visible()
    shot(first, "shifts-05-shift-ended")
    shot(second, "shifts-06-deal-handed-to-colleague")
    assert Shift.objects.get(user=mila).ended_how == Shift.Ended.USER
    assert Shift.objects.filter(user=nick, ended_at__isnull=True).exists()


def test_admin_sees_who_is_on_shift_and_the_queue_and_ends_a_shift(new_page, boss, mila, nick, stages):
    first_line(distribution=Line.Distribution.ROUND_ROBIN, cap=30)
    for name in ("Первая", "Вторая"):
        DealFactory(stage=stages[0], client=ClientFactory(name=name), responsible=mila)
    DealFactory(stage=stages[4], client=ClientFactory(name="Игнор"), responsible=mila)  # "Ignore" closes: not open
    shifts.start(user=mila)
    shifts.start(user=nick)
    shifts.pause(user=nick)
    shifts.resume(user=nick)
    second_line = Line.objects.get(funnel__name="Sales", position=2)
    second_line.distribution = Line.Distribution.ROUND_ROBIN
    second_line.save()
    second_line.teams.set([TeamFactory(name="Night team")])  # nobody on shift is in it: nobody is eligible
    waiting = deal_create(actor=boss, client=ClientFactory(name="Ждущий"), stage=Stage.objects.filter(line=second_line).first(),
                          name="Ночная заявка", distribute=True)
    assert waiting.responsible is None and waiting.queued_at is not None

    page = new_page(boss)
    page.goto(page.base + "/deals/shifts/")
    expect(page.get_by_role("heading", name="On shift now")).to_be_visible()
    rows = page.locator("#on-shift tbody tr")
    expect(rows).to_have_count(2)
    mila_row, nick_row = rows.filter(has_text="Mila Orlova"), rows.filter(has_text="Nick Petrov")
    expect(mila_row.locator("td.num")).to_have_text("2")
    expect(nick_row.locator("td.num")).to_have_text("0")
    expect(mila_row).to_contain_text("Working")
    queues = page.locator("#queues tbody tr")
    expect(queues.filter(has_text="Sales · 2nd line").locator("td.num")).to_have_text("1")
    expect(queues.filter(has_text="Sales · 1st line")).to_contain_text("at most 30 open deals each")
    expect(queues.filter(has_text="Sales · 1st line").locator("td.num")).to_have_text("0")
    expect(page.locator("#queued-deals tbody tr")).to_have_count(1)
    expect(page.locator("#queued-deals")).to_contain_text(f"#{waiting.pk}")
    expect(page.locator("#queued-deals")).to_contain_text("Ночная заявка")
    shot(page, "shifts-07-on-shift-now")
    assert not violations(page), violations(page)  # the page with rows, badges and buttons (axe)

    mila_row.get_by_role("button", name=re.compile("End shift")).click()
    expect(page.get_by_text("The shift of Mila Orlova is ended; deals handed back: 0.")).to_be_visible()
    expect(rows.filter(has_text="Mila Orlova")).to_have_count(0)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Nick Petrov")
    ended = Shift.objects.get(user=mila)
    assert (ended.ended_how, ended.ended_by) == (Shift.Ended.ADMIN, boss)
    shot(page, "shifts-08-shift-ended-by-admin")

    page.get_by_role("link", name="Shift log").click()
    expect(page.get_by_role("heading", name="Shift log")).to_be_visible()
    log = page.locator("#shift-log tbody tr")
    expect(log).to_have_count(2)
    expect(log.filter(has_text="Mila Orlova")).to_contain_text("Ended by an administrator (Big Boss)")
    expect(log.filter(has_text="Nick Petrov")).to_contain_text("On shift")
    # English TIME_FORMAT ("P") writes "10 a.m." on the hour, "10:05 a.m." otherwise, and "noon" / "midnight"
    clock = r"(\d{1,2}(:\d\d)?( [ap]\.m\.)?|noon|midnight)"
    expect(log.filter(has_text="Nick Petrov").locator("td").nth(2)).to_have_text(re.compile(rf"^{clock}–{clock}$"))
    totals = page.locator("#shift-totals tbody tr")
    expect(totals).to_have_count(2)
    shot(page, "shifts-09-shift-log")
    assert not violations(page), violations(page)


def on_shift_for_hours(user, hours=7, minutes=5):
    """An open shift that started a working day ago (the clock's widest text)."""
    shift = shifts.start(user=user)
    Shift.objects.filter(pk=shift.pk).update(started_at=timezone.now() - timedelta(hours=hours, minutes=minutes))


# The shift state's colours must read on the dark top bar as on the board's light panel (4.5:1).
def test_shift_state_is_readable_in_the_top_bar(new_page, mila, stages):
    on_shift_for_hours(mila)
    page = new_page(mila)
    page.goto(board_url(page, stages[0]))
    found = {}
    for state in ("on shift", "on a break"):
        expect(topbar(page).locator(".shift-state")).to_have_text(re.compile("On shift 7 h 05 min|On a break"))
        expect(panel(page).locator(".shift-state")).to_be_visible()
        found[state] = [v for v in violations(page) if v[0] == "color-contrast"]
        if state == "on shift":
            shot(page, "shifts-10-top-bar-contrast")
            button(panel(page), "pause").click()
            expect(topbar(page).locator(".shift-state")).to_have_text("On a break")
    assert not any(found.values()), found


# With a shift running, a Russian administrator's top bar fits a laptop screen: the bar shows the
# shift's state, its buttons are one click away in a menu (the board's panel shows them all).
def test_top_bar_with_a_running_shift_fits_a_laptop_screen(new_page, stages):
    anna = UserFactory(username="anna", first_name="Анна", last_name="Иванова", language="ru", role=role("Admin"))
    on_shift_for_hours(anna)
    page = new_page(anna)
    problems = {}
    for width in (1366, 1280):
        page.set_viewport_size({"width": width, "height": 768})
        page.goto(board_url(page, stages[0]))
        expect(topbar(page).locator(".shift-state")).to_contain_text("7 ч 05 мин")
        expect(panel(page).locator(".shift-state")).to_be_visible()
        shot(page, f"shifts-11-top-bar-ru-{width}")
        measured = page.evaluate("""() => {
            const bar = document.querySelector("header.topbar");
            const heights = [...bar.querySelectorAll(".shift-widget button, .shift-widget summary")]
                .filter(b => b.checkVisibility()).map(b => Math.round(b.getBoundingClientRect().height));  // those on show
            return {overflow: bar.scrollWidth - bar.clientWidth, buttons: heights,
                    html: bar.querySelector(".shift-slot").outerHTML.slice(0, 2000)};
        }""")
        if measured["overflow"] > 0 or len(set(measured["buttons"])) > 1:  # a wrapped button is taller than the others
            problems[width] = measured
    assert not problems, problems
