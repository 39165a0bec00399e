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


def start_worker(queue: str, extra_env: dict | None = None):
    """A real Celery worker process on Redis, reading this test's database, on its own queue,
    returned once it answers a ping (it is then consuming). Its node name is `process.node`, for
    asking it what it has done (app.control.inspect(destination=[process.node]))."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    from crm.celery import app

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "CELERY_BROKER_URL": app.conf.broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,  # what the worker itself queues stays on the test's queue
        **(extra_env or {}),
    }
    import tempfile

    log = tempfile.NamedTemporaryFile(prefix=f"worker-{queue}-", suffix=".log", delete=False)  # never a full pipe
    node = f"{queue}@voronka-test"  # the queue is the test's own: so is the name remote control answers to
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool=solo", "-Q", queue, "-n", node, "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=warning"],
        cwd=Path(__file__).resolve().parents[1], env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    process.log_path = log.name
    process.node = node

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the test worker exited ({process.returncode}):\n{Path(log.name).read_text()}")
        return bool(app.control.ping(destination=[node], timeout=0.5))

    if not wait_for(answers, timeout=60, step=0.1):
        stop_worker(process)
        raise RuntimeError(f"the test worker did not answer within 60 s:\n{Path(log.name).read_text()}")
    return process


def stop_worker(process) -> None:
    import subprocess

    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def worker_queue(transactional_db):
    """A queue of this test's own, made the default for what the test process sends."""
    import uuid

    from crm.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    yield queue
    app.conf.task_default_queue = previous


@pytest.fixture
def celery_worker(worker_queue):
    process = start_worker(worker_queue)
    yield {"queue": worker_queue, "process": process}
    stop_worker(process)


@pytest.fixture
def sms_gateway():
    """A small SMS gateway on 127.0.0.1 that records requests and honours Idempotency-Key."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received, seen = [], {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("Idempotency-Key", "")
            if key not in seen:
                seen[key] = f"sms-{len(seen) + 1}"
                received.append({"body": body, "key": key, "auth": self.headers.get("Authorization")})
            payload = json.dumps({"id": seen[key]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    yield server
    server.shutdown()


def wait_for(predicate, timeout=30.0, step=0.2):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
