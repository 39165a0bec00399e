"""The Telegram bot channel (issue 15) against a Bot-API-compatible server of our own on 127.0.0.1
(tests/messenger/fake_botapi.py): updates delivered to the webhook like Telegram does (the secret
header, retries, duplicates from two threads at once), stored once and turned into a client, a
deal and a message by the real worker; files fetched with getFile; replies sent once by the
worker, retried when the failure may pass and failed at once when it cannot; private Bot API
addresses refused before any connection."""

import json
import struct
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from deals.models import Deal, Stage
from messenger import outbox, secrets
from messenger.attachments import check_size
from messenger.channels import Refused, SendError, SendRefused, backend_for, telegram
from messenger.channels.telegram import TelegramBackend, multipart, register_webhook
from messenger.models import Attachment, Channel, Conversation, Inbound, Message
from messenger.receive import channel_line, process
from tests.conftest import wait_for
from tests.factories import ClientFactory

from . import fake_botapi
from .fake_botapi import FakeBotApi, message_update, parse_multipart

pytestmark = pytest.mark.django_db
botapi_fixture = fake_botapi.botapi  # the `botapi` fixture: a FakeBotApi on 127.0.0.1, stopped after the test

SECRET = "webhook-secret_0123456789abcdef"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (what attachments.sniff must recognise)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def telegram_channel(api_base: str, *, token: str = "", secret: str = SECRET, name: str = "Telegram bot") -> Channel:
    channel = Channel(kind=Channel.Kind.TELEGRAM, name=name, settings={"api_base": api_base})
    secrets.write(channel, {"bot_token": token or FakeBotApi().token, "webhook_secret": secret})
    channel.save()
    return channel


def hook_path(channel: Channel) -> str:
    return reverse("hooks:hook", kwargs={"kind": "telegram", "token": channel.token})


def post_update(client, channel, update, *, secret: str | None = SECRET, raw: bytes | None = None):
    headers = {HEADER: secret} if secret is not None else {}
    body = raw if raw is not None else json.dumps(update, ensure_ascii=False)
    return client.post(hook_path(channel), data=body, content_type="application/json", headers=headers)


def received(client, channel, update) -> Inbound:
    """The update through the ingress (the test client), then the worker's processing of it."""
    assert post_update(client, channel, update).status_code == 200
    inbound = Inbound.objects.get(channel=channel, dedupe_key=str(update["update_id"]))
    assert process(inbound.pk) == "done", Inbound.objects.get(pk=inbound.pk).error
    return inbound


def conversation_with(channel, chat_id: str = "5550001") -> Conversation:
    return Conversation.objects.create(channel=channel, client=ClientFactory(name="Ivan Petrov"), external_chat_id=chat_id)


def worker_idle(celery_worker) -> bool:
    """Whether the test's worker answers that it runs no task."""
    from crm.celery import app

    node = celery_worker["process"].node
    active = app.control.inspect(destination=[node], timeout=1).active() or {}
    return node in active and not active[node]


def worker_log(celery_worker) -> str:
    return open(celery_worker["process"].log_path).read()


# Inbound through the real ingress, the fake Telegram and the real worker ---------------------


def test_an_unknown_sender_writes_and_the_worker_makes_a_client_a_deal_and_the_message(live_server, celery_worker, botapi):
    channel = telegram_channel(botapi.url)
    ok, said = register_webhook(channel, live_server.url + hook_path(channel))
    assert (ok, said) == (True, "Webhook was set")

    statuses = botapi.deliver(message_update(1001, chat_id=5550001, text="Здравствуйте! Сколько стоит подписка?",
                                             first_name="Иван", last_name="Петров", username="ivan_p"))
    assert statuses == [200]
    assert json.loads(botapi.deliveries[0]["body"]) == {"ok": True, "duplicate": False}
    assert Inbound.objects.filter(channel=channel).count() == 1  # the ingress stored it and answered; the worker does the rest

    assert wait_for(lambda: Inbound.objects.filter(channel=channel, state=Inbound.State.DONE).exists()), worker_log(celery_worker)
    client = Client.objects.get()
    assert (client.name, client.source, client.channel) == ("Иван Петров", "Telegram bot", "telegram")
    deal = Deal.objects.get(client=client)
    first_stage = Stage.objects.filter(line=channel_line(channel)).order_by("position", "pk").first()
    assert deal.stage == first_stage and first_stage.name == "Not processed"
    conversation = Conversation.objects.get(channel=channel)
    assert (conversation.client, conversation.external_chat_id) == (client, "5550001")
    message = Message.objects.get()
    assert (message.conversation, message.direction, message.text) == (conversation, "in", "Здравствуйте! Сколько стоит подписка?")
    assert (message.external_id, message.status) == ("5550001:1", "received")


def test_replays_and_concurrent_duplicates_make_one_inbound_and_one_message(live_server, celery_worker, botapi):
    channel = telegram_channel(botapi.url)
    assert register_webhook(channel, live_server.url + hook_path(channel))[0]
    update = message_update(2002, chat_id=777, text="Один раз")

    # the first delivery arrives twice at the same instant, then Telegram resends it three times
    assert botapi.deliver_concurrently(update, copies=2) == [[200], [200]]
    for _ in range(3):
        assert botapi.deliver(update) == [200]
    answers = [json.loads(d["body"]) for d in botapi.deliveries]
    assert sorted(a["duplicate"] for a in answers) == [False, True, True, True, True]
    assert Inbound.objects.filter(channel=channel).count() == 1

    # a wrong secret, or none: refused (Telegram retries, and is refused each time), nothing stored
    assert botapi.deliver(message_update(2003), secret="not-the-secret") == [401, 401, 401]
    assert botapi.deliver(message_update(2004), secret="") == [401, 401, 401]

    assert wait_for(lambda: Inbound.objects.filter(channel=channel, state=Inbound.State.DONE).exists()), worker_log(celery_worker)
    assert Inbound.objects.filter(channel=channel).count() == 1
    assert Message.objects.filter(channel=channel).count() == 1 and Client.objects.count() == 1
    assert Message.objects.get().text == "Один раз"


def test_a_reply_is_sent_once_by_the_worker(celery_worker, botapi, manager):
    channel = telegram_channel(botapi.url)
    conversation = conversation_with(channel, "5550001")

    message = outbox.reply(actor=manager, conversation=conversation, text="Добрый день! Подписка стоит 990 ₽.")

    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == "sent"), worker_log(celery_worker)
    message.refresh_from_db()
    calls = botapi.calls("sendMessage")
    assert len(calls) == 1
    assert calls[0]["json"] == {"chat_id": 5550001, "text": "Добрый день! Подписка стоит 990 ₽."}
    assert calls[0]["token"] == botapi.token
    assert (message.external_id, message.error, message.attempts) == ("5550001:1", "", 1)
    # nothing more leaves: once the worker reports it has nothing running, a second look finds it sent
    assert wait_for(lambda: worker_idle(celery_worker)), worker_log(celery_worker)
    assert outbox.deliver(message.pk) == "skipped" and len(botapi.calls("sendMessage")) == 1


# The ingress's answers ----------------------------------------------------------------------

def test_a_wrong_or_missing_secret_is_401_and_nothing_is_stored(client, botapi):
    channel = telegram_channel(botapi.url)
    update = message_update(3001)
    for secret in (None, "", "wrong", SECRET + "x", SECRET[:-1], "тайна"):
        response = post_update(client, channel, update, secret=secret)
        assert response.status_code == 401, secret
        assert response.json() == {"ok": False, "error": "wrong or missing secret token"}
    # a channel with no secret yet takes nothing
    bare = Channel.objects.create(kind=Channel.Kind.TELEGRAM, name="No secret", settings={"api_base": botapi.url})
    assert post_update(client, bare, update, secret="").status_code == 401
    assert not Inbound.objects.exists()
    assert post_update(client, channel, update).status_code == 200 and Inbound.objects.count() == 1


@pytest.mark.parametrize("body", [b"not json", b"", b"[1, 2]", b'{"message": {}}', b'{"update_id": "5"}', b'{"update_id": true}',
                                  b'{"update_id": 1.5}', b"\xff\xfe{}"])
def test_a_body_that_is_not_an_update_is_400(client, botapi, body):
    channel = telegram_channel(botapi.url)
    response = post_update(client, channel, None, raw=body)
    assert response.status_code == 400
    assert not Inbound.objects.exists()


def test_an_unknown_or_inactive_channel_is_404(client, botapi):
    channel = telegram_channel(botapi.url)
    body = json.dumps(message_update(4001))
    response = client.post(reverse("hooks:hook", kwargs={"kind": "telegram", "token": "no-such-token"}), data=body,
                           content_type="application/json", headers={HEADER: SECRET})
    assert response.status_code == 404
    Channel.objects.filter(pk=channel.pk).update(is_active=False)
    assert post_update(client, channel, message_update(4001)).status_code == 404
    assert not Inbound.objects.exists()


def test_accept_returns_the_update_id_and_the_body_as_sent(botapi):
    channel = telegram_channel(botapi.url)
    body = json.dumps(message_update(987654321, text="Привет"), ensure_ascii=False)
    request = RequestFactory().post("/hooks/telegram/x/", data=body.encode(), content_type="application/json", headers={HEADER: SECRET})
    assert backend_for(channel).accept(request) == ("987654321", body)
    request = RequestFactory().post("/hooks/telegram/x/", data=body.encode(), content_type="application/json")
    with pytest.raises(Refused) as refusal:
        backend_for(channel).accept(request)
    assert refusal.value.status == 401


# What the worker reads ------------------------------------------------------------------------


def test_a_photo_is_fetched_from_the_bot_api_and_stored_with_its_sniffed_type(client, botapi, media):
    channel = telegram_channel(botapi.url)
    thumb = botapi.add_file(png(1, 1), "photos/thumb_1.png")
    original = botapi.add_file(PNG, "photos/file_7.png")
    update = message_update(5001, text=None, caption="Вот скриншот ошибки",
                            photo=[{"file_id": thumb, "file_unique_id": "t", "file_size": 70, "width": 90, "height": 90},
                                   {"file_id": original, "file_unique_id": "o", "file_size": len(PNG), "width": 800, "height": 600}])
    received(client, channel, update)

    message = Message.objects.get()
    assert message.text == "Вот скриншот ошибки"
    attachment = Attachment.objects.get(message=message)
    assert (attachment.name, attachment.content_type, attachment.size) == ("file_7.png", "image/png", len(PNG))
    with attachment.file.open("rb") as stored:
        assert stored.read() == PNG
    assert [c["fields"]["file_id"] for c in botapi.calls("getFile")] == [original]  # only the largest size
    downloads = botapi.calls("file")
    assert [(d["path"], d["token"], d["status"]) for d in downloads] == [("photos/file_7.png", botapi.token, 200)]


def test_a_document_keeps_its_name_and_is_typed_by_its_bytes_not_by_the_sender(client, botapi, media):
    channel = telegram_channel(botapi.url)
    file_id = botapi.add_file(PDF, "documents/file_3")
    update = message_update(5101, text=None, document={"file_id": file_id, "file_unique_id": "d", "file_name": "счёт №5.pdf",
                                                        "mime_type": "image/png", "file_size": len(PDF)})
    received(client, channel, update)
    attachment = Attachment.objects.get()
    assert (attachment.name, attachment.content_type, attachment.size) == ("счёт №5.pdf", "application/pdf", len(PDF))
    assert Message.objects.get().text == ""


def test_a_voice_message_is_stored_as_audio(client, botapi, media):
    channel = telegram_channel(botapi.url)
    ogg = b"OggS\x00\x02" + b"\x00" * 40
    file_id = botapi.add_file(ogg, "voice/file_9.oga")
    received(client, channel, message_update(5201, text=None, voice={"file_id": file_id, "file_unique_id": "v", "duration": 3,
                                                                      "mime_type": "audio/ogg", "file_size": len(ogg)}))
    attachment = Attachment.objects.get()
    assert (attachment.name, attachment.content_type) == ("file_9.oga", "audio/ogg")


def test_a_file_too_large_is_not_downloaded_and_the_message_says_so(client, botapi, media, settings):
    settings.MESSENGER_MAX_ATTACHMENT_BYTES = 1024 * 1024
    channel = telegram_channel(botapi.url)
    file_id = botapi.add_file(b"PK\x03\x04 small really", "documents/file_4")
    update = message_update(5301, text=None, caption="архив", document={"file_id": file_id, "file_unique_id": "z", "file_name": "base.zip",
                                                                        "file_size": 5 * 1024 * 1024})
    received(client, channel, update)
    message = Message.objects.get()
    with pytest.raises(ValidationError) as too_large:  # the refusal's words, in the site's language
        check_size(5 * 1024 * 1024)
    assert message.text == f"архив\n[base.zip: {too_large.value.messages[0]}]" and "1" in too_large.value.messages[0]
    assert not Attachment.objects.exists()
    assert botapi.calls("getFile") == [] and botapi.calls("file") == []


def test_a_bot_api_down_while_fetching_a_file_fails_the_delivery_which_is_retried(client, botapi, media):
    channel = telegram_channel(botapi.url)
    file_id = botapi.add_file(PNG, "photos/file_5.png")
    update = message_update(5401, text=None, photo=[{"file_id": file_id, "file_unique_id": "p", "file_size": len(PNG), "width": 2, "height": 2}])
    assert post_update(client, channel, update).status_code == 200
    inbound = Inbound.objects.get()
    botapi.fail_next(1, 502, method="getFile")

    assert process(inbound.pk) == "failed"
    inbound.refresh_from_db()
    assert inbound.state == "failed" and "502" in inbound.error and inbound.next_attempt_at is not None
    assert not Message.objects.exists()

    assert process(inbound.pk) == "done"  # the sweep's next try
    assert Attachment.objects.get().content_type == "image/png"


def test_a_file_telegram_will_not_give_becomes_a_note(client, botapi, media):
    channel = telegram_channel(botapi.url)
    update = message_update(5501, text="см. файл", document={"file_id": "EXPIRED", "file_unique_id": "x", "file_name": "old.pdf", "file_size": 10})
    received(client, channel, update)
    assert Message.objects.get().text == "см. файл\n[old.pdf: not received: 400 Bad Request: invalid file_id]"
    assert not Attachment.objects.exists()


def test_a_shared_own_contact_gives_the_phone_someone_elses_does_not(client, botapi):
    channel = telegram_channel(botapi.url)
    own = message_update(5601, chat_id=4242, text=None, contact={"phone_number": "+7 916 123-45-67", "first_name": "Иван", "user_id": 4242})
    received(client, channel, own)
    customer = Client.objects.get()
    assert customer.phone == "+79161234567"
    assert Message.objects.get().text == "📞 Иван, +7 916 123-45-67"

    other = message_update(5602, chat_id=4343, text=None, first_name="Олег", last_name="",
                           contact={"phone_number": "+79161234567", "first_name": "Иван"})
    received(client, channel, other)
    newcomer = Client.objects.exclude(pk=customer.pk).get()  # not tied to Иван by the shared number
    assert (newcomer.name, newcomer.phone) == ("Олег", "")


def test_only_new_messages_are_read():
    backend = TelegramBackend(Channel(kind="telegram", name="t"))
    edited = {"update_id": 1, "edited_message": message_update(1)["message"]}
    post = {"update_id": 2, "channel_post": {"message_id": 1, "chat": {"id": -100, "type": "channel"}, "date": 1, "text": "news"}}
    callback = {"update_id": 3, "callback_query": {"id": "1", "from": {"id": 1, "first_name": "A"}, "data": "x"}}
    for update in (edited, post, callback, {"update_id": 4}):
        assert backend.parse(json.dumps(update)) == []
    [item] = backend.parse(json.dumps(message_update(5, chat_id=-1001234, message_id=77, text="hi", username="")))
    assert (item.external_id, item.chat_id, item.name, item.username, item.text) == ("-1001234:77", "-1001234", "Ivan Petrov", "", "hi")
    assert item.sent_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_an_edited_message_is_stored_as_a_delivery_but_makes_no_message(client, botapi):
    channel = telegram_channel(botapi.url)
    edited = {"update_id": 5701, "edited_message": message_update(1, text="исправлено")["message"]}
    inbound = received(client, channel, edited)
    assert Inbound.objects.get(pk=inbound.pk).state == "done"
    assert not Message.objects.exists() and not Client.objects.exists()


# Replies ------------------------------------------------------------------------------------


def test_a_500_then_success_is_retried_and_sent_once(botapi, admin):
    channel = telegram_channel(botapi.url)
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    botapi.fail_next(1, 500)

    assert outbox.deliver(message.pk) == "retry"
    message.refresh_from_db()
    assert message.status == "queued" and "500" in message.error and message.next_attempt_at > timezone.now()
    assert outbox.deliver(message.pk) == "skipped"  # not due yet

    assert outbox.deliver(message.pk, now=timezone.now() + timedelta(hours=1)) == "sent"
    message.refresh_from_db()
    assert (message.status, message.external_id, message.attempts, message.error) == ("sent", "5550001:1", 2, "")
    assert [c["status"] for c in botapi.calls("sendMessage")] == [500, 200] and len(botapi.sent()) == 1


def test_a_429_is_retried_later_and_says_when(botapi, admin):
    channel = telegram_channel(botapi.url)
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    botapi.fail_next(1, 429, "Too Many Requests: retry after 7", retry_after=7)
    assert outbox.deliver(message.pk) == "retry"
    message.refresh_from_db()
    assert message.status == "queued" and "retry after 7 s" in message.error


def test_a_403_fails_with_the_reason_and_is_not_retried(botapi, admin):
    channel = telegram_channel(botapi.url)
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    botapi.fail_next(1, 403, "Forbidden: bot was blocked by the user")

    assert outbox.deliver(message.pk) == "failed"
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "403 Forbidden: bot was blocked by the user")
    assert outbox.deliver(message.pk, now=timezone.now() + timedelta(days=1)) == "skipped"
    assert len(botapi.calls("sendMessage")) == 1


@pytest.mark.parametrize("status, description", [(400, "Bad Request: chat not found"), (404, "Not Found")])
def test_other_refusals_fail_at_once(botapi, admin, status, description):
    channel = telegram_channel(botapi.url)
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    botapi.fail_next(1, status, description)
    assert outbox.deliver(message.pk) == "failed"
    assert Message.objects.get(pk=message.pk).error == f"{status} {description}"


def test_a_wrong_token_is_refused_and_never_shown(botapi, admin):
    channel = telegram_channel(botapi.url, token="111:wrong-token")
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    assert outbox.deliver(message.pk) == "failed"
    message.refresh_from_db()
    assert message.error == "401 Unauthorized"
    channel = telegram_channel("ftp://files.example.com", token="222:secret-token", name="ftp")
    with pytest.raises(SendRefused) as refusal:
        backend_for(channel).send(message, to="1")
    assert "secret-token" not in str(refusal.value) and "<token>" in str(refusal.value)


def test_no_answer_is_retried(botapi, admin):
    with __import__("socket").socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    channel = telegram_channel(f"http://127.0.0.1:{closed}")
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    assert outbox.deliver(message.pk) == "retry"
    message.refresh_from_db()
    assert message.error.startswith("no answer from the Bot API") and "may have taken it" not in message.error


def test_a_timeout_after_telegram_took_it_is_retried_and_the_error_warns_of_a_repeat(botapi, admin, monkeypatch):
    """The Bot API has no idempotency key (idempotent = False): this is the one way a reply can go twice."""
    monkeypatch.setattr(telegram, "API_TIMEOUT", 0.5)
    channel = telegram_channel(botapi.url)
    assert TelegramBackend.idempotent is False
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    botapi.stall_next(1.5)
    assert outbox.deliver(message.pk) == "retry"
    message.refresh_from_db()
    assert "Telegram may have taken it, so a retry can repeat it" in message.error
    assert outbox.deliver(message.pk, now=timezone.now() + timedelta(hours=1)) == "sent"
    assert wait_for(lambda: len(botapi.sent()) >= 2, timeout=10)  # the stalled call went through too
    assert len(botapi.sent()) == 2


@pytest.mark.parametrize("api_base", ["http://10.0.0.1", "http://169.254.169.254", "https://192.168.1.10:8443", "http://[::1]:8081",
                                      "http://0.0.0.0"])
def test_a_private_bot_api_address_is_refused_without_a_request(admin, api_base, monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr("crm.outbound.socket.create_connection", no_connection)
    channel = telegram_channel(api_base)
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Ответ")
    with pytest.raises(SendRefused):
        backend_for(channel).send(message, to="5550001")
    assert outbox.deliver(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == "failed" and "the Bot API address is refused" in message.error
    assert FakeBotApi().token not in message.error


def test_attachments_go_as_documents_with_the_text_as_the_first_caption(botapi, admin, media):
    channel = telegram_channel(botapi.url)
    files = [SimpleUploadedFile('договор "№1".pdf', PDF), SimpleUploadedFile("price.png", PNG)]
    message = outbox.reply(actor=admin, conversation=conversation_with(channel, "5550001"), text="Договор и прайс во вложении", files=files)

    assert outbox.deliver(message.pk) == "sent"
    assert botapi.calls("sendMessage") == []
    first, second = botapi.calls("sendDocument")
    assert first["fields"] == {"chat_id": "5550001", "caption": "Договор и прайс во вложении"}
    assert (first["files"]["document"]["filename"], first["files"]["document"]["content"]) == ("договор %22№1%22.pdf", PDF)
    assert first["files"]["document"]["content_type"] == "application/pdf"
    assert second["fields"] == {"chat_id": "5550001"} and second["files"]["document"]["content"] == PNG
    assert Message.objects.get(pk=message.pk).external_id == "5550001:1"


def test_a_text_longer_than_a_caption_goes_first_as_a_message(botapi, admin, media):
    channel = telegram_channel(botapi.url)
    text = "Очень длинное письмо. " * 60
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text=text, files=[SimpleUploadedFile("a.png", PNG)])
    assert outbox.deliver(message.pk) == "sent"
    assert [r["method"] for r in botapi.requests] == ["sendMessage", "sendDocument"]
    assert botapi.calls("sendMessage")[0]["json"]["text"] == text.strip()
    assert "caption" not in botapi.calls("sendDocument")[0]["fields"]


def test_a_later_part_that_keeps_failing_fails_the_reply_rather_than_repeat_the_first(botapi, admin, media, monkeypatch):
    monkeypatch.setattr(telegram.time, "sleep", lambda seconds: None)
    channel = telegram_channel(botapi.url)
    files = [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("b.pdf", PDF)]
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Два файла", files=files)
    botapi.fail_next(2, 502, method="sendDocument", skip=1)

    assert outbox.deliver(message.pk) == "failed"
    message.refresh_from_db()
    assert message.error.startswith("1 of 2 parts sent; the rest failed: 502 Bad Gateway")
    assert [c["status"] for c in botapi.calls("sendDocument")] == [200, 502, 502]


def test_a_later_part_waits_out_a_short_429(botapi, admin, media, monkeypatch):
    waited = []
    monkeypatch.setattr(telegram.time, "sleep", waited.append)
    channel = telegram_channel(botapi.url)
    files = [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("b.pdf", PDF)]
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Два файла", files=files)
    botapi.fail_next(1, 429, retry_after=30, method="sendDocument", skip=1)

    assert outbox.deliver(message.pk) == "sent"
    assert waited == [5.0]  # at most 5 s in the worker
    assert [c["status"] for c in botapi.calls("sendDocument")] == [200, 429, 200]


def test_multipart_bodies_are_what_a_form_parser_reads():
    body, content_type = multipart({"chat_id": "-100", "caption": "строка 1\r\nстрока 2"},
                                   {"document": ('a"b\r\n.txt', b"--not-a-boundary\r\n\x00\xff", "text/plain")})
    fields, files = parse_multipart(body, content_type)
    assert fields == {"chat_id": "-100", "caption": "строка 1\r\nстрока 2"}
    assert files["document"] == {"filename": "a%22b%0D%0A.txt", "content_type": "text/plain", "content": b"--not-a-boundary\r\n\x00\xff"}


# The webhook --------------------------------------------------------------------------------


def test_register_webhook_sends_the_url_and_the_secret(botapi):
    channel = telegram_channel(botapi.url)
    url = "https://crm.example.com" + hook_path(channel)
    assert register_webhook(channel, url) == (True, "Webhook was set")
    assert botapi.webhook == {"url": url, "secret_token": SECRET, "allowed_updates": ["message"], "drop_pending_updates": False}
    [call] = botapi.calls("setWebhook")
    assert call["token"] == botapi.token

    botapi.fail_next(1, 400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
    assert register_webhook(channel, "http://crm.example.com/") == (False, "400 Bad Request: bad webhook: An HTTPS URL must be provided for webhook")


def test_register_webhook_makes_a_secret_when_there_is_none(client, botapi):
    channel = Channel(kind=Channel.Kind.TELEGRAM, name="Bot", settings={"api_base": botapi.url})
    secrets.write(channel, {"bot_token": botapi.token})
    channel.save()
    assert register_webhook(channel, "https://crm.example.com/hooks/")[0]
    made = secrets.read(Channel.objects.get(pk=channel.pk))["webhook_secret"]
    assert len(made) >= 32 and botapi.webhook["secret_token"] == made
    assert post_update(client, channel, message_update(1), secret=made).status_code == 200

    nobody = telegram_channel("http://10.0.0.1", name="private")
    ok, said = register_webhook(nobody, "https://crm.example.com/hooks/")
    assert not ok and "refused" in said
    no_token = Channel.objects.create(kind=Channel.Kind.TELEGRAM, name="No token", settings={"api_base": botapi.url})
    assert register_webhook(no_token, "https://crm.example.com/hooks/") == (False, "the channel has no bot token")


def test_the_default_api_base_is_the_setting(settings):
    settings.TELEGRAM_API_BASE = "https://api.telegram.example/"
    backend = TelegramBackend(Channel(kind="telegram", name="t", settings={}))
    assert backend.api_base() == "https://api.telegram.example"
    assert SendError in SendRefused.__mro__


def test_an_attachment_missing_from_storage_fails_the_reply_before_anything_leaves(botapi, admin, media):
    channel = telegram_channel(botapi.url)
    message = outbox.reply(actor=admin, conversation=conversation_with(channel), text="Файл", files=[SimpleUploadedFile("a.png", PNG)])
    attachment = Attachment.objects.get(message=message)
    attachment.file.delete(save=False)
    assert outbox.deliver(message.pk) == "failed"
    assert "a.png cannot be read" in Message.objects.get(pk=message.pk).error
    assert botapi.requests == []
