"""The signed webhook channel for any other bridge (WhatsApp, VK, a site chat): JSON both ways,
signed per Standard Webhooks (the `standardwebhooks` package) with the channel's secret.

    secrets  {"signing_secret": "whsec_…"}            (messenger.secrets; the same secret both ways)
    settings {"outbound_url": "https://bridge.example/voronka"}

Every request, either way, carries three headers: `webhook-id` (the message's id: a resend of it
carries the same one), `webhook-timestamp` (Unix seconds) and `webhook-signature`
("v1,<base64 HMAC-SHA256 of `{id}.{timestamp}.{raw body}`>", several separated by spaces while a
secret rotates). The receiver checks the signature in constant time and refuses a timestamp more
than 5 minutes off its clock.

In: the bridge POSTs to the channel's URL, /hooks/webhook/<token>/, one of

    {"type": "message", "id": "<the bridge's message id>", "chat_id": "<the conversation on the bridge>",
     "from": {"name": "…", "phone": "…", "email": "…", "username": "…"},
     "text": "…", "attachments": [{"name": "a.pdf", "content_type": "application/pdf", "data": "<base64>"}],
     "sent_at": "2026-12-01T10:00:00+03:00"}
    {"type": "status", "message_id": "<our message's id: the one the bridge answered, or the one we sent>",
     "status": "delivered" | "read" | "failed", "error": "…"}

"id", "chat_id" (message) and "message_id", "status" (status) are required; the rest may be left
out. The answer is 200 {"ok": true, "duplicate": false} once the delivery is stored (true for a
webhook-id already stored: the bridge may stop resending); 401 when the signature, the headers or
the timestamp do not verify; 400 when the body is not such a JSON object; 404 for an unknown or
inactive channel; 413 above 2 MB. A message's "id" is unique per channel: the same message
delivered under two webhook-ids is still one message. The sender's phone may be written in any
form ("8 (916) 123-45-67"): it is matched in E.164.

Out: a reply is POSTed to `outbound_url`, signed the same way, with webhook-id = the message's key
(a resend after a crash carries the same webhook-id and "id", so the bridge drops the copy):

    {"type": "message", "id": "<the message's key>", "chat_id": "<chat_id as the bridge gave it>", "text": "…",
     "attachments": [{"name": "…", "content_type": "…", "data": "<base64>"}]}

The bridge answers 2xx, optionally with {"id": "<its id for the message>"}: statuses may then name
either id. A 4xx (except 408, 425, 429) fails the message for good with the answer's "error" or
"message"; a 5xx, 408, 425, 429, a timeout or a broken connection is tried again later; a 3xx is
not followed. The URL must resolve to a public address (crm.outbound).
"""

import base64
import binascii
import http.client
import json
import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm import outbound

from ..backends import SendError, SendRefused
from ..backends.sms import RETRYABLE_4XX
from . import Backend, Incoming, IncomingFile, Refused, StatusUpdate

TYPES = ("message", "status")
TIMEOUT = 10.0  # seconds for one outbound request; the send task's soft limit is 60 s
MAX_ID = 200  # Inbound.dedupe_key and Message.external_id


# Shared with the SMS channel (messenger.channels.sms) --------------------------------------------


def verified(request, secret: str) -> tuple[str, str, dict]:
    """(webhook-id, the raw body, the body's JSON object) of a request signed per Standard Webhooks
    with `secret`; Refused (401) when its headers, signature or timestamp do not verify, (400) when
    the body is not a JSON object whose "type" is "message" or "status"."""
    headers = {name: request.headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    missing = [name for name, value in headers.items() if not value]
    if missing:
        raise Refused(f"missing header: {', '.join(missing)}", 401)
    hook = _webhook(secret, Refused("this channel has no usable signing secret: set one in its settings", 401))
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the body is not UTF-8 JSON", 400) from None
    try:
        hook.verify(body, headers, json_parse=False)  # the 5-minute window, then hmac.compare_digest
    except WebhookVerificationError as error:
        raise Refused(f"signature not verified: {error}", 401) from None
    except Exception:  # a malformed header makes the library raise ValueError, binascii.Error…: never a 500
        raise Refused("signature not verified: malformed webhook-signature or webhook-timestamp header", 401) from None
    if len(headers["webhook-id"]) > MAX_ID:
        raise Refused(f"webhook-id is longer than {MAX_ID} characters", 400)
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused("the body is not JSON", 400) from None
    if not isinstance(data, dict) or data.get("type") not in TYPES:
        raise Refused('the body must be a JSON object with "type": "message" or "status"', 400)
    return headers["webhook-id"], body, data


def require(data: dict, *fields: str) -> None:
    """Refused (400) unless each field is a non-empty string or number."""
    for name in fields:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "" or len(str(value)) > MAX_ID:
            raise Refused(f'"{name}" is missing (a non-empty string of at most {MAX_ID} characters)', 400)


def sign(secret: str, msg_id: str, body: str) -> dict:
    """The three Standard Webhooks headers of an outbound body."""
    hook = _webhook(secret, SendRefused("this channel has no usable signing secret"))
    now = datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": hook.sign(msg_id, now, body)}


def post(url: str, body: bytes, headers: dict, *, default_id: str) -> str:
    """POST a JSON body to a user-configured URL (crm.outbound: public addresses only, no
    redirects); the id of a 2xx answer's {"id": …}, else `default_id`. SendRefused for a refusal
    that cannot pass (a 4xx but 408, 425, 429; a 3xx; a blocked or unusable URL), SendError for one
    that may (a 5xx, 408, 425, 429, a timeout, a connection failure)."""
    if not url:
        raise SendRefused("the channel has no URL to send to")
    try:
        response = outbound.request("POST", url, body=body, headers={"Content-Type": "application/json", **headers}, timeout=TIMEOUT)
    except outbound.Blocked as error:
        raise SendRefused(str(error)) from error
    except (OSError, http.client.HTTPException) as error:  # timeouts, refused and reset connections, TLS
        raise SendError(str(error) or type(error).__name__) from error
    except ValueError as error:  # a URL http.client cannot use (a bad port, a control character)
        raise SendRefused(f"unusable URL: {error}") from error
    if 200 <= response.status < 300:
        try:  # the bridge took it: a body we cannot read does not make it unsent
            payload = json.loads(response.body or b"{}")
        except ValueError:
            payload = {}
        found = payload.get("id") if isinstance(payload, dict) else None
        return str(found)[:MAX_ID] if found not in (None, "") else default_id
    reply = f"{response.status} {excerpt(response)}".strip()
    if response.status >= 500 or response.status in RETRYABLE_4XX or response.status < 200:
        raise SendError(reply)
    if 300 <= response.status < 400:
        raise SendRefused(f"{reply} (redirects are not followed: set the final URL)")
    raise SendRefused(reply)


def excerpt(response: outbound.Response) -> str:
    """What the other side said about a refusal: its JSON "error"/"message", else the body's start
    (as messenger.backends.sms does for the mass send's gateway)."""
    raw = response.body[:2000]
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200]
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or "")[:200]
    return ""


def _webhook(secret: str, refusal: Exception) -> Webhook:
    try:
        return Webhook(secret)
    except Exception:  # empty, or not base64 after "whsec_"
        raise refusal from None


def as_text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


# The channel ---------------------------------------------------------------------------------


class WebhookBackend(Backend):
    idempotent = True  # webhook-id and "id" are the message's key: the bridge drops a resend

    def accept(self, request) -> tuple[str, str]:
        key, body, data = verified(request, self.secrets().get("signing_secret", ""))
        require(data, *(("id", "chat_id") if data["type"] == "message" else ("message_id", "status")))
        return key, body

    def parse(self, payload: str) -> list:
        data = json.loads(payload)
        if data["type"] == "status":
            return [StatusUpdate(external_id=self._sent_id(as_text(data["message_id"])), status=as_text(data["status"]),
                                 error=as_text(data.get("error")))]
        sender = data.get("from") if isinstance(data.get("from"), dict) else {}
        return [Incoming(
            external_id=as_text(data["id"]), chat_id=as_text(data["chat_id"]), text=as_text(data.get("text")),
            name=as_text(sender.get("name")), phone=as_text(sender.get("phone")), email=as_text(sender.get("email")),
            username=as_text(sender.get("username")), files=_files(data.get("attachments")), sent_at=_when(data.get("sent_at")),
        )]

    def send(self, message, *, to: str) -> str:
        key = str(message.key)
        body = json.dumps({"type": "message", "id": key, "chat_id": to, "text": message.text,
                           "attachments": [_file_out(a) for a in message.attachments.all()]}, ensure_ascii=False)
        headers = sign(self.secrets().get("signing_secret", ""), key, body)
        return post((self.channel.settings or {}).get("outbound_url", ""), body.encode(), headers, default_id=key)

    def _sent_id(self, value: str) -> str:
        """A status may name our message by the id the bridge answered (stored as its external id)
        or by the key we sent: the latter is turned into the former. A status for a message not yet
        marked sent (the bridge was faster than our worker's bookkeeping) fails this delivery, which
        is then tried again in 30 s."""
        try:
            key = uuid.UUID(value)
        except ValueError:
            return value
        from ..models import Message

        row = Message.objects.filter(channel=self.channel, direction=Message.Direction.OUT, key=key).values("external_id", "status").first()
        if row is None:
            return value
        if not row["external_id"]:
            raise LookupError(f"a status for message {value}, which is not marked sent yet")
        return row["external_id"]


def _files(value) -> list[IncomingFile]:
    """The attachments; one whose data is not base64 fails the delivery (kept and shown to admins)."""
    files = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            content = base64.b64decode(as_text(item.get("data")), validate=True)
        except binascii.Error as error:
            raise ValueError(f"attachment {as_text(item.get('name'))!r}: its data is not base64 ({error})") from None
        files.append(IncomingFile(name=as_text(item.get("name")) or "file", content=content, content_type=as_text(item.get("content_type"))))
    return files


def _when(value) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _file_out(attachment) -> dict:
    with attachment.file.open("rb") as handle:
        data = handle.read()
    return {"name": attachment.name, "content_type": attachment.content_type, "data": base64.b64encode(data).decode()}
