import os
import re
import signal

import pytest
from django.urls import reverse

from clients.models import Client
from crm.models import Activity
from messenger import services
from messenger.models import Delivery, MassSend
from tests.conftest import HX, start_worker, stop_worker, wait_for
from tests.factories import ClientFactory, DealFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def start(client, channel, ids, **fields):
    confirm = client.post(reverse("messenger:send"), {"channel": channel, "scope": "ids", "ids": ids}, headers=HX)
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', confirm.content.decode()).group(1)
    return client.post(reverse("messenger:send"), {"channel": channel, "scope": "ids", "ids": ids, "digest": digest,
                                                   "confirm": "1", **fields}, headers=HX)


def test_email_to_three_ticked_clients_reaches_smtp_and_the_feeds(admin_client, admin, smtp_mailer, django_capture_on_commit_callbacks):
    clients = [ClientFactory(email=f"c{i}@example.com") for i in range(3)]
    DealFactory(client=clients[0])
    nobody = ClientFactory(email="")
    with django_capture_on_commit_callbacks(execute=False):
        response = start(admin_client, "email", [c.pk for c in clients] + [nobody.pk],
                         subject="Акция", body="Скидка 10% до пятницы", action_type="Рассылка")
    assert "0 of 3" in response.content.decode() and "1 without an address" in response.content.decode()
    send = MassSend.objects.get()
    assert services.mass_send_run(send_id=send.pk) == 3  # what the worker does
    assert sorted(m.rcpt_tos[0] for m in smtp_mailer.messages) == sorted(c.email for c in clients)
    assert "Subject: =?utf-8?" in smtp_mailer.messages[0].content.decode() or "Акция" in smtp_mailer.messages[0].content.decode("utf-8", "replace")
    entries = Activity.objects.filter(kind="message").order_by("client_id")
    assert entries.count() == 3
    assert entries.get(client=clients[0]).field_label == "Not processed"  # the deal's current stage
    assert entries.get(client=clients[1]).field_label == "Potential"  # no deal: the client's status
    assert entries.get(client=clients[1]).old_value == "Рассылка"
    assert MassSend.objects.get().status == "done"
    assert services.mass_send_run(send_id=send.pk) == 0  # again: nothing is sent twice
    assert len(smtp_mailer.messages) == 3


def test_sms_through_the_http_gateway(admin_client, settings, sms_gateway, django_capture_on_commit_callbacks):
    settings.SMS_BACKEND = "messenger.backends.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = sms_gateway.url
    settings.SMS_GATEWAY_TOKEN = "secret-token"
    clients = ClientFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=False):
        start(admin_client, "sms", [c.pk for c in clients], body="Ваш код: 1234")
    services.mass_send_run(send_id=MassSend.objects.get().pk)
    assert sorted(r["body"]["to"] for r in sms_gateway.received) == sorted(c.phone for c in clients)
    assert {r["auth"] for r in sms_gateway.received} == {"Bearer secret-token"}
    # a resumed delivery carries the same idempotency key: the gateway does not send it twice
    Delivery.objects.update(status="pending")
    services.mass_send_run(send_id=MassSend.objects.get().pk)
    assert len(sms_gateway.received) == 2


def test_sending_needs_the_permission(manager_client, manager):
    client = ClientFactory(responsible=manager)
    response = manager_client.post(reverse("messenger:send"), {"channel": "email", "scope": "ids", "ids": [client.pk]}, headers=HX)
    assert response.status_code == 403 and not MassSend.objects.exists()
    assert "Send email" not in manager_client.get(reverse("clients:list")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_resumes_and_every_recipient_gets_exactly_one_email(smtp_server, worker_queue):
    """A real worker sends over SMTP, is killed with SIGKILL mid-send, the send resumes on a new
    worker: the SMTP server's inbox holds one message per recipient, none missing, none doubled."""
    admin = UserFactory(role=role("Admin"))
    clients = Client.objects.bulk_create(Client(name=f"r{i}", email=f"r{i}@example.com") for i in range(12))
    env = {"MAILER_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_server.port), "MASS_SEND_RATE_PER_SECOND": "5"}
    worker = start_worker(worker_queue, env)
    try:
        send = services.mass_send_start(actor=admin, channel="email", clients=Client.objects.filter(pk__in=[c.pk for c in clients]),
                                        digest=None, subject="Kill test", body="Hello")
        assert wait_for(lambda: len(smtp_server.messages) >= 4 and not Delivery.objects.filter(status="sending").exists(),
                        timeout=30, step=0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_worker(worker)
    delivered_before = len(smtp_server.messages)
    assert 4 <= delivered_before < 12  # it really died half way
    # A statement the worker sent just before dying still runs to its end in PostgreSQL: wait for
    # its session to be gone, so the claims the sweep reads are the last the dead worker makes.
    from django.db import connection

    def dead_workers_session_gone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            return cursor.fetchone()[0] == 0

    assert wait_for(dead_workers_session_gone, timeout=10, step=0.02)
    assert services.mass_sends_resume(stale_after=0) == [str(send.pk)]
    worker = start_worker(worker_queue, env)
    try:
        assert wait_for(lambda: MassSend.objects.get(pk=send.pk).status == "done", timeout=30)
    finally:
        stop_worker(worker)
    recipients = sorted(m.rcpt_tos[0] for m in smtp_server.messages)
    assert recipients == sorted(c.email for c in clients)  # each exactly once
    assert Delivery.objects.filter(mass_send=send, status="sent").count() == 12


def test_a_message_the_channel_rejects_fails_alone_and_the_rest_go_out(admin, smtp_mailer):
    good = ClientFactory.create_batch(2)
    bad = ClientFactory(email="bad@example.com")
    send = services.mass_send_start(actor=admin, channel="email", clients=Client.objects.all(), digest=None,
                                    subject="Hi", body="Hello")
    Delivery.objects.filter(mass_send=send, client=bad).update(address="broken\naddress@example.com")
    for _ in range(3):
        services.mass_send_run(send_id=send.pk)
    assert Delivery.objects.get(mass_send=send, client=bad).status == "failed"
    assert sorted(m.rcpt_tos[0] for m in smtp_mailer.messages) == sorted(c.email for c in good)
    assert MassSend.objects.get(pk=send.pk).status == "done"
