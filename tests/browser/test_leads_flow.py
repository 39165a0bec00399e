"""A lead's way through its steps (issue 18, points 1-3 and 8): clicked along the progress bar to
the last step, converted with the registration form prefilled from the lead; a note and an action
written at a step, shown in the step's history and found in Today's actions."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from clients.models import Client, LeadConversion, LeadStep
from crm.models import Activity
from tasks.models import Task
from tests.factories import ClientFactory, CustomFieldFactory

from .conftest import drag, shot

pytestmark = pytest.mark.django_db(transaction=True)


def steps():
    return list(LeadStep.objects.order_by("position", "pk"))


def labels():
    with translation.override("en"):
        return [s.label for s in steps()]


def settled(page, act):
    """Do something that makes htmx swap, and wait until the new content is settled (and live)."""
    before = page.evaluate("window.__settled || 0")
    act()
    page.wait_for_function("(before) => (window.__settled || 0) > before", arg=before)


def count_settles(page):
    # only the steps' list: the bell and the shift button poll and settle too
    page.evaluate("""document.body.addEventListener('htmx:afterSettle', (event) => {
        if (event.target.closest && event.target.closest('#steps')) window.__settled = (window.__settled || 0) + 1;
    })""")


def current(page):
    return page.locator(".lead-progress [aria-current=step]")


def test_a_lead_is_clicked_through_its_steps_and_converted_with_the_prefilled_form(new_page, boss):
    field = CustomFieldFactory(label="Favourite game")
    lead = ClientFactory(
        name="Stepan Bezruk", responsible=boss, phone="+79161234567", email="bezruk@example.com", address="Shashkevicha 334",
        city="Spas", company="Rebus", source="Advert", registration_date=date(2020, 4, 13), custom={field.key: "Poker"},
    )
    page = new_page(boss)
    page.goto(f"{page.base}/clients/{lead.pk}/")
    bar = page.locator(".lead-progress")
    expect(current(page)).to_contain_text("New lead")  # nobody moved it yet: the first step
    expect(page.get_by_text("Converting opens at the last step.")).to_be_visible()
    expect(page.get_by_role("button", name="Convert", exact=True)).to_have_count(0)
    for name in ("Contract signed", "Work in progress", "Conversion"):
        bar.get_by_role("button", name=name).click()
        expect(current(page)).to_contain_text(name)
        expect(page.locator("#feed")).to_contain_text(f"→ {name}")
    lead.refresh_from_db()
    assert lead.step == steps()[-1]
    assert list(Activity.objects.filter(client=lead, kind="step").order_by("pk").values_list("new_value", flat=True)) == [
        "Contract signed", "Work in progress", "Conversion"]
    shot(page, "leads-progress-bar-en")

    page.locator("#lead-block").get_by_role("button", name="Convert", exact=True).click()
    dialog = page.locator("dialog#modal")
    expect(dialog.get_by_role("heading")).to_contain_text("Convert the lead")
    expect(dialog.get_by_label("Full name")).to_have_value("Stepan Bezruk")
    expect(dialog.get_by_label("Phone", exact=True)).to_have_value("+7 916 123-45-67")
    expect(dialog.get_by_label("Email")).to_have_value("bezruk@example.com")
    expect(dialog.get_by_label("Address")).to_have_value("Shashkevicha 334")
    expect(dialog.get_by_label("Company")).to_have_value("Rebus")
    expect(dialog.get_by_label("Source")).to_have_value("Advert")
    expect(dialog.get_by_label("Registration date")).to_have_value("2020-04-13")
    expect(dialog.get_by_label("Favourite game")).to_have_value("Poker")
    account = dialog.get_by_label("Customer account (login / player ID)")
    expect(account).to_have_value("")
    dialog.get_by_role("button", name="Convert").click()
    expect(dialog.get_by_text("Enter the customer account (login / player ID).")).to_be_visible()
    account.fill("crm_end_test")
    dialog.get_by_role("button", name="Convert").click()
    expect(page.get_by_text("Stepan Bezruk is a customer now.")).to_be_visible()
    expect(page.locator(".lead-conversion")).to_contain_text("Converted by")
    expect(page.locator(".lead-conversion")).to_contain_text("from the step “Conversion”")
    expect(page.locator(".lead-progress")).to_have_count(0)
    lead.refresh_from_db()
    assert (lead.lifecycle, lead.external_id, Client.objects.count()) == ("converted", "crm_end_test", 1)
    conversion = LeadConversion.objects.get()
    assert (conversion.kind, conversion.by, conversion.from_step) == ("converted", boss, steps()[-1])


def test_a_note_and_an_action_at_a_step_and_the_action_in_todays_actions(new_page, boss):
    lead = ClientFactory(name="Vasya Pupkin", responsible=boss, step=steps()[1])
    page = new_page(boss)
    page.goto(f"{page.base}/clients/{lead.pk}/")
    box = page.locator(".comment-form")
    box.get_by_label("Leave a comment").fill("Called: thinking it over")
    box.get_by_role("button", name="Send").click()
    history = page.locator(".step-history-step", has_text="Contract signed")
    expect(history.locator(".step-entry.note")).to_contain_text("Called: thinking it over")

    today = timezone.localdate(timezone=ZoneInfo(boss.time_zone)).isoformat()
    box.get_by_label("Leave a comment").fill("Meet at the office")
    box.get_by_label("Action", exact=True).select_option(label="Meeting")
    box.get_by_role("button", name="Send").click()
    expect(box.get_by_text("An action needs both an action type and a planned date")).to_be_visible()
    box.get_by_label("Planned date").fill(today)
    box.get_by_role("button", name="Send").click()
    action = history.locator(".step-entry.action")
    expect(action).to_contain_text("Meet at the office")
    expect(action).to_contain_text("not done")
    task = Task.objects.get()
    assert (task.step, task.responsible, task.type.name) == (steps()[1], boss, "Meeting")
    lead.refresh_from_db()
    assert lead.last_action_at is not None
    shot(page, "leads-step-history-en")

    page.goto(f"{page.base}/tasks/")
    block = page.locator("#today-block")
    expect(block).to_contain_text("Meet at the office")
    block.get_by_role("link", name="All of today’s actions").click()
    row = page.locator(f"#today-action-{task.pk}")
    expect(row).to_contain_text("Contract signed")
    expect(row).to_contain_text("Meet at the office")
    row.get_by_role("button", name="Mark done").click()
    page.locator("dialog#modal").get_by_role("button", name="Done").click()
    expect(page.locator(f"#today-action-{task.pk}")).to_contain_text("done")
    expect(page.locator(f"#today-action-{task.pk}").get_by_role("button", name="Mark done")).to_have_count(0)
    page.locator(f"#today-action-{task.pk}").get_by_role("link", name="Vasya Pupkin").click()
    expect(page.locator("h1")).to_have_text("Vasya Pupkin")
    expect(page.locator(".step-history-step", has_text="Contract signed").locator(".step-entry.action")).to_contain_text("done")


def test_an_admin_reorders_renames_and_deletes_steps_from_the_keyboard(new_page, boss):
    ClientFactory(name="On the second step", step=steps()[1])
    page = new_page(boss)
    page.goto(f"{page.base}/settings/fields/steps/")
    count_settles(page)
    names = page.locator("#steps-list input[name=name]")
    expect(names).to_have_count(4)
    up = page.get_by_role("button", name="Move Conversion up")
    up.focus()
    settled(page, lambda: page.keyboard.press("Enter"))
    expect(names.nth(2)).to_have_value("Conversion")
    expect(page.get_by_role("button", name="Move Conversion up")).to_be_focused()  # the focus stays on the arrow
    settled(page, lambda: page.keyboard.press("Enter"))
    expect(names.nth(1)).to_have_value("Conversion")
    assert labels() == ["New lead", "Conversion", "Contract signed", "Work in progress"]

    page.get_by_label("Name of the step New lead").fill("Cold contacts")
    settled(page, lambda: page.keyboard.press("Enter"))
    expect(names.nth(0)).to_have_value("Cold contacts")
    page.get_by_label("New step").fill("Interested")
    settled(page, lambda: page.keyboard.press("Enter"))
    expect(names.nth(4)).to_have_value("Interested")

    page.once("dialog", lambda dialog: dialog.accept())
    settled(page, lambda: page.get_by_role("button", name="Delete Contract signed").click())
    expect(page.get_by_role("alert")).to_have_text("1 client is at the step “Contract signed”: move them to another step first.")
    page.once("dialog", lambda dialog: dialog.accept())
    settled(page, lambda: page.get_by_role("button", name="Delete Interested").click())
    expect(names).to_have_count(4)
    assert labels() == ["Cold contacts", "Conversion", "Contract signed", "Work in progress"]

    # or by drag, by the handle: saved as soon as it is dropped
    rows = page.locator("#steps-list .step-setting")
    settled(page, lambda: drag(page, rows.nth(3).locator(".handle"), rows.nth(0)))
    expect(names.nth(0)).to_have_value("Work in progress")
    assert labels() == ["Work in progress", "Cold contacts", "Conversion", "Contract signed"]
    shot(page, "leads-steps-settings-en")
