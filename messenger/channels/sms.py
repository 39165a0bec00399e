"""The SMS channel: a number at an HTTP SMS gateway, for conversations (the mass send has its own
settings-wide gateway, messenger.backends.sms).

    settings {"gateway_url": "https://gateway.example/send"}
    secrets  {"gateway_token": "…", "signing_secret": "whsec_…"}

Out: POST gateway_url {"to": "+79161234567", "text": "…"} with `Authorization: Bearer <gateway_token>`
and `Idempotency-Key: <the message's key>`, so a gateway that honours it sends a resend after a
worker crash once. It answers 2xx, optionally {"id": "<its id for the SMS>"}; a 4xx (except 408,
425, 429) fails the message for good with the answer's "error" or "message"; a 5xx, 408, 425, 429,
a timeout or a broken connection is tried again later. An SMS carries text only.

In: the gateway POSTs replies and delivery receipts to /hooks/sms/<token>/, signed per Standard
Webhooks with signing_secret exactly as the webhook channel's requests are (the same code checks
them: messenger.channels.webhook):

    {"type": "message", "id": "<the gateway's id of the SMS>", "from": "+7 916 123-45-67", "text": "…"}
    {"type": "status", "id": "<the id the gateway answered when we sent>", "status": "delivered" | "failed", "error": "…"}

The sender's number may be written in any form (8 916 …, +7 (916) …): the conversation is the
number in E.164, and so is the phone a client is matched by. "undelivered", "rejected" and
"expired" receipts count as failed.
"""

import json

from django.core.exceptions import ValidationError

from clients.phones import normalize_phone, without_extension

from . import Backend, Incoming, SendRefused, StatusUpdate
from .webhook import as_text, post, require, verified

FAILED = {"undelivered", "rejected", "expired", "failed"}


def e164(raw: str) -> str:
    """The number in E.164, or "" when it is not one (an alphanumeric sender such as "MTS")."""
    try:
        return normalize_phone(raw)
    except ValidationError:
        return ""


class SmsBackend(Backend):
    idempotent = True  # Idempotency-Key: the gateway drops a resend

    def accept(self, request) -> tuple[str, str]:
        key, body, data = verified(request, self.secrets().get("signing_secret", ""))
        require(data, *(("id", "from") if data["type"] == "message" else ("id", "status")))
        return key, body

    def parse(self, payload: str) -> list:
        data = json.loads(payload)
        if data["type"] == "status":
            status = as_text(data["status"]).lower()
            return [StatusUpdate(external_id=as_text(data["id"]), status="failed" if status in FAILED else status,
                                 error=as_text(data.get("error")))]
        sender = as_text(data["from"]).strip()
        phone = e164(sender)
        return [Incoming(external_id=as_text(data["id"]), chat_id=phone or sender, phone=phone, text=as_text(data.get("text")))]

    def send(self, message, *, to: str) -> str:
        to = without_extension(to)  # an office number's extension: the message goes to the number
        if not e164(to):
            raise SendRefused(f"{to} is not a phone number: an SMS cannot be sent to it")
        if message.attachments.exists():
            raise SendRefused("an SMS carries text only: send the file through another channel")
        key = str(message.key)
        secrets = self.secrets()
        body = json.dumps({"to": to, "text": message.text}, ensure_ascii=False).encode()
        headers = {"Authorization": f"Bearer {secrets.get('gateway_token', '')}", "Idempotency-Key": key}
        return post((self.channel.settings or {}).get("gateway_url", ""), body, headers, default_id=key)
