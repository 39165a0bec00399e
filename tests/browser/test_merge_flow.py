"""Merging two clients as an admin does it (issue 18, point 8): from the card, find the other by
phone, both side by side, "Copy →" on two fields, merge; the kept card has both clients' deals and
the copied values, the merged one says where it went; then undo, and both are as they were."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from clients.models import Client, Merge
from deals.models import Deal
from tests.factories import ClientFactory, DealFactory, TagFactory

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


def test_merge_two_clients_copying_two_fields_then_undo(new_page, boss, stages):
    kept = ClientFactory(name="Иванов Иван", phone="+79091234567", email="ivan@example.com", city="", external_id="",
                         tags=[TagFactory(name="VIP")], responsible=boss)
    other = ClientFactory(name="Иван Иванов", phone="+79097654321", email="ivan.i@mail.ru", city="Kazan",
                          external_id="P-1001", tags=[TagFactory(name="Avito")])
    DealFactory(client=kept, stage=stages[0], name="First deal", responsible=boss)
    DealFactory(client=other, stage=stages[1], name="Chat deal", responsible=boss)

    page = new_page(boss)
    page.goto(page.base + kept.get_absolute_url())
    page.get_by_role("link", name="Merge with…").click()
    page.get_by_role("searchbox", name="Name, phone or e-mail").fill("909 765")
    page.get_by_role("link", name="Иван Иванов").click()
    expect(page.get_by_role("heading", name="Merge clients")).to_be_visible()
    table = page.locator(".merge-table")
    # the kept client has no city: the other's is chosen already; take the Player ID and the name by "Copy →"
    expect(table.locator("input[name=keep_city][value=other]")).to_be_checked()
    page.get_by_role("button", name="Copy Player ID to the kept client").click()
    page.get_by_role("button", name="Copy Full name to the kept client").click()
    expect(table.locator("input[name=keep_external_id][value=other]")).to_be_checked()
    expect(table.locator("input[name=keep_name][value=other]")).to_be_checked()
    # the e-mail stays the kept one's (the other's is kept among the other e-mails)
    table.locator("input[name=keep_email][value=kept]").check()
    expect(page.locator(".merge-preview")).to_contain_text("Deals 1")
    shot(page, "merge-side-by-side")
    page.get_by_role("button", name="Merge", exact=True).click()

    expect(page.get_by_role("heading", name="Иван Иванов")).to_be_visible()  # the kept card, under the copied name
    expect(page.get_by_text("was merged into")).to_be_visible()
    expect(page.get_by_text("P-1001").first).to_be_visible()
    expect(page.get_by_text("Kazan").first).to_be_visible()
    expect(page.get_by_role("link", name="Chat deal").first).to_be_visible()
    expect(page.get_by_text("First deal").first).to_be_visible()
    shot(page, "merge-kept-card")
    kept.refresh_from_db()
    assert (kept.name, kept.email, kept.extra_emails, kept.city, kept.external_id) == (
        "Иван Иванов", "ivan@example.com", ["ivan.i@mail.ru"], "Kazan", "P-1001")
    assert {t.name for t in kept.tags.all()} == {"VIP", "Avito"}
    assert set(Deal.objects.filter(client=kept).values_list("name", flat=True)) == {"First deal", "Chat deal"}

    page.goto(page.base + reverse("clients:detail", args=[other.pk]))
    expect(page.locator("#merged-banner")).to_contain_text("Иван Иванов")
    page.get_by_role("button", name="Undo the merge").click()
    expect(page.get_by_text("The merge was undone")).to_be_visible()
    kept.refresh_from_db()
    other.refresh_from_db()
    assert (kept.name, kept.city, kept.external_id, kept.extra_emails) == ("Иванов Иван", "", "", [])
    assert not other.is_deleted and Merge.objects.get().undone_at is not None
    assert list(Deal.objects.filter(client=other).values_list("name", flat=True)) == ["Chat deal"]
    assert Client.objects.filter(pk__in=[kept.pk, other.pk], deleted_at__isnull=True).count() == 2
