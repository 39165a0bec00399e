"""The messenger as its users see it (issue 15, point 11): an unknown Telegram sender writes and a
client and a deal appear on the board of the manager on shift; the inbox shows the message within
2 s of its processing; the manager replies with Enter and the Bot API (our own server on 127.0.0.1)
receives it once; the client is put on ignore, writes while ignored (no badge), is taken off the
list and writes again: the deal moves to "Back from ignore". Real worker, real live server."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from deals import shifts
from deals.models import Deal, Line
from messenger import secrets
from messenger.models import Channel, Conversation, Message
from tests.conftest import wait_for
from tests.factories import UserFactory, role
from tests.messenger.fake_botapi import botapi as botapi_fixture  # noqa: F401  (the botapi fixture)
from tests.messenger.fake_botapi import message_update
from tests.messenger.imap import imap_server, mailbox  # noqa: F401  (fixtures)

from .boards import board_url, column
from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "browser-test-secret"
SHOWN = 8_000  # processed by the worker (a few hundred ms), then the 2 s poll, and slack for a slow machine



@pytest.fixture
def mila(transactional_db):
    return UserFactory(username="mila", first_name="Mila", last_name="Orlova", language="en", role=role("Manager"))


@pytest.fixture
def telegram(transactional_db, botapi, settings):
    line = Line.objects.get(funnel__name="Sales", position=1)
    line.distribution = Line.Distribution.ROUND_ROBIN
    line.save()
    channel = Channel.objects.create(kind=Channel.Kind.TELEGRAM, name="Telegram bot", line=line, settings={"api_base": botapi.url})
    secrets.write(channel, {"bot_token": botapi.token, "webhook_secret": SECRET})
    channel.save()
    return channel


def hook(live_server, channel) -> str:
    return live_server.url + reverse("hooks:hook", kwargs={"kind": "telegram", "token": channel.token})


def test_unknown_sender_reply_ignore_and_back(new_page, live_server, celery_worker, botapi, telegram, mila, stages):
    shifts.start(user=mila)
    statuses = botapi.deliver(message_update(9001, chat_id=424242, text="Здравствуйте! Сколько стоит?", first_name="Oleg",
                                             last_name="Frost", username="oleg_f"), url=hook(live_server, telegram), secret=SECRET)
    assert statuses == [200]
    assert wait_for(lambda: Deal.objects.filter(client__name="Oleg Frost").exists(), timeout=30)
    deal = Deal.objects.get(client__name="Oleg Frost")
    assert deal.responsible == mila and deal.stage == stages[0]

    page = new_page(mila)
    page.goto(board_url(page, stages[0]))
    expect(column(page, stages[0]).get_by_text("Oleg Frost")).to_be_visible()
    expect(column(page, stages[0]).locator(".unread-badge")).to_have_text("1")

    page.goto(page.base + reverse("messenger:inbox"))
    page.get_by_role("link", name="Oleg Frost").click()
    expect(page.locator(".bubble.in .bubble-text")).to_have_text("Здравствуйте! Сколько стоит?")
    # a second message while the chat is open appears without a reload
    botapi.deliver(message_update(9002, chat_id=424242, message_id=2, text="И доставка в Казань?"), url=hook(live_server, telegram),
                   secret=SECRET)
    expect(page.locator(".bubble.in .bubble-text").last).to_have_text("И доставка в Казань?", timeout=SHOWN)

    composer = page.get_by_role("textbox", name="Message")
    composer.fill("Добрый день, Олег!")
    composer.press("Shift+Enter")
    composer.press_sequentially("Доставка есть.")
    composer.press("Enter")
    expect(page.locator(".bubble.out .bubble-text")).to_contain_text("Добрый день, Олег!")
    assert wait_for(lambda: len(botapi.sent()) == 1, timeout=30)
    sent = botapi.sent()[0]
    assert sent["fields"]["chat_id"] in (424242, "424242") and sent["fields"]["text"] == "Добрый день, Олег!\nДоставка есть."
    expect(page.locator(".bubble.out .tick")).to_have_text("✓", timeout=SHOWN)
    shot(page, "messenger-inbox")
    assert len(botapi.sent()) == 1 and Message.objects.filter(direction="out", status="sent").count() == 1

    # ignore: the deal goes to the Ignore stage; a message while ignored raises no badge
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Ignore").click()
    expect(page.locator(".chat-banner")).to_be_visible()
    deal.refresh_from_db()
    assert deal.stage.code == "ignore"
    botapi.deliver(message_update(9003, chat_id=424242, message_id=3, text="Ау?"), url=hook(live_server, telegram), secret=SECRET)
    expect(page.locator(".bubble.in.is-ignored")).to_have_count(1, timeout=SHOWN)
    assert Conversation.objects.get().unread == 0

    page.get_by_role("button", name="Take off ignore").click()
    expect(page.locator(".chat-banner")).to_have_count(0)
    botapi.deliver(message_update(9004, chat_id=424242, message_id=4, text="Я снова тут"), url=hook(live_server, telegram), secret=SECRET)
    assert wait_for(lambda: Deal.objects.get(pk=deal.pk).stage.code == "back_from_ignore", timeout=30)
    page.goto(board_url(page, stages[0]))
    back = next(s for s in stages if s.code == "back_from_ignore")
    expect(column(page, back).get_by_text("Oleg Frost")).to_be_visible()
    assert Message.objects.filter(direction="in").count() == 4


def test_an_email_reply_lands_in_the_same_conversation(new_page, live_server, celery_worker, mailbox, smtp_server, mila,  # noqa: F811
                                                       stages):
    import email
    import email.policy

    from messenger import sweep
    from tests.messenger.test_email_channel import client_mail, email_channel

    Line.objects.filter(pk=stages[0].line_id).update(distribution=Line.Distribution.ROUND_ROBIN)
    shifts.start(user=mila)
    channel = email_channel(mailbox, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_tls=False)
    Channel.objects.filter(pk=channel.pk).update(line=stages[0].line)
    mailbox.deliver(client_mail(sender="Ирина Ковалёва <irina@example.com>", subject="Счёт для ООО «Ромашка»",
                                text="Добрый день! Пришлите, пожалуйста, счёт.\n", message_id="<ask-1@example.com>"))
    sweep.poll(channel.pk)  # what the beat's sweep does every 10 s; the worker processes what it stored
    assert wait_for(lambda: Message.objects.filter(direction="in").exists(), timeout=30)

    page = new_page(mila)
    page.goto(page.base + reverse("messenger:inbox"))
    page.get_by_role("link", name="Ирина Ковалёва").click()
    expect(page.locator(".bubble.in .bubble-text")).to_have_text("Добрый день! Пришлите, пожалуйста, счёт.")
    composer = page.get_by_role("textbox", name="Message")
    composer.fill("Счёт во вложении, Ирина.")
    composer.press("Enter")
    assert wait_for(lambda: len(smtp_server.messages) == 1, timeout=30)
    sent = email.message_from_bytes(smtp_server.messages[0].content, policy=email.policy.default)
    assert sent["In-Reply-To"] == "<ask-1@example.com>" and sent["Subject"] == "Re: Счёт для ООО «Ромашка»"

    # the client answers from another address, quoting our mail: the same conversation, the quote left out
    mailbox.deliver(client_mail(sender="Irina (work) <i.kovaleva@romashka.example>", subject="Re: Счёт для ООО «Ромашка»",
                                text=f"Спасибо, оплатим сегодня.\n\n> {sent.get_body(('plain',)).get_content().strip()}\n",
                                in_reply_to=sent["Message-ID"], references=f"<ask-1@example.com> {sent['Message-ID']}"))
    sweep.poll(channel.pk)
    expect(page.locator(".bubble.in .bubble-text").last).to_have_text("Спасибо, оплатим сегодня.", timeout=SHOWN)
    assert Conversation.objects.count() == 1 and Message.objects.filter(direction="in").count() == 2
    shot(page, "messenger-email-thread")
