import pytest

from .factories import TeamFactory, UserFactory, role


@pytest.fixture
def team(db):
    return TeamFactory()


@pytest.fixture
def admin(db, team):
    return UserFactory(username="boss", role=role("Admin"), team=team)


@pytest.fixture
def manager(db, team):
    return UserFactory(username="mary", role=role("Manager"), team=team)


@pytest.fixture
def other_manager(db):
    return UserFactory(username="otto", role=role("Manager"))


@pytest.fixture
def nobody(db):
    """A signed-in user with no role: no permissions at all."""
    return UserFactory(username="nobody", role=None)


# admin_client and manager_client are the same test client signed in as someone: use one per test.
@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


HX = {"HX-Request": "true"}


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port on the loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_mailer(settings, smtp_server):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 5}}}
    return smtp_server


@pytest.fixture
def celery_worker(transactional_db, settings):
    """A real Celery worker process on Redis, reading this test's database, on a queue of its own."""
    import os
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    from django.db import connection

    from crm.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "CELERY_BROKER_URL": app.conf.broker_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool=solo", "-Q", queue, "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=warning"],
        cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    yield {"queue": queue, "process": process}
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(predicate, timeout=30.0, step=0.2):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
