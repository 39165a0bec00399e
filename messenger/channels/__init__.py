"""The messenger's channels behind one interface, chosen per channel by its kind (like Django's
mail backends; DESIGN §7):

    backend = channels.backend_for(channel)
    key, payload = backend.accept(request)    # an inbound request: verified, its dedupe key (Refused: 4xx)
    items = backend.parse(payload)            # in the worker: Incoming messages and Status updates
    external_id = backend.send(message, to)   # outbound (SendError: later; SendRefused: never)
    backend.poll()                            # channels that fetch (IMAP): store what is new as Inbound

The ingress (messenger.ingress) stores what accept() returns and acknowledges; the worker
(messenger.receive) runs parse() and writes the messages. MESSENGER_BACKENDS maps a kind to its
class; tests and deployments may replace one.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils.module_loading import import_string

from ..backends import SendError, SendRefused

__all__ = ["Backend", "Incoming", "IncomingFile", "Refused", "SendError", "SendRefused", "StatusUpdate", "backend_for"]

DEFAULT_BACKENDS = {
    "telegram": "messenger.channels.telegram.TelegramBackend",
    "email": "messenger.channels.email.EmailBackend",
    "sms": "messenger.channels.sms.SmsBackend",
    "webhook": "messenger.channels.webhook.WebhookBackend",
    "console": "messenger.channels.console.ConsoleBackend",
}


class Refused(Exception):
    """An inbound request the channel does not take: answered with `status` and the reason (never 500)."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class IncomingFile:
    name: str
    content: bytes
    content_type: str = ""  # what the sender said; the stored type is sniffed from the bytes


@dataclass
class Incoming:
    """One message from a client, as a channel's parse() reads it."""

    external_id: str  # unique per channel: a replay of it is the same message
    chat_id: str  # the conversation's address on the channel
    text: str = ""
    name: str = ""  # the sender's name from their profile
    phone: str = ""
    email: str = ""
    username: str = ""
    subject: str = ""
    thread_refs: list[str] = field(default_factory=list)  # e-mail: In-Reply-To and References
    files: list[IncomingFile] = field(default_factory=list)
    sent_at: datetime | None = None


@dataclass
class StatusUpdate:
    """The channel's word about a message we sent: delivered, read, or failed with a reason."""

    external_id: str
    status: str
    error: str = ""


class Backend:
    """The defaults: a channel that receives nothing over HTTP and sends nowhere."""

    # Whether send() carries the message's key so that the channel itself drops a second copy
    # (a resend after a crash is then safe); without it the outbox says so in the message's error.
    idempotent = False

    def __init__(self, channel):
        self.channel = channel

    def accept(self, request) -> tuple[str, str]:
        raise Refused("this channel takes no inbound requests", 404)

    def parse(self, payload: str) -> list:
        return []

    def send(self, message, *, to: str) -> str:
        raise SendRefused("this channel cannot send")

    def poll(self) -> int:
        return 0

    def secrets(self) -> dict:
        from .. import secrets

        return secrets.read(self.channel)


def backend_for(channel) -> Backend:
    path = {**DEFAULT_BACKENDS, **getattr(settings, "MESSENGER_BACKENDS", {})}[channel.kind]
    return import_string(path)(channel)
