"""The SMS channel (issue 15, point 2): replies and delivery receipts come from the gateway signed
per Standard Webhooks (checked by the webhook channel's code), replies go out to a gateway of our
own on 127.0.0.1 that honours Idempotency-Key, so a send repeated after a worker's death is one SMS."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import Client
from deals.models import Deal
from messenger import outbox, secrets
from messenger.attachments import store as store_attachment
from messenger.models import Channel, Conversation, Inbound, Message
from tests.conftest import wait_for
from tests.factories import ClientFactory, DealFactory
from tests.messenger.test_webhook_channel import (
    OTHER_SECRET,
    SECRET,
    Recorder,
    conversation_with,
    deliver_signed,
    process_all,
    queued_reply,
    record_jobs,
)

TOKEN = "gw-token-7f3a"


@pytest.fixture
def gateway():
    with Recorder(key_header="idempotency-key", prefix="sms") as server:
        yield server


@pytest.fixture
def sms(db, gateway):
    channel = Channel(kind=Channel.Kind.SMS, name="SMS +7 495 000-00-00", settings={"gateway_url": gateway.url})
    secrets.write(channel, {"gateway_token": TOKEN, "signing_secret": SECRET})
    channel.save()
    return channel


@pytest.fixture
def queued(monkeypatch):
    return record_jobs(monkeypatch)


def an_sms(msg_id: str, sender: str, text: str = "Да, завтра удобно") -> dict:
    return {"type": "message", "id": msg_id, "from": sender, "text": text}


def test_a_reply_from_a_known_clients_number_in_any_format_attaches_to_that_client(live_server, sms, queued):
    known = ClientFactory(name="Ольга Смирнова", phone="+79161234567")
    deal = DealFactory(client=known)
    assert deliver_signed(live_server, sms, an_sms("gw-in-1", "8 916 123-45-67"), "evt-1")[0] == 200
    assert deliver_signed(live_server, sms, an_sms("gw-in-2", "+7 (916) 123-45-67", "И ещё вопрос"), "evt-2")[0] == 200
    assert process_all(sms) == ["done", "done"]
    conversation = Conversation.objects.get()
    assert (conversation.client, conversation.external_chat_id) == (known, "+79161234567")
    assert list(conversation.messages.order_by("pk").values_list("text", flat=True)) == ["Да, завтра удобно", "И ещё вопрос"]
    assert Client.objects.count() == 1 and list(Deal.objects.filter(client=known)) == [deal]  # no new client, no new deal


def test_an_unknown_number_and_an_alphanumeric_sender(live_server, sms, gateway, queued):
    assert deliver_signed(live_server, sms, an_sms("gw-in-1", "8 (903) 555-12-34", "Перезвоните"), "evt-1")[0] == 200
    assert deliver_signed(live_server, sms, an_sms("gw-in-2", "MTS-Info", "Баланс"), "evt-2")[0] == 200
    process_all(sms)
    new = Client.objects.get(phone="+79035551234")
    assert new.channel == "phone" and Conversation.objects.get(client=new).external_chat_id == "+79035551234"
    alphanumeric = Conversation.objects.get(external_chat_id="MTS-Info")
    assert alphanumeric.client.phone == ""
    answer = queued_reply(alphanumeric, "Спасибо")
    assert outbox.deliver(answer.pk) == "failed" and gateway.requests == []  # no number to text back


def test_the_gateways_webhooks_are_verified_like_the_bridges(live_server, sms, queued):
    assert deliver_signed(live_server, sms, an_sms("gw-in-1", "+79161234567"), "evt-1", secret=OTHER_SECRET)[0] == 401
    assert deliver_signed(live_server, sms, {"type": "message", "id": "gw-in-1", "text": "no sender"}, "evt-2")[0] == 400
    assert deliver_signed(live_server, sms, {"type": "status", "status": "delivered"}, "evt-3")[0] == 400
    assert not Inbound.objects.exists()


def test_delivery_receipts(live_server, sms, gateway, queued):
    first, second = (queued_reply(conversation_with(sms, chat_id=number)) for number in ("+79161234567", "+79035551234"))
    assert outbox.deliver(first.pk) == outbox.deliver(second.pk) == "sent"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.external_id, second.external_id) == ("sms-1", "sms-2")  # the gateway's ids
    assert deliver_signed(live_server, sms, {"type": "status", "id": "sms-1", "status": "delivered"}, "evt-1")[0] == 200
    assert deliver_signed(live_server, sms, {"type": "status", "id": "sms-2", "status": "undelivered", "error": "абонент недоступен"},
                          "evt-2")[0] == 200
    process_all(sms)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "delivered"
    assert (second.status, second.error) == ("failed", "абонент недоступен")


def test_a_reply_goes_to_the_gateway_with_the_token_and_the_idempotency_key(sms, gateway):
    message = queued_reply(conversation_with(sms, chat_id="+79161234567"), "Ваш заказ готов")
    assert outbox.deliver(message.pk) == "sent"
    [request] = gateway.requests
    assert request["body"] == {"to": "+79161234567", "text": "Ваш заказ готов"}
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["idempotency-key"] == str(message.key)
    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "sms-1")


def test_an_sms_to_an_office_number_goes_to_the_number_without_its_extension(sms, gateway):
    message = queued_reply(conversation_with(sms, chat_id="+74951234567;ext=12"), "Перезвоните")
    assert outbox.deliver(message.pk) == "sent"
    assert [r["body"]["to"] for r in gateway.requests] == ["+74951234567"]


@pytest.mark.parametrize(("status", "outcome"), [(400, "failed"), (422, "failed"), (429, "retry"), (503, "retry")])
def test_the_gateways_answers(sms, gateway, status, outcome):
    gateway.script[:] = [status]
    message = queued_reply(conversation_with(sms, chat_id="+79161234567"))
    assert outbox.deliver(message.pk) == outcome
    message.refresh_from_db()
    assert message.error == f"{status} {'no such chat' if status < 500 else 'busy, try later'}"


def test_an_sms_carries_no_file(sms, gateway):
    message = queued_reply(conversation_with(sms, chat_id="+79161234567"), "См. файл")
    store_attachment(message, "a.pdf", b"%PDF-1.4")
    assert outbox.deliver(message.pk) == "failed" and gateway.requests == []


# The worker path ---------------------------------------------------------------------------------


def test_a_reply_and_an_answer_through_a_real_worker(live_server, sms, gateway, admin, celery_worker):
    log = celery_worker["process"].log_path
    known = ClientFactory(phone="+79161234567")
    assert deliver_signed(live_server, sms, an_sms("gw-in-1", "89161234567"), "evt-1")[0] == 200
    assert wait_for(lambda: Message.objects.filter(direction="in").exists(), timeout=30), open(log).read()
    conversation = Conversation.objects.select_related("channel").get()
    assert conversation.client == known
    reply = outbox.reply(actor=admin, conversation=conversation, text="Ждём вас в 10:00")
    assert wait_for(lambda: Message.objects.get(pk=reply.pk).status == "sent", timeout=30), open(log).read()
    assert [(r["body"]["to"], r["headers"]["idempotency-key"]) for r in gateway.requests] == [("+79161234567", str(reply.key))]


def test_a_worker_killed_while_sending_costs_no_second_sms(sms, gateway, admin, celery_worker):
    """The worker is killed (SIGKILL) while the gateway holds its answer: the gateway has taken the
    SMS, the message stays claimed (sending). Once the claim is stale the outbox sends it again
    with the same Idempotency-Key, and the gateway records one SMS."""
    gateway.hold = threading.Event()
    worker = celery_worker["process"]
    conversation = conversation_with(sms, chat_id="+79161234567")
    reply = outbox.reply(actor=admin, conversation=conversation, text="Код: 4711")
    assert wait_for(lambda: len(gateway.requests) == 1, timeout=30), open(worker.log_path).read()
    worker.kill()
    worker.wait(10)
    gateway.hold.set()
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("sending", 1)  # as the dead worker left it
    assert outbox.due() == []  # a claim younger than JOB_STALE_SECONDS is left alone
    assert outbox.due(now=timezone.now() + timedelta(minutes=2)) == [reply.pk]
    assert outbox.deliver(reply.pk) == "sent"
    assert [r["headers"]["idempotency-key"] for r in gateway.requests] == [str(reply.key)] * 2
    assert len(gateway.accepted) == 1  # one SMS
    reply.refresh_from_db()
    assert (reply.status, reply.external_id, reply.attempts) == ("sent", "sms-1", 2)
