"""The messenger's core (issue 15) through the console channel: an inbound delivery stored once and
processed once, an unknown sender becoming a client and a deal given out by the shift rules, the
ignore list and the return from it, the inbox pages as each role sees them, and their queries."""

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clients.models import Client, DuplicateSuggestion
from crm.models import Activity, Notification
from deals import shifts
from deals.models import Deal, Line, Stage
from messenger import ignore, ingress, outbox
from messenger.models import Attachment, Channel, Conversation, IgnoreRule, Inbound, Message, Unread
from messenger.receive import process
from tests.conftest import HX
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def line(db):
    line = Line.objects.get(funnel__name="Sales", position=1)
    Line.objects.filter(pk=line.pk).update(distribution=Line.Distribution.ROUND_ROBIN)
    line.refresh_from_db()
    return line


@pytest.fixture
def channel(line):
    return Channel.objects.create(kind=Channel.Kind.CONSOLE, name="Site chat", line=line)


def deliver(channel, sender="u1", text="Здравствуйте!", **extra):
    """What the console channel's ingress stores, then the worker's processing of it."""
    payload = {"id": extra.pop("id", uuid.uuid4().hex), "from": sender, "text": text, **extra}
    inbound_id = ingress.store(channel, payload["id"], json.dumps(payload, ensure_ascii=False))
    if inbound_id is not None:
        assert process(inbound_id) == "done"
    return inbound_id


def test_unknown_sender_becomes_client_and_deal_given_to_the_manager_on_shift(channel, line, manager):
    shifts.start(user=manager)
    deliver(channel, sender="tg-77", text="Хочу узнать цену", name="Анна Петрова", phone="8 (916) 123-45-67")
    client = Client.objects.get()
    assert (client.name, client.phone, client.source, client.responsible) == ("Анна Петрова", "+79161234567", "Site chat", manager)
    deal = Deal.objects.get()
    assert deal.client == client and deal.stage == Stage.objects.filter(line=line).order_by("position").first()
    assert deal.responsible == manager
    conversation = Conversation.objects.get()
    assert (conversation.external_chat_id, conversation.assignee, conversation.unread) == ("tg-77", manager, 1)
    assert Unread.objects.get(user=manager).count == 1
    assert Message.objects.get().text == "Хочу узнать цену"
    note = Notification.objects.get(user=manager, kind=Notification.Kind.MESSAGE)
    from crm.activity import notification_text_for

    manager.language = "ru"
    russian = notification_text_for(manager, note)
    assert russian.startswith("Новое сообщение") and "Анна Петрова" in russian and "Хочу узнать цену" in russian
    manager.language = "en"
    assert notification_text_for(manager, note) == "New message from Анна Петрова in Site chat: Хочу узнать цену"
    assert Activity.objects.filter(client=client, kind="message", field="chat_in").count() == 1


def test_nobody_on_shift_queues_the_deal(channel, line, manager):
    deliver(channel, name="Boris")
    deal = Deal.objects.get()
    assert deal.responsible is None and deal.queued_at is not None
    assert Conversation.objects.get().assignee is None


def test_replays_and_duplicates_make_one_message(channel):
    first = deliver(channel, id="m-1")
    assert first is not None
    assert deliver(channel, id="m-1") is None  # the same delivery again: stored once
    assert Inbound.objects.count() == 1 and Message.objects.count() == 1
    # processing the same row twice (a redelivered task) changes nothing
    assert process(first) == "skipped"
    assert Message.objects.count() == 1


def test_a_known_phone_attaches_to_the_client_and_a_shared_name_is_only_suggested(channel, manager):
    known = ClientFactory(name="Ivan Petrov", phone="+79160000001", responsible=manager)
    namesake = ClientFactory(name="Olga Sidorova", phone="+79160000002")
    deliver(channel, sender="a", phone="89160000001", name="Ваня")
    assert Conversation.objects.get(external_chat_id="a").client == known
    deliver(channel, sender="b", name="Olga Sidorova")  # the same name, nothing else: a new client
    new = Conversation.objects.get(external_chat_id="b").client
    assert new != namesake
    # a name alone, without a shared city or company, is no evidence (clients.duplicates)
    assert not DuplicateSuggestion.objects.filter(client=new).exists()
    assert Client.objects.count() == 3
    # a phone that is another client's extra phone: a new client, suggested as a duplicate of that one
    extra = ClientFactory(name="Pavel", phone="+79160000003", extra_phones=["+79160000004"])
    deliver(channel, sender="c", phone="8 916 000-00-04", name="Паша")
    third = Conversation.objects.get(external_chat_id="c").client
    assert third != extra
    assert DuplicateSuggestion.objects.filter(client=third, other=extra, kind="phone").exists()


def test_a_known_client_with_an_open_deal_gets_no_second_deal(channel, manager):
    deliver(channel, sender="x")
    deliver(channel, sender="x", text="ещё")
    assert Deal.objects.count() == 1 and Message.objects.count() == 2
    assert Conversation.objects.get().unread == 2


def test_ignore_then_back_from_ignore(channel, line, manager, admin):
    shifts.start(user=manager)
    deliver(channel, sender="s1", name="Spam Bot")
    client = Client.objects.get()
    rule = ignore.ignore_client(actor=admin, client=client, reason="spam")
    deal = Deal.objects.get()
    assert deal.stage.code == "ignore"
    assert Conversation.objects.get().status == Conversation.Status.IGNORED
    Notification.objects.all().delete()
    Unread.objects.all().delete()
    deliver(channel, sender="s1", text="still here")
    message = Message.objects.latest("pk")
    assert message.while_ignored
    assert not Notification.objects.exists() and not Unread.objects.exists()
    assert Conversation.objects.get().unread == 0
    assert Deal.objects.get().stage.code == "ignore"  # still ignored
    ignore.unignore(actor=admin, rule=rule)
    assert Deal.objects.get().stage.code == "ignore"  # moves only when they write again
    deliver(channel, sender="s1", text="I am back")
    deal = Deal.objects.get()
    assert deal.stage.code == "back_from_ignore"
    assert deal.responsible == manager
    assert Notification.objects.filter(user=manager, kind=Notification.Kind.MESSAGE).exists()
    kinds = list(Activity.objects.filter(client=client, kind="ignore").order_by("pk").values_list("field", flat=True))
    assert kinds == ["on", "off"]


def test_back_on_new_message_ends_the_rule_at_once(channel, line, manager, admin):
    deliver(channel, sender="s2")
    client = Client.objects.get()
    ignore.ignore_client(actor=admin, client=client, back_on_message=True)
    deliver(channel, sender="s2", text="hello again")
    assert Deal.objects.get().stage.code == "back_from_ignore"
    assert IgnoreRule.objects.get().ended_at is not None
    assert not Message.objects.latest("pk").while_ignored


def test_pattern_rules_ignore_new_senders(channel, admin):
    ignore.ignore_pattern(actor=admin, kind=IgnoreRule.Kind.EMAIL, pattern="*@spam.example")
    deliver(channel, sender="e1", email="bot@SPAM.example")
    assert Message.objects.get().while_ignored
    assert Conversation.objects.get().status == Conversation.Status.IGNORED


def test_manager_may_not_add_pattern_rules(manager):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        ignore.ignore_pattern(actor=manager, kind=IgnoreRule.Kind.PHONE, pattern="+79160000000")
    assert not IgnoreRule.objects.exists()


def test_a_failing_delivery_is_kept_and_retried(channel):
    inbound_id = ingress.store(channel, "bad", "{not json")
    assert process(inbound_id) == "failed"
    row = Inbound.objects.get()
    assert row.state == Inbound.State.FAILED and row.attempts == 1 and row.next_attempt_at is not None and row.error
    Inbound.objects.filter(pk=row.pk).update(payload=json.dumps({"id": "bad", "from": "z", "text": "fixed"}))
    assert process(inbound_id) == "done"
    assert Message.objects.get().text == "fixed"


# Replies ---------------------------------------------------------------------------------------


def test_reply_is_sent_once_and_written_to_the_feed_when_sent(channel, manager, capsys):
    shifts.start(user=manager)
    deliver(channel, sender="c1")
    conversation = Conversation.objects.get()
    message = outbox.reply(actor=manager, conversation=conversation, text="Добрый день!")
    assert message.status == Message.Status.QUEUED
    assert not Activity.objects.filter(field="chat_out").exists()
    assert outbox.deliver(message.pk) == "sent"
    assert outbox.deliver(message.pk) == "skipped"
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.external_id == str(message.key)
    assert capsys.readouterr().out.count("Добрый день!") == 1
    assert Activity.objects.filter(field="chat_out", text="Добрый день!").count() == 1
    conversation.refresh_from_db()
    assert conversation.unread == 0 and conversation.last_direction == "out"


def test_a_manager_of_another_team_may_not_reply_through_a_team_channel(channel, manager, team):
    from crm.models import Team

    other_team = Team.objects.create(name="Line 2")
    channel.teams.add(other_team)
    deliver(channel, sender="c2")
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        outbox.reply(actor=manager, conversation=Conversation.objects.get(), text="hi")
    assert not Message.objects.filter(direction="out").exists()


# Pages ---------------------------------------------------------------------------------------


def test_inbox_lists_conversations_unread_first_and_shows_the_chat(channel, manager, client):
    shifts.start(user=manager)
    deliver(channel, sender="old", name="Old Chat")
    old = Conversation.objects.get(external_chat_id="old")
    Conversation.objects.filter(pk=old.pk).update(unread=0)
    deliver(channel, sender="new", name="Новый клиент", text="<script>alert(1)</script>")
    client.force_login(manager)
    page = client.get(reverse("messenger:inbox"))
    html = page.content.decode()
    assert html.index("Новый клиент") < html.index("Old Chat")
    new = Conversation.objects.get(external_chat_id="new")
    page = client.get(reverse("messenger:inbox") + f"?c={new.pk}")
    body = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert reverse("clients:panel", args=[new.client_id]) in body
    assert client.post(reverse("messenger:read", args=[new.pk])).status_code == 204
    new.refresh_from_db()
    assert new.unread == 0 and not Unread.objects.filter(user=manager, conversation=new).exists()


def test_search_by_name_phone_and_text(channel, manager, client):
    shifts.start(user=manager)
    deliver(channel, sender="p1", name="Пётр Иванов", phone="+79161112233", text="нужна доставка")
    deliver(channel, sender="p2", name="Мария", text="вопрос по оплате")
    client.force_login(manager)
    url = reverse("messenger:list")
    assert "Пётр Иванов" in client.get(url, {"f": "all", "q": "иванов"}).content.decode()
    by_phone = client.get(url, {"f": "all", "q": "8 916 111"}).content.decode()
    assert "Пётр Иванов" in by_phone and "Мария" not in by_phone
    by_text = client.get(url, {"f": "all", "q": "оплат"}).content.decode()
    assert "Мария" in by_text and "Пётр" not in by_text


def test_another_managers_conversation_is_404_everywhere(channel, manager, other_manager, client, media):
    shifts.start(user=other_manager)
    deliver(channel, sender="hidden", name="Not Yours")
    conversation = Conversation.objects.get()
    assert conversation.client.responsible == other_manager
    message = Message.objects.get()
    attachment = Attachment.objects.create(message=message, file=SimpleUploadedFile("a.png", PNG), name="a.png",
                                           content_type="image/png", size=len(PNG))
    client.force_login(manager)
    assert "Not Yours" not in client.get(reverse("messenger:inbox") + "?f=all").content.decode()
    for name in ("chat", "chat-poll", "chat-older"):
        assert client.get(reverse(f"messenger:{name}", args=[conversation.pk])).status_code == 404
    assert client.get(reverse("messenger:inbox") + f"?c={conversation.pk}").status_code == 404
    assert client.get(reverse("messenger:attachment", args=[attachment.pk])).status_code == 404
    for name in ("reply", "read", "take", "ignore"):
        assert client.post(reverse(f"messenger:{name}", args=[conversation.pk]), {"text": "x"}).status_code == 404
    assert "Not Yours" not in client.get(reverse("messenger:list"), {"f": "all", "q": "Not"}).content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_reply_through_the_page_and_poll(channel, manager, client):
    shifts.start(user=manager)
    deliver(channel, sender="c3")
    conversation = Conversation.objects.get()
    client.force_login(manager)
    poll = reverse("messenger:chat-poll", args=[conversation.pk])
    assert client.get(poll, {"since": conversation.version}, headers=HX).status_code == 204
    answer = client.post(reverse("messenger:reply", args=[conversation.pk]), {"text": "Мы перезвоним"}, headers=HX)
    assert answer.status_code == 200 and "Мы перезвоним" in answer.content.decode()
    changed = client.get(poll, {"since": conversation.version}, headers=HX)
    assert changed.status_code == 200 and "Мы перезвоним" in changed.content.decode()
    empty = client.post(reverse("messenger:reply", args=[conversation.pk]), {"text": "  "}, headers=HX)
    assert empty.status_code == 422 and Message.objects.filter(direction="out").count() == 1


def test_attachments_are_downloads_typed_by_content(channel, manager, client, media):
    shifts.start(user=manager)
    deliver(channel, sender="f1")
    conversation = Conversation.objects.get()
    client.force_login(manager)
    fake_image = SimpleUploadedFile("photo.png", b"<svg onload=alert(1)></svg>", content_type="image/png")
    client.post(reverse("messenger:reply", args=[conversation.pk]), {"text": "", "files": [fake_image]}, headers=HX)
    attachment = Attachment.objects.get()
    assert attachment.content_type == "text/plain" and not attachment.is_image
    response = client.get(reverse("messenger:attachment", args=[attachment.pk]) + "?inline=1")
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/octet-stream" and response["X-Content-Type-Options"] == "nosniff"
    real = SimpleUploadedFile("dot.png", PNG, content_type="application/octet-stream")
    client.post(reverse("messenger:reply", args=[conversation.pk]), {"text": "", "files": [real]}, headers=HX)
    image = Attachment.objects.latest("pk")
    inline = client.get(reverse("messenger:attachment", args=[image.pk]) + "?inline=1")
    assert inline["Content-Type"] == "image/png" and "sandbox" in inline["Content-Security-Policy"]


def test_too_large_attachment_is_refused_with_a_message(channel, manager, client, media, settings):
    settings.MESSENGER_MAX_ATTACHMENT_BYTES = 10
    shifts.start(user=manager)
    deliver(channel, sender="f2")
    conversation = Conversation.objects.get()
    client.force_login(manager)
    big = SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * 100)
    answer = client.post(reverse("messenger:reply", args=[conversation.pk]), {"text": "see file", "files": [big]}, headers=HX)
    assert answer.status_code == 422 and "see file" in answer.content.decode()
    assert not Message.objects.filter(direction="out").exists()


@pytest.mark.parametrize("size", [2, 12])
def test_inbox_queries_do_not_grow(size, channel, admin, client, django_assert_max_num_queries):
    for i in range(size):
        deliver(channel, sender=f"q{i}", name=f"Client {i}")
    conversation = Conversation.objects.first()
    for i in range(3):
        deliver(channel, sender=conversation.external_chat_id, text=f"more {i}")
    client.force_login(admin)
    with django_assert_max_num_queries(16):
        assert client.get(reverse("messenger:inbox") + f"?f=all&c={conversation.pk}").status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(reverse("messenger:list"), {"f": "all"}).status_code == 200
    # session, user with permissions, token
    with django_assert_max_num_queries(3):
        assert client.get(reverse("messenger:list"), {"f": "all", "since": Message.objects.latest("pk").pk}).status_code == 204
    version = Conversation.objects.get(pk=conversation.pk).version
    with django_assert_max_num_queries(3):  # session, user (with its role), the token with the permission asked in it
        assert client.get(reverse("messenger:chat-poll", args=[conversation.pk]), {"since": version}).status_code == 204
    with django_assert_max_num_queries(10):
        assert client.get(reverse("messenger:chat-poll", args=[conversation.pk]), {"since": "0"}).status_code == 200


def test_ignore_list_page(channel, admin, manager, client):
    deliver(channel, sender="i1", name="Надоедливый")
    rule = ignore.ignore_client(actor=admin, client=Client.objects.get(), reason="спам")
    client.force_login(admin)
    page = client.get(reverse("messenger:ignore-list"), {"q": "надоед"})
    assert "Надоедливый" in page.content.decode()
    assert client.post(reverse("messenger:ignore-list"), {"kind": "email", "pattern": "*@junk.example"}).status_code == 302
    assert IgnoreRule.objects.filter(pattern="*@junk.example").exists()
    client.post(reverse("messenger:ignore-end", args=[rule.pk]))
    rule.refresh_from_db()
    assert rule.ended_at is not None and rule.ended_by == admin
    client.force_login(manager)  # the client is not theirs: not listed, cannot be taken off
    assert "Надоедливый" not in client.get(reverse("messenger:ignore-list"), {"ended": "1"}).content.decode()
    assert client.post(reverse("messenger:ignore-list"), {"kind": "email", "pattern": "*@x.example"}).status_code == 403


def test_channel_settings_keep_secrets_encrypted(admin, client, line):
    client.force_login(admin)
    answer = client.post(reverse("messenger:channel-create") + "?kind=telegram",
                         {"kind": "telegram", "name": "Bot", "is_active": "on", "line": line.pk, "bot_token": "123:SECRET"})
    assert answer.status_code == 302
    channel = Channel.objects.get()
    assert "123:SECRET" not in channel.secrets and channel.secrets
    from messenger import secrets

    stored = secrets.read(channel)
    assert stored["bot_token"] == "123:SECRET" and stored["webhook_secret"]
    page = client.get(reverse("messenger:channel-edit", args=[channel.pk])).content.decode()
    assert "123:SECRET" not in page and channel.token in page
    client.post(reverse("messenger:channel-edit", args=[channel.pk]), {"name": "Bot 2", "is_active": "on", "bot_token": ""})
    channel.refresh_from_db()
    assert channel.name == "Bot 2" and secrets.read(channel)["bot_token"] == "123:SECRET"


def test_manager_may_not_configure_channels(manager, client):
    client.force_login(manager)
    assert client.get(reverse("messenger:channels")).status_code == 403
    assert client.post(reverse("messenger:channel-create") + "?kind=console", {"name": "x"}).status_code == 403
    assert not Channel.objects.exists()


def test_unknown_hook_is_404_and_console_takes_no_requests(channel, client):
    assert client.post("/hooks/console/nope/", data="{}", content_type="application/json").status_code == 404
    answer = client.post(f"/hooks/console/{channel.token}/", data="{}", content_type="application/json")
    assert answer.status_code == 404 and not Inbound.objects.exists()


def test_card_feed_shows_messages_and_last_contact(channel, manager, client):
    shifts.start(user=manager)
    deliver(channel, sender="b1", name="Board Client")
    conversation = Conversation.objects.get()
    client.force_login(manager)
    page = client.get(reverse("clients:detail", args=[conversation.client_id]))
    card = page.content.decode()
    assert "Здравствуйте!" in card and "Site chat" in card  # the feed shows the message, the Messages tab the conversation
    assert page.context["days_since_contact"] == 0
    assert f"?f=all&c={conversation.pk}" in card


def test_board_card_shows_the_unread_badge(channel, manager, client, line):
    shifts.start(user=manager)
    deliver(channel, sender="badge", name="Badge Client")
    deliver(channel, sender="badge", text="second")
    client.force_login(manager)
    html = client.get(line.funnel.get_absolute_url()).content.decode()
    card = html[html.index("Badge Client"):]
    assert '<span class="badge unread-badge"' in card[:400] and ">2</span>" in card[:400]
    Conversation.objects.update(unread=0)
    html = client.get(line.funnel.get_absolute_url()).content.decode()
    assert "unread-badge" not in html


def test_a_hidden_phone_stays_hidden_in_the_inbox_and_its_panel(line, manager, client):
    from clients.models import CardField

    sms = Channel.objects.create(kind=Channel.Kind.SMS, name="SMS", line=line)
    CardField.objects.filter(system_key="phone").update(manager_visible=False)
    shifts.start(user=manager)
    from messenger.channels import Incoming
    from messenger.receive import receive

    receive(sms, Incoming(external_id="s1", chat_id="+79165550101", phone="+79165550101", text="перезвоните", name="Скрытый"))
    conversation = Conversation.objects.get()
    client.force_login(manager)
    page = client.get(reverse("messenger:inbox") + f"?f=all&c={conversation.pk}").content.decode()
    panel = client.get(reverse("clients:panel", args=[conversation.client_id])).content.decode()
    card = client.get(reverse("clients:detail", args=[conversation.client_id])).content.decode()
    for html in (page, panel, card):
        assert "Скрытый" in html
        assert "5550101" not in html and "555-01-01" not in html
    found = client.get(reverse("messenger:list"), {"f": "all", "q": "916 555"}).content.decode()
    assert "Скрытый" not in found  # the phone cannot be searched by someone who may not see it


def test_a_deal_counts_as_worked_when_the_manager_replies_not_when_the_client_writes(channel, line, manager):
    from deals import distribution

    shifts.start(user=manager)
    deliver(channel, sender="w1", name="Worked?")
    deliver(channel, sender="w1", text="hello?")
    deal = Deal.objects.get()
    assert list(distribution.not_worked(manager, [line.pk])) == [deal]
    message = outbox.reply(actor=manager, conversation=Conversation.objects.get(), text="Здравствуйте")
    assert list(distribution.not_worked(manager, [line.pk])) == [deal]  # queued, not yet sent
    outbox.deliver(message.pk)
    assert list(distribution.not_worked(manager, [line.pk])) == []


def test_admins_see_failed_deliveries_and_retry_them(channel, admin, client, monkeypatch):
    inbound_id = ingress.store(channel, "broken", "{not json")
    for _ in range(5):  # every try spent
        Inbound.objects.filter(pk=inbound_id).update(next_attempt_at=None)
        process(inbound_id)
    row = Inbound.objects.get()
    assert row.state == Inbound.State.FAILED and row.next_attempt_at is None and row.attempts == 5
    client.force_login(admin)
    page = client.get(reverse("messenger:channels")).content.decode()
    assert "Deliveries that could not be processed" in page and "JSONDecodeError" in page
    queued = []
    monkeypatch.setattr("messenger.tasks.inbound_process.delay", lambda pk: queued.append(pk))
    Inbound.objects.filter(pk=inbound_id).update(payload=json.dumps({"id": "broken", "from": "r", "text": "repaired"}))
    assert client.post(reverse("messenger:inbound-retry", args=[inbound_id])).status_code == 302
    assert queued == [inbound_id]
    assert process(inbound_id) == "done" and Message.objects.get().text == "repaired"


def test_close_reopen_and_a_new_message_opens_it(channel, manager, client):
    shifts.start(user=manager)
    deliver(channel, sender="cl")
    conversation = Conversation.objects.get()
    client.force_login(manager)
    answer = client.post(reverse("messenger:close", args=[conversation.pk]), headers=HX)
    assert "Reopen" in answer.content.decode()
    conversation.refresh_from_db()
    assert (conversation.status, conversation.unread) == (Conversation.Status.CLOSED, 0)
    deliver(channel, sender="cl", text="one more question")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.unread) == (Conversation.Status.OPEN, 1)


def test_taking_a_conversation_moves_its_unread_count(channel, manager, other_manager, admin, client):
    shifts.start(user=manager)
    deliver(channel, sender="t1")
    conversation = Conversation.objects.get()
    assert Unread.objects.get().user == manager
    client.force_login(admin)
    client.post(reverse("messenger:take", args=[conversation.pk]), headers=HX)
    assert list(Unread.objects.values_list("user", "count")) == [(admin.pk, 1)]
    assert Conversation.objects.get().assignee == admin


def test_admins_start_from_all_managers_from_theirs(channel, manager, admin, client):
    client.force_login(admin)
    assert client.get(reverse("messenger:inbox")).context["which"] == "all"
    client.force_login(manager)
    assert client.get(reverse("messenger:inbox")).context["which"] == "mine"


def test_editing_the_client_from_the_inbox_comes_back_to_the_chat(channel, manager, client):
    shifts.start(user=manager)
    deliver(channel, sender="ed", name="Old Name")
    conversation = Conversation.objects.get()
    client.force_login(manager)
    here = reverse("messenger:inbox") + f"?f=all&c={conversation.pk}"
    assert reverse("clients:edit", args=[conversation.client_id]) in client.get(here).content.decode()
    form = client.get(reverse("clients:edit", args=[conversation.client_id]), headers=HX).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | dict)}
    data.update(name="New Name", seen_modified=form.initial.get("seen_modified") or form["seen_modified"].value())
    answer = client.post(reverse("clients:edit", args=[conversation.client_id]), data,
                         headers={**HX, "HX-Current-URL": "http://testserver" + here})
    assert answer.status_code == 200 and answer["HX-Redirect"] == here, answer.content.decode()[:500]
    assert Client.objects.get().name == "New Name"


def test_a_common_word_is_searched_by_walking_the_newest(channel, manager, client, monkeypatch):
    from messenger import inbox

    shifts.start(user=manager)
    deliver(channel, sender="w1", name="Анна", text="доставка завтра")
    deliver(channel, sender="w2", name="Борис", text="доставка сегодня")
    deliver(channel, sender="w3", name="Вера", text="оплата")
    client.force_login(manager)
    url = reverse("messenger:list")
    for cap in (2000, 1):  # the index-driven search, then (more matches than the cap) the walk: the same answer
        monkeypatch.setattr(inbox, "SEARCH_CAP", cap)
        html = client.get(url, {"f": "all", "q": "доставк"}).content.decode()
        assert "Анна" in html and "Борис" in html and "Вера" not in html


def test_the_drain_takes_every_new_delivery_once_and_one_kick_per_burst(channel, settings, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    """With a shared cache (Redis), a burst of deliveries queues one drain, which processes them all;
    a delivery stored after the drain looked its last time kicks a new one."""
    from django.core.cache import cache

    from crm import queueing
    from messenger import receive

    monkeypatch.setattr(queueing, "shared_cache", lambda: True)  # the locmem cache stands for Redis here
    kicks = []
    monkeypatch.setattr("messenger.tasks.inbound_drain.delay", lambda: kicks.append(1))
    cache.delete(receive.KICK_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(7):
            ingress.store(channel, f"b{i}", json.dumps({"id": f"b{i}", "from": f"s{i % 3}", "text": f"t{i}"}))
    assert len(kicks) == 1  # one drain for the burst
    assert receive.drain() == 7
    assert Message.objects.count() == 7 and not Inbound.objects.exclude(state=Inbound.State.DONE).exists()
    with django_capture_on_commit_callbacks(execute=True):
        ingress.store(channel, "late", json.dumps({"id": "late", "from": "s9", "text": "late"}))
    assert len(kicks) == 2  # the drain let go of the key: the next delivery kicks again
    assert receive.drain() == 1 and receive.drain() == 0


def test_the_chat_poll_asks_the_permission_in_its_query(channel, admin, manager, nobody, client):
    """A user whose role lost clients.view_client gets 404 from the poll too, not the token."""
    from django.contrib.auth.models import Permission

    from crm.models import Role

    deliver(channel, sender="pp")
    conversation = Conversation.objects.get()
    Conversation.objects.filter(pk=conversation.pk).update(assignee=manager)
    conversation.client.responsible = manager
    conversation.client.save()
    url = reverse("messenger:chat-poll", args=[conversation.pk])
    client.force_login(manager)
    assert client.get(url, {"since": "0"}).status_code == 200
    role = Role.objects.get(group__name="Manager")
    role.group.permissions.remove(Permission.objects.get(codename="view_client"))
    client.force_login(manager)
    assert client.get(url, {"since": str(Conversation.objects.get().version)}).status_code == 404
    client.force_login(nobody)
    assert client.get(url, {"since": "0"}).status_code == 404
