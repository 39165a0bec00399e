import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def scripted_gateway(settings):
    """An SMS gateway on 127.0.0.1 that answers each number as scripted: `gateway.script[number]`
    is a list of HTTP statuses for its successive requests (the last repeats; 200 when unscripted).
    A 200 honours Idempotency-Key; every request is kept in `requests`, the accepted in `accepted`."""
    requests, accepted, seen = [], [], {}
    script: dict[str, list[int]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                turn = sum(1 for r in requests if r["body"]["to"] == body["to"])
                plan = script.get(body["to"]) or [200]
                status = plan[min(turn, len(plan) - 1)]
                requests.append({"body": body, "key": key, "status": status})
                if status == 200 and key not in seen:
                    seen[key] = f"sms-{len(seen) + 1}"
                    accepted.append({"body": body, "key": key})
            payload = json.dumps({"id": seen[key]} if status == 200 else {"error": "invalid number" if status < 500 else "busy"})
            data = payload.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.requests, server.accepted, server.script = requests, accepted, script
    settings.SMS_BACKEND = "messenger.backends.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_address[1]}/send"
    settings.SMS_GATEWAY_TOKEN = "secret-token"
    settings.SMS_GATEWAY_TIMEOUT = 5
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def picky_smtp(settings):
    """A real SMTP server (aiosmtpd) that refuses some recipients at RCPT: refused@… for good
    (550), busy@… for now (451). Keeps what it accepts in `messages`."""
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("refused@"):
                return "550 5.1.1 No such mailbox here"
            if address.startswith("busy@"):
                return "451 4.3.2 Try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5}}}
    yield inbox
    controller.stop()
