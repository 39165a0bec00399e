import pytest
from playwright.sync_api import expect

from clients.models import CardField, CustomField
from crm.models import Notification
from tests.factories import ClientFactory, UserFactory, role

from .conftest import drag, shot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def boss(transactional_db):
    return UserFactory(username="boss", first_name="Big", last_name="Boss", language="en", role=role("Admin"))


@pytest.fixture
def mary(transactional_db):
    return UserFactory(username="mary", first_name="Mary", last_name="Manager", language="en", role=role("Manager"))


def test_admin_builds_a_field_that_a_manager_sees_in_order_but_cannot_edit(new_page, boss, mary):
    client = ClientFactory(name="Карточка Клиента", responsible=mary)
    admin = new_page(boss)
    admin.goto(f"{admin.base}/clients/{client.pk}/")
    admin.get_by_role("button", name="Display settings: contact information").click()
    editor = admin.locator("#layout-editor")
    expect(editor.get_by_role("tab", name="Admin")).to_be_visible()
    editor.locator("#new-kind").select_option("select")
    editor.locator("#new-label").fill("Сегмент")
    editor.locator("#new-choices").fill("Gold\nSilver")
    editor.get_by_role("button", name="+ Add").click()
    segment_row = editor.locator('.layout-row:has(input[value="Сегмент"])')
    expect(segment_row).to_be_visible()
    field = CustomField.objects.get(label="Сегмент")
    target = editor.locator('.layout-row[data-key="registration_date"]')
    drag(admin, segment_row.locator(".handle"), target)
    keys = lambda: [r.get_attribute("data-key") for r in editor.locator(".layout-row").all()]  # noqa: E731
    expect(segment_row.locator("xpath=following-sibling::li[1]")).to_have_attribute("data-key", "registration_date")
    assert keys().index(field.key) == keys().index("registration_date") - 1
    editor.get_by_role("tab", name="Manager").click()
    editor.get_by_label("Сегмент editable by managers").uncheck()
    shot(admin, "12-layout-editor")
    editor.get_by_role("button", name="Save").click()
    expect(admin.get_by_text("Display settings saved.")).to_be_visible()
    row = CardField.objects.get(custom_field=field)
    registration = CardField.objects.get(block="contact", system_key="registration_date")
    assert row.position == registration.position - 1 and not row.manager_editable and row.manager_visible

    manager = new_page(mary)
    manager.goto(f"{manager.base}/clients/{client.pk}/")
    labels = manager.locator("#block-contact dt").all_inner_texts()
    assert labels.index("Сегмент") == labels.index("Registration date") - 1
    expect(manager.locator(f'#block-contact dd[data-field="{field.key}"] .lock')).to_be_visible()
    manager.get_by_role("link", name="Edit").click()
    dialog = manager.locator("dialog#modal")
    expect(dialog.get_by_label("Full name")).to_be_visible()
    dialog.get_by_text("More fields").click()
    expect(dialog.get_by_label("Сегмент")).to_have_count(0)
    shot(manager, "13-card-manager")


def test_a_mention_lights_the_other_users_bell(new_page, boss, mary):
    client = ClientFactory(name="Упоминание", responsible=mary)
    admin = new_page(boss)
    admin.goto(f"{admin.base}/clients/")
    bell = admin.locator("#bell-count")
    expect(bell).to_have_text("")
    manager = new_page(mary)
    manager.goto(f"{manager.base}/clients/{client.pk}/")
    box = manager.get_by_placeholder("Leave a comment")
    box.fill("@boss посмотрите, пожалуйста https://example.com")
    expect(manager.locator("#comment-counter")).to_have_text(f"{len('@boss посмотрите, пожалуйста https://example.com')} / 999")
    manager.get_by_role("button", name="Send").click()
    expect(manager.locator(".feed-item.kind-comment .mention")).to_have_text("@boss")
    expect(manager.locator(".feed-item.kind-comment a[href='https://example.com']")).to_be_visible()
    expect(bell).to_contain_text("1", timeout=10_000)  # polled, no reload
    admin.locator("a.bell").click()
    expect(admin.get_by_text("Mary Manager mentioned you on Упоминание")).to_be_visible()
    admin.get_by_role("button", name="Open").click()
    expect(admin.get_by_role("heading", name="Упоминание")).to_be_visible()
    assert Notification.objects.get(user=boss).read_at is not None


def test_edit_the_note_and_filter_the_feed(new_page, boss):
    client = ClientFactory(name="Заметка", responsible=boss)
    page = new_page(boss)
    page.goto(f"{page.base}/clients/{client.pk}/")
    page.get_by_placeholder("Leave a comment").fill("первый комментарий")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".feed-item.kind-comment")).to_have_count(1)
    page.get_by_role("button", name="Write a note").click()
    page.get_by_label("Note", exact=True).fill("Звонить только вечером")
    page.locator("#note").get_by_role("button", name="Save").click()
    expect(page.locator(".note-text")).to_have_text("Звонить только вечером")
    expect(page.locator(".feed-item.kind-note")).to_have_count(1)  # the feed refreshed itself
    page.locator("#feed").get_by_role("link", name="Note").click()
    expect(page.locator(".feed-item")).to_have_count(1)
    expect(page.locator(".feed-item.kind-note")).to_contain_text("Звонить только вечером")
    page.locator("#feed").get_by_role("link", name="Comments").click()
    expect(page.locator(".feed-item")).to_have_count(1)
    expect(page.locator(".feed-item.kind-comment")).to_contain_text("первый комментарий")
    shot(page, "14-card-feed")
