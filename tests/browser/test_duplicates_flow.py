"""Possible duplicates as a Russian-speaking admin finds them (issue 18 point 5): a client saved with
another's phone in another format shows up on the "Possible duplicates" page (linked from the
clients list) and on both cards; "Not a duplicate" removes the pair in place and for good."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from clients import services
from clients.models import DuplicateSuggestion
from tests.factories import UserFactory, role

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def boss(transactional_db):
    return UserFactory(username="boss", language="ru", role=role("Admin"))


def test_a_duplicate_is_suggested_shown_on_the_card_and_dismissed_for_good(new_page, boss):
    old = services.client_create(actor=boss, data={"name": "Соколов Степан", "phone": "+79744602037", "responsible": boss})
    new = services.client_create(actor=boss, data={"name": "Смирнов Алексей", "phone": "+79744602037", "responsible": boss})
    services.client_create(actor=boss, data={"name": "Пономарёва Маргарита", "city": "Казань", "responsible": boss})
    services.client_create(actor=boss, data={"name": "Пономарева Маргарита Олеговна", "city": "казань", "responsible": boss})

    page = new_page(boss)
    page.goto(page.base + reverse("clients:list"))
    page.get_by_role("link", name="Возможные дубли").click()
    rows = page.locator("#duplicates tbody tr")
    expect(rows).to_have_count(2)
    phone_pair = rows.filter(has_text="Смирнов Алексей")
    expect(phone_pair).to_contain_text("Соколов Степан")
    expect(phone_pair).to_contain_text("Тот же телефон")
    expect(rows.filter(has_text="Пономарева Маргарита Олеговна")).to_contain_text("Похожее имя")
    shot(page, "duplicates-page")

    page.goto(page.base + new.get_absolute_url())
    notice = page.locator("#block-duplicates")
    expect(notice).to_contain_text("Возможный дубль: Соколов Степан")
    expect(notice).to_contain_text("Тот же телефон")
    notice.scroll_into_view_if_needed()
    shot(page, "duplicates-card")
    notice.get_by_role("link", name="Соколов Степан").click()
    expect(page.locator("#block-duplicates")).to_contain_text("Возможный дубль: Смирнов Алексей")

    page.goto(page.base + reverse("clients:duplicates"))
    page.locator("#duplicates tbody tr", has_text="Смирнов Алексей").get_by_role("button", name="Не дубль").click()
    expect(rows).to_have_count(1)  # removed in place (HTMX), the other pair stays
    assert DuplicateSuggestion.objects.get(client=new, other=old).dismissed_by == boss
    page.reload()
    expect(rows).to_have_count(1)
    page.goto(page.base + new.get_absolute_url())
    expect(page.locator("#block-duplicates")).to_have_count(0)
