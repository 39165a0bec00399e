"""The board's columns of cards are drawn once and kept by what they show (crm.drawn,
deals.cards.CardMaker.drawn): a board opened again draws nothing, and whatever a card shows that
changed (the client's name, a tag, an unread message, the responsible's name, the stage) or
whoever reads it (language, time zone, hidden fields, the right to move) is drawn afresh."""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from guardian.shortcuts import assign_perm

from clients.models import CardField
from crm.models import Role
from deals import cards
from deals.models import Deal
from messenger.models import Channel, Conversation
from tests.factories import ClientFactory, DealFactory, TagFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def card_of(page: str, deal) -> str:
    start = page.index(f'id="deal-{deal.pk}"')
    return page[start : page.index("</li>", start)]


def board(client, deal) -> str:
    return client.get(deal.stage.line.funnel.get_absolute_url()).content.decode()


@pytest.fixture
def drawn():
    cards.DRAWN_COLUMNS.clear()
    return cards.DRAWN_COLUMNS


def test_a_board_opened_again_draws_no_card_and_reads_the_same(admin_client, stages, drawn, monkeypatch):
    for i in range(20):
        DealFactory(stage=stages[i % 3], client=ClientFactory(name=f"Клиент {i}"))
    first = board(admin_client, Deal.objects.first())
    assert drawn.misses == 3 and drawn.hits == 0  # the three columns that hold cards

    def refuse(self, rows):
        raise AssertionError("a kept column was drawn again")

    monkeypatch.setattr(cards.CardMaker, "cards", refuse)
    again = board(admin_client, Deal.objects.first())
    assert drawn.hits == 3 and drawn.misses == 3
    token = re.compile(r'(csrf-token" content=|name="csrfmiddlewaretoken" value=)"[^"]+"')
    assert token.sub("", again) == token.sub("", first)
    assert len(re.findall(r'<li class="deal-card"', again)) == 20


def test_what_changed_without_the_deal_is_drawn_afresh(admin_client, admin, stages, drawn):
    """A client renamed, a tag added, a message unread, the responsible renamed: none of them
    touches the deal's row or version, and each shows at once."""
    deal = DealFactory(stage=stages[0], client=ClientFactory(name="Анна Старая"), responsible=admin)
    assert "Анна Старая" in card_of(board(admin_client, deal), deal)
    deal.client.name = "Анна Новая"
    deal.client.save()
    assert "Анна Новая" in card_of(board(admin_client, deal), deal)
    deal.tags.add(TagFactory(name="VIP-клиент"))
    assert "VIP-клиент" in card_of(board(admin_client, deal), deal)
    channel = Channel.objects.create(kind="console", name="Chat")
    Conversation.objects.create(client=deal.client, channel=channel, external_chat_id="chat-1", unread=4)
    badge = card_of(board(admin_client, deal), deal)
    assert 'unread-badge' in badge and ">4</span>" in badge
    admin.first_name, admin.last_name = "Борис", "Главный"
    admin.save()
    assert "Борис Главный" in card_of(board(admin_client, deal), deal)
    Deal.objects.filter(pk=deal.pk).update(stage=stages[1])
    page = board(admin_client, deal)
    assert f'data-stage="{stages[1].pk}"' in card_of(page, deal)


def test_each_reader_gets_their_own_language_time_zone_fields_and_rights(client, stages, drawn):
    created = timezone.make_aware(timezone.datetime(2026, 3, 1, 22, 30), timezone.get_fixed_timezone(0))
    deal = DealFactory(stage=stages[0], channel="telegram", client=ClientFactory(name="Общий клиент"), created_at=created)
    Deal.objects.filter(pk=deal.pk).update(created_at=created)
    admin_ru = UserFactory(role=role("Admin"), language="ru", time_zone="Europe/Moscow")
    admin_en = UserFactory(role=role("Admin"), language="en", time_zone="America/New_York")
    client.force_login(admin_ru)
    russian = card_of(board(client, deal), deal)
    client.force_login(admin_en)
    english = card_of(board(client, deal), deal)
    assert "Продаж пока нет" in russian and "No sales yet" in english
    assert "02.03.2026" in russian and "03/01/2026" in english  # 01:30 in Moscow is the 2nd
    client.force_login(UserFactory(role=role("Admin"), language="en", time_zone="Europe/Moscow"))
    assert "03/02/2026" in card_of(board(client, deal), deal)

    CardField.objects.filter(block="deal", system_key="channel").update(hidden=True)
    manager = UserFactory(role=role("Manager"), language="en", time_zone="America/New_York")
    Deal.objects.filter(pk=deal.pk).update(responsible=manager)
    client.force_login(admin_en)
    assert "Telegram" in card_of(board(client, deal), deal) and 'class="move-select"' in card_of(board(client, deal), deal)
    client.force_login(manager)
    seen = card_of(board(client, deal), deal)
    assert "Telegram" not in seen  # the layout hides the channel from managers

    # Someone who reads the same card as admin_en in every other way, but may not move it.
    CardField.objects.filter(block="deal", system_key="channel").update(hidden=False)
    Deal.objects.filter(pk=deal.pk).update(responsible=None)
    client.force_login(admin_en)
    assert 'class="move-select"' in card_of(board(client, deal), deal)
    looker = Role.objects.create(group=Group.objects.create(name="Looker"), visibility=Role.Visibility.ALL)
    looker.group.permissions.set(Permission.objects.filter(content_type__app_label="deals", codename="view_deal"))
    viewer = UserFactory(role=looker, language="en", time_zone="America/New_York")
    assign_perm("deals.access_funnel", viewer, deal.stage.line.funnel)
    client.force_login(viewer)
    seen = card_of(board(client, deal), deal)
    assert "Telegram" in seen and 'class="move-select"' not in seen


def test_the_kept_columns_are_bounded_and_the_least_recently_used_go_first():
    from crm.drawn import Drawn

    kept = Drawn(size=2)
    assert kept.get("a", lambda: "A") == "A" and kept.get("b", lambda: "B") == "B"
    assert kept.get("a", lambda: "never") == "A"  # a is now the most recent
    assert kept.get("c", lambda: "C") == "C"  # b goes
    assert len(kept) == 2 and kept.get("b", lambda: "B again") == "B again"
    assert kept.get("a", lambda: "A again") == "A again"  # c and b were more recent than a
    assert (kept.hits, kept.misses) == (1, 5)


def test_a_changed_setting_forgets_what_was_drawn(settings, drawn):
    drawn.get("key", lambda: "markup")
    assert len(drawn) == 1
    settings.THOUSAND_SEPARATOR = "'"
    assert len(drawn) == 0
