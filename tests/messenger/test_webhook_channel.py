"""The signed webhook channel (issue 15, point 2): a bridge of our own on 127.0.0.1 posts signed
messages and statuses to the live server and receives our replies; Standard Webhooks signatures
are made and checked with the `standardwebhooks` package on the bridge's side, so the two ends
agree on the specification, not on our code. The SMS channel's tests import the helpers here."""

import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from clients.models import Client
from crm.models import Activity
from deals.models import Deal, Stage
from messenger import outbox, receive, secrets
from messenger.attachments import store as store_attachment
from messenger.channels import backend_for
from messenger.channels import webhook as webhook_channel
from messenger.models import Channel, Conversation, Inbound, Message
from tests.conftest import wait_for
from tests.factories import ClientFactory

SECRET = "whsec_" + base64.b64encode(b"voronka-test-bridge-secret-32byt").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody-else-s-secret-32-bytes!").decode()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


# Helpers (also used by test_sms_channel.py) ------------------------------------------------------


def signed(body: str, msg_id: str, *, secret: str = SECRET, at: datetime | None = None) -> dict:
    """The Standard Webhooks headers of `body`, signed with the library itself."""
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": Webhook(secret).sign(msg_id, at, body)}


def http_post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST over real HTTP; (status, the JSON answer or {})."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {}


def hook_url(live_server, channel: Channel) -> str:
    return live_server.url + reverse("hooks:hook", kwargs={"kind": channel.kind, "token": channel.token})


def deliver_signed(live_server, channel: Channel, data: dict, msg_id: str, *, secret: str = SECRET) -> tuple[int, dict]:
    body = json.dumps(data, ensure_ascii=False)
    return http_post(hook_url(live_server, channel), body.encode(), signed(body, msg_id, secret=secret))


def process_all(channel: Channel) -> list[str]:
    """What the worker does with each stored delivery (messenger.receive.process, called directly)."""
    return [receive.process(pk) for pk in Inbound.objects.filter(channel=channel).order_by("pk").values_list("pk", flat=True)]


class Recorder(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 standing in for a bridge or an SMS gateway.

    `script`: the statuses of its successive requests (the last one repeats; 200 when empty).
    Every request is kept in `requests` (headers lowercased, the JSON body, whether its Standard
    Webhooks signature verifies with `secret`). A 2xx answers {"id": …}, the same id for the same
    `key_header` (webhook-id, Idempotency-Key), and keeps the message in `accepted` only the first
    time: a receiver that drops a resend. A refusal answers {"error": …}. While `hold` is set (an
    Event), each request waits for it before answering."""

    def __init__(self, *, key_header: str, prefix: str, secret: str | None = None):
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        self.key_header, self.prefix, self.secret = key_header, prefix, secret
        self.script: list[int] = []
        self.requests: list[dict] = []
        self.accepted: list[dict] = []
        self.ids: dict[str, str] = {}
        self.hold: threading.Event | None = None
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/inbound"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        if self.hold is not None:
            self.hold.set()
        self.shutdown()
        self.server_close()


class RecorderHandler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self):
        server = self.server
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified = None
        if server.secret:
            try:
                Webhook(server.secret).verify(raw, headers, json_parse=False)
                verified = True
            except Exception:
                verified = False
        key = headers.get(server.key_header, "")
        with server.lock:
            status = server.script[min(len(server.requests), len(server.script) - 1)] if server.script else 200
            entry = {"headers": headers, "body": json.loads(raw), "verified": verified, "status": status}
            server.requests.append(entry)
            if 200 <= status < 300 and key not in server.ids:
                server.ids[key] = f"{server.prefix}-{len(server.ids) + 1}"
                server.accepted.append(entry)
        if server.hold is not None:
            server.hold.wait(30)
        answer = {"id": server.ids[key]} if 200 <= status < 300 else {"error": "no such chat" if status < 500 else "busy, try later"}
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the sender is gone (a killed worker)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def bridge():
    with Recorder(key_header="webhook-id", prefix="wa", secret=SECRET) as server:
        yield server


@pytest.fixture
def channel(db, bridge):
    channel = Channel(kind=Channel.Kind.WEBHOOK, name="WhatsApp bridge", settings={"outbound_url": bridge.url})
    secrets.write(channel, {"signing_secret": SECRET})
    channel.save()
    return channel


def record_jobs(monkeypatch) -> dict[str, list[int]]:
    """The worker's jobs the ingress and the outbox queue, recorded instead of sent to a broker."""
    from messenger.tasks import message_send

    jobs: dict[str, list[int]] = {"inbound": [], "send": []}
    monkeypatch.setattr("messenger.ingress._queue", lambda pk: jobs["inbound"].append(pk))
    monkeypatch.setattr(message_send, "delay", lambda pk: jobs["send"].append(pk))
    return jobs


@pytest.fixture
def queued(monkeypatch):
    return record_jobs(monkeypatch)


def a_message(msg_id: str = "wa-msg-1", **fields) -> dict:
    return {"type": "message", "id": msg_id, "chat_id": "79161234567@c.us",
            "from": {"name": "Анна Петрова", "phone": "8 (916) 123-45-67", "username": "anna_p"},
            "text": "Здравствуйте! Сколько стоит доставка?", "sent_at": "2026-12-01T10:00:00+03:00", **fields}


def conversation_with(channel: Channel, client=None, chat_id: str = "79161234567@c.us") -> Conversation:
    return Conversation.objects.create(channel=channel, client=client or ClientFactory(), external_chat_id=chat_id)


def queued_reply(conversation: Conversation, text: str = "Доставка бесплатно от 3000 ₽") -> Message:
    """A reply as the inbox stores it (outbox.reply without its on-commit job): queued for the worker."""
    return Message.objects.create(conversation=conversation, channel=conversation.channel, direction=Message.Direction.OUT,
                                  text=text, status=Message.Status.QUEUED)


# In ------------------------------------------------------------------------------------------------


def test_a_signed_message_from_an_unknown_sender_becomes_a_client_a_deal_and_a_conversation(live_server, channel, queued):
    data = a_message(attachments=[{"name": "../screen.png", "content_type": "text/html", "data": base64.b64encode(PNG).decode()}])
    status, answer = deliver_signed(live_server, channel, data, "evt-1")
    assert (status, answer) == (200, {"ok": True, "duplicate": False})
    inbound = Inbound.objects.get()
    assert (inbound.dedupe_key, inbound.state, json.loads(inbound.payload)) == ("evt-1", "new", data)  # stored raw, not parsed
    assert queued["inbound"] == [inbound.pk] and not Message.objects.exists()  # the worker's job

    assert receive.process(inbound.pk) == "done"
    client = Client.objects.get()
    assert (client.name, client.phone, client.source) == ("Анна Петрова", "+79161234567", "WhatsApp bridge")
    conversation = Conversation.objects.get()
    assert (conversation.client, conversation.external_chat_id, conversation.unread) == (client, "79161234567@c.us", 1)
    message = Message.objects.get()
    assert (message.direction, message.external_id, message.text, message.status) == ("in", "wa-msg-1", data["text"], "received")
    attachment = message.attachments.get()
    assert (attachment.name, attachment.content_type, attachment.size) == ("screen.png", "image/png", len(PNG))  # typed by its bytes
    line = receive.channel_line(channel)
    deal = Deal.objects.get(client=client)
    assert deal.stage == Stage.objects.filter(line=line).order_by("position", "pk").first()
    assert Activity.objects.filter(client=client, kind=Activity.Kind.MESSAGE, field="chat_in").count() == 1
    assert Inbound.objects.get().state == "done"


def test_a_replayed_and_concurrent_webhook_id_is_one_inbound_and_one_message(live_server, channel, queued):
    body = json.dumps(a_message(), ensure_ascii=False).encode()
    headers = signed(body.decode(), "evt-same")
    url = hook_url(live_server, channel)
    barrier, answers = threading.Barrier(4), []

    def send():
        barrier.wait()
        answers.append(http_post(url, body, headers))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    answers += [http_post(url, body, headers) for _ in range(3)]  # replayed three times
    assert [status for status, _ in answers] == [200] * 7
    assert sorted(answer["duplicate"] for _, answer in answers) == [False] + [True] * 6
    assert Inbound.objects.count() == 1 and len(queued["inbound"]) == 1  # one job, for the new one only

    # The same bridge message under another webhook-id (a bridge that lost track) is still one message.
    assert deliver_signed(live_server, channel, a_message(), "evt-other")[0] == 200
    assert process_all(channel) == ["done", "done"]
    assert process_all(channel) == ["skipped", "skipped"]
    assert Message.objects.count() == 1 and Client.objects.count() == 1 and Conversation.objects.get().unread == 1


def test_unverified_requests_are_refused_with_401_and_bad_bodies_with_400_and_nothing_is_stored(live_server, channel, queued):
    url = hook_url(live_server, channel)
    body = json.dumps(a_message(), ensure_ascii=False)
    good = signed(body, "evt-1")

    def refused(headers, payload=body):
        return http_post(url, payload.encode() if isinstance(payload, str) else payload, headers)

    status, answer = refused(signed(body, "evt-1", secret=OTHER_SECRET))
    assert (status, answer["ok"]) == (401, False) and "No matching signature" in answer["error"]
    status, answer = refused(signed(body, "evt-1", at=datetime.now(UTC) - timedelta(minutes=6)))
    assert status == 401 and "too old" in answer["error"]
    assert refused(signed(body, "evt-1", at=datetime.now(UTC) + timedelta(minutes=6)))[0] == 401  # too new
    assert refused(good, body.replace("доставка", "ДОСТАВКА"))[0] == 401  # the body changed after signing
    assert refused({**good, "webhook-id": "evt-2"})[0] == 401  # the id is signed too
    for name in good:
        status, answer = refused({k: v for k, v in good.items() if k != name})
        assert status == 401 and name in answer["error"]
    for garbage in ("garbage", "v1", "v1,abc", "v1,!!!", "v1,,", "v2,AAAA", ",", "v1,=" * 3000):
        status, answer = refused({**good, "webhook-signature": garbage})
        assert status == 401, garbage
    for timestamp in ("yesterday", "nan", "inf", "-1", "1e30"):
        assert refused({**good, "webhook-timestamp": timestamp})[0] == 401, timestamp
    assert refused(good, b"\xff\xfe not utf-8")[0] == 400

    for payload in ("not json", "[1, 2]", '{"type": "poke"}', '{"id": "x"}', json.dumps({"type": "message", "chat_id": "c"}),
                    json.dumps({"type": "status", "message_id": "x"})):
        status, answer = refused(signed(payload, "evt-3"), payload)
        assert status == 400 and answer["error"], payload
    assert http_post(url.replace(channel.token, "not-a-channel"), body.encode(), good)[0] == 404
    assert not Inbound.objects.exists() and not Message.objects.exists() and not queued["inbound"]
    assert deliver_signed(live_server, channel, a_message(), "evt-1")[0] == 200  # the same, properly signed


def test_status_updates_mark_a_sent_message_delivered_then_read_and_read_stays(live_server, channel, bridge, queued):
    message = queued_reply(conversation_with(channel))
    assert outbox.deliver(message.pk) == "sent"
    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wa-1")  # the bridge's id for it

    def status(value: str, msg_id: str, message_id: str, error: str = "") -> str:
        assert deliver_signed(live_server, channel, {"type": "status", "message_id": message_id, "status": value, "error": error},
                              msg_id)[0] == 200
        process_all(channel)
        message.refresh_from_db()
        return message.status

    assert status("delivered", "st-1", "wa-1") == "delivered"
    assert status("read", "st-2", str(message.key)) == "read"  # named by the id we sent: the same message
    assert status("delivered", "st-3", "wa-1") == "read"  # late: read never goes back
    assert status("failed", "st-4", "wa-1", "blocked") == "read"
    assert Inbound.objects.filter(state="done").count() == 4


def test_a_status_faster_than_our_bookkeeping_is_tried_again(live_server, channel, queued):
    """The bridge took the message and reported it delivered before our worker marked it sent."""
    message = queued_reply(conversation_with(channel))
    Message.objects.filter(pk=message.pk).update(status="sending", claimed_at=timezone.now(), attempts=1)
    status = {"type": "status", "message_id": str(message.key), "status": "delivered"}
    assert deliver_signed(live_server, channel, status, "st-1")[0] == 200
    assert process_all(channel) == ["failed"]
    inbound = Inbound.objects.get()
    assert "not marked sent" in inbound.error and inbound.next_attempt_at > timezone.now()  # the sweep tries it again
    Message.objects.filter(pk=message.pk).update(status="sent", external_id="wa-7")
    assert process_all(channel) == ["done"]
    assert Message.objects.get(pk=message.pk).status == "delivered"


# Out -----------------------------------------------------------------------------------------------


def test_a_reply_goes_out_signed_with_the_message_key_as_webhook_id(channel, bridge):
    conversation = conversation_with(channel)
    message = queued_reply(conversation, "Вот прайс")
    store_attachment(message, "прайс.pdf", b"%PDF-1.4 price list")
    assert outbox.deliver(message.pk) == "sent"
    [request] = bridge.requests
    assert request["verified"] is True  # checked by standardwebhooks on the bridge's side
    assert request["headers"]["webhook-id"] == str(message.key)
    assert abs(int(request["headers"]["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert request["body"] == {"type": "message", "id": str(message.key), "chat_id": "79161234567@c.us", "text": "Вот прайс",
                               "attachments": [{"name": "прайс.pdf", "content_type": "application/pdf",
                                                "data": base64.b64encode(b"%PDF-1.4 price list").decode()}]}
    message.refresh_from_db()
    assert (message.status, message.external_id, message.attempts) == ("sent", "wa-1", 1)
    assert Activity.objects.filter(client=conversation.client, field="chat_out").count() == 1
    assert backend_for(channel).idempotent


def test_a_500_then_ok_is_retried_once_with_the_same_webhook_id(channel, bridge):
    bridge.script[:] = [500, 200]
    message = queued_reply(conversation_with(channel))
    assert outbox.deliver(message.pk) == "retry"
    message.refresh_from_db()
    assert (message.status, message.error) == ("queued", "500 busy, try later") and message.next_attempt_at > timezone.now()
    assert outbox.deliver(message.pk) == "skipped"  # not due yet
    later = timezone.now() + timedelta(minutes=2)
    assert outbox.due(later) == [message.pk]
    assert outbox.deliver(message.pk, now=later) == "sent"
    assert [r["headers"]["webhook-id"] for r in bridge.requests] == [str(message.key)] * 2  # the bridge can drop a copy
    assert all(r["verified"] for r in bridge.requests) and len(bridge.accepted) == 1
    message.refresh_from_db()
    assert (message.status, message.external_id, message.attempts, message.error) == ("sent", "wa-1", 2, "")


@pytest.mark.parametrize("status", [400, 404, 410, 302])
def test_a_refusal_fails_the_message_without_a_retry(channel, bridge, status):
    bridge.script[:] = [status]
    message = queued_reply(conversation_with(channel))
    assert outbox.deliver(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == "failed" and message.error.startswith(str(status))
    assert status == 302 or "no such chat" in message.error  # the bridge's reason, shown in the chat
    assert outbox.due(timezone.now() + timedelta(hours=2)) == [] and outbox.deliver(message.pk) == "skipped"
    assert len(bridge.requests) == 1
    assert Activity.objects.filter(field="chat_out_failed").count() == 1


@pytest.mark.parametrize("status", [408, 425, 429, 502, 503])
def test_not_now_answers_are_retried(channel, bridge, status):
    bridge.script[:] = [status]
    message = queued_reply(conversation_with(channel))
    assert outbox.deliver(message.pk) == "retry"


def test_a_bridge_that_is_down_or_silent_is_tried_again(channel, bridge, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    Channel.objects.filter(pk=channel.pk).update(settings={"outbound_url": f"http://127.0.0.1:{closed}/x"})
    down = queued_reply(conversation_with(channel))
    assert outbox.deliver(down.pk) == "retry"
    Channel.objects.filter(pk=channel.pk).update(settings={"outbound_url": bridge.url})
    monkeypatch.setattr(webhook_channel, "TIMEOUT", 0.5)
    bridge.hold = threading.Event()  # answers only once released: after our timeout
    silent = queued_reply(conversation_with(channel, chat_id="other"))
    assert outbox.deliver(silent.pk) == "retry"
    assert "timed out" in Message.objects.get(pk=silent.pk).error


def test_a_private_outbound_url_fails_the_message_without_a_request(channel, monkeypatch):
    Channel.objects.filter(pk=channel.pk).update(settings={"outbound_url": "http://192.168.1.10/x"})
    connections = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: connections.append(args))
    message = queued_reply(conversation_with(channel))
    assert outbox.deliver(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == "failed" and "private" in message.error and connections == []


def test_without_a_secret_nothing_goes_out_and_nothing_comes_in(live_server, channel, bridge, queued):
    Channel.objects.filter(pk=channel.pk).update(secrets="")
    message = queued_reply(conversation_with(channel))
    assert outbox.deliver(message.pk) == "failed" and "signing secret" in Message.objects.get(pk=message.pk).error
    status, answer = deliver_signed(live_server, channel, a_message(), "evt-1")
    assert status == 401 and "signing secret" in answer["error"]
    assert bridge.requests == [] and not Inbound.objects.exists()


# The worker path -----------------------------------------------------------------------------------


def test_a_message_and_its_reply_through_a_real_worker(live_server, channel, bridge, admin, celery_worker):
    log = celery_worker["process"].log_path
    assert deliver_signed(live_server, channel, a_message(), "evt-1") == (200, {"ok": True, "duplicate": False})
    assert wait_for(lambda: Message.objects.filter(direction="in").exists(), timeout=30), open(log).read()
    conversation = Conversation.objects.select_related("channel").get()
    assert conversation.client.phone == "+79161234567"
    reply = outbox.reply(actor=admin, conversation=conversation, text="Добрый день! Доставка завтра.")
    assert wait_for(lambda: Message.objects.get(pk=reply.pk).status == "sent", timeout=30), open(log).read()
    [request] = bridge.requests
    assert request["verified"] and request["headers"]["webhook-id"] == str(reply.key)
    assert request["body"]["chat_id"] == "79161234567@c.us" and request["body"]["text"] == "Добрый день! Доставка завтра."
