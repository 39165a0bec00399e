"""Kill it and see (issue 15, point 3): a worker killed with SIGKILL while it processes an inbound
delivery, or while a reply is on its way, and a new worker after it: the delivery makes one
message, one client and one deal; the reply goes out again with the same key, so a channel that
honours the key (the SMS gateway here) sends it once."""

import json
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import Client
from deals.models import Deal
from messenger import ingress, secrets, sweep
from messenger.models import Channel, Conversation, Inbound, Message
from tests.conftest import start_worker, stop_worker, wait_for
from tests.messenger.fake_botapi import botapi as botapi_fixture  # noqa: F401  (the botapi fixture)
from tests.messenger.fake_botapi import message_update

pytestmark = pytest.mark.django_db(transaction=True)

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def media(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setenv("MEDIA_ROOT", str(settings.MEDIA_ROOT))



def locked(inbound_id: int) -> bool:
    """Whether another connection (the worker) holds a row lock on the deliveries (it is processing one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                       "WHERE c.relname = 'messenger_inbound' AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


def kill(process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def test_a_worker_killed_while_processing_a_delivery_leaves_it_to_the_next(worker_queue, botapi, media):
    channel = Channel.objects.create(kind=Channel.Kind.TELEGRAM, name="Bot", settings={"api_base": botapi.url})
    secrets.write(channel, {"bot_token": botapi.token, "webhook_secret": "s"})
    channel.save()
    photo = botapi.add_file(PNG, "photos/file_1.png")
    botapi.stall_next(30, method="getFile")  # the worker waits inside the delivery's transaction
    update = message_update(77, chat_id=9090, text=None, caption="фото заказа",
                            photo=[{"file_id": photo, "file_unique_id": "u", "file_size": len(PNG), "width": 1, "height": 1}])
    first = start_worker(worker_queue)  # (a solo worker busy with a task answers no ping: start it first)
    inbound_id = ingress.store(channel, "77", json.dumps(update))  # the request's half: stored, queued on commit
    assert inbound_id is not None
    try:
        # killed inside the stalled getFile (the stall spent on it), not before it: the next worker's
        # getFile must not meet the stall that was meant for this one
        assert wait_for(lambda: locked(inbound_id) and botapi.calls("getFile"), timeout=30, step=0.05)
        kill(first)
    finally:
        stop_worker(first)
    assert Inbound.objects.get().state == Inbound.State.NEW and not Message.objects.exists()
    # the beat's sweep, once the delivery has waited long enough, gives it to the next worker
    Inbound.objects.update(received_at=timezone.now() - timedelta(seconds=sweep.WAITING_SECONDS + 1))
    second = start_worker(worker_queue)
    try:
        assert sweep.sweep()["inbound"] == 1
        assert wait_for(lambda: Inbound.objects.get().state == Inbound.State.DONE, timeout=60)
    finally:
        stop_worker(second)
    assert Message.objects.count() == 1 and Client.objects.count() == 1 and Deal.objects.count() == 1
    assert Message.objects.get().attachments.get().content_type == "image/png"
    assert Conversation.objects.get().unread == 1
