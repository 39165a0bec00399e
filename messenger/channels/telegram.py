"""A Telegram bot (DESIGN §7): updates come to our webhook, replies go to the Bot API.

- Inbound: Telegram POSTs each update as JSON with the secret we gave setWebhook in the
  X-Telegram-Bot-Api-Secret-Token header; update_id is the dedupe key (Telegram resends an update
  until it gets a 2xx). Only new messages are read: an edit, a channel post, a callback are kept
  as deliveries and make no message.
- A message gives the sender's name and username from their profile, its text or caption, and a
  phone when they share their own contact (someone else's contact is only shown in the text).
- Files (document, photo's largest size, voice, audio, video, video note) are fetched by the worker
  in parse(): getFile, then GET {api_base}/file/bot<token>/<file_path>. One too large for MESSENGER_MAX_ATTACHMENT_BYTES is
  not downloaded; the message says so instead. A Bot API that is down fails the delivery, which is
  retried later; a file Telegram will not give (expired, refused) becomes a note in the text.
- Outbound: sendMessage, or sendDocument per attachment (multipart/form-data, the text as the first
  caption), through crm.outbound (the Bot API base is configurable, so private addresses are
  refused). 400/401/403/404 are refusals (failed at once), 429 and 5xx pass (retried by the outbox).
  The Bot API has no idempotency key: a timeout after Telegram took the message and the retry that
  follows can repeat it, and the error says so. A reply in several parts is never half-resent: once
  a part has gone, a later part's failure fails the reply with what was sent.

Settings: channel.settings["api_base"] (default TELEGRAM_API_BASE). Secrets: bot_token, webhook_secret.
"""

import hmac
import http.client
import json
import logging
import re
import secrets as tokens
import time
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError

from crm import outbound

from .. import attachments
from . import Backend, Incoming, IncomingFile, Refused, SendError, SendRefused

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
API_TIMEOUT = 15.0  # seconds for one Bot API call
FILE_TIMEOUT = 60.0  # seconds for one file download (up to 20 MB)
CAPTION_MAX = 1024  # Telegram's limit for a caption; a longer text goes as its own message first
REFUSED_STATUSES = {400, 401, 403, 404, 409, 413, 414}  # "never": the chat, the token or the request is wrong
PART_RETRY_WAIT_MAX = 5.0  # seconds a later part of a multi-part reply may wait for a 429's retry_after
FILE_KINDS = ("document", "photo", "voice", "audio", "video", "video_note")
DEFAULT_NAMES = {"photo": "photo.jpg", "voice": "voice.ogg", "audio": "audio.mp3", "video": "video.mp4", "video_note": "video.mp4",
                 "document": "file"}


class ApiError(Exception):
    """A Bot API call that did not succeed: `status` is the HTTP status (0: no answer), `retry` whether it may pass."""

    def __init__(self, description: str, *, status: int = 0, retry: bool = True, retry_after: int | None = None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.retry = retry
        self.retry_after = retry_after


class TelegramBackend(Backend):
    idempotent = False  # the Bot API takes no idempotency key

    # Inbound ---------------------------------------------------------------------------------

    def accept(self, request) -> tuple[str, str]:
        expected = str(self.secrets().get("webhook_secret") or "")
        given = request.headers.get(SECRET_HEADER, "")
        # compare_digest on bytes: a str argument with non-ASCII characters would raise TypeError.
        if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Refused("wrong or missing secret token", 401)
        try:
            body = request.body.decode("utf-8")
            update = json.loads(body)
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise Refused("the body is not JSON", 400) from None
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise Refused("the update has no integer update_id", 400)
        return str(update_id), body

    def parse(self, payload: str) -> list:
        update = json.loads(payload)
        message = update.get("message") if isinstance(update, dict) else None
        # edited_message, channel_post, callback_query, my_chat_member…: stored, but not a new message
        if not isinstance(message, dict) or not isinstance(message.get("chat"), dict) or message["chat"].get("id") is None:
            return []
        if not isinstance(message.get("message_id"), int):
            return []
        chat_id = str(message["chat"]["id"])
        sender = _dict(message.get("from"))
        name = " ".join(str(sender.get(part) or "") for part in ("first_name", "last_name")).strip()
        item = Incoming(
            external_id=f"{chat_id}:{message.get('message_id')}", chat_id=chat_id, name=name,
            username=str(sender.get("username") or ""), text=str(message.get("text") or message.get("caption") or ""),
            sent_at=_timestamp(message.get("date")),
        )
        contact = message.get("contact")
        if isinstance(contact, dict) and contact.get("phone_number"):
            phone = str(contact["phone_number"])
            # A user's own number (the "share my phone" button) says who they are; someone else's
            # contact is only shown in the chat, or it could tie the sender to another client.
            if contact.get("user_id") is not None and contact.get("user_id") == sender.get("id"):
                item.phone = phone
            contact_name = " ".join(str(contact.get(p) or "") for p in ("first_name", "last_name")).strip()
            item.text = (item.text + "\n" + (f"📞 {contact_name}, {phone}" if contact_name else f"📞 {phone}")).strip()
        for kind in FILE_KINDS:
            if message.get(kind):
                self._attach(item, kind, message[kind])
        if isinstance(message.get("sticker"), dict) and not item.text:
            item.text = f"[sticker {message['sticker'].get('emoji') or ''}]".replace(" ]", "]")
        location = message.get("location")
        if isinstance(location, dict) and "latitude" in location and "longitude" in location:
            item.text = _note(item.text, "location", f"{location['latitude']}, {location['longitude']}")
        return [item]

    def _attach(self, item: Incoming, kind: str, media) -> None:
        """Fetch the file into item.files, or say in the text why it is not there."""
        if kind == "photo":  # the sizes Telegram made of one photo: the largest is the original
            sizes = [s for s in media if isinstance(s, dict) and s.get("file_id")] if isinstance(media, list) else []
            if not sizes:
                return
            media = max(sizes, key=lambda s: (s.get("file_size") or 0, (s.get("width") or 0) * (s.get("height") or 0)))
        if not isinstance(media, dict) or not media.get("file_id"):
            return
        name = attachments.clean_name(str(media.get("file_name") or DEFAULT_NAMES[kind]))
        try:
            attachments.check_size(int(media.get("file_size") or 0))
            found = self.call("getFile", {"file_id": media["file_id"]})
            path = str(found.get("file_path") or "") if isinstance(found, dict) else ""
            if not path:
                raise ApiError("Telegram gave no file path", retry=False)
            if not media.get("file_name"):
                name = attachments.clean_name(path.rsplit("/", 1)[-1])
            attachments.check_size(int(found.get("file_size") or 0))
            content = self.download(path)
            expected = found.get("file_size") or media.get("file_size")
            if isinstance(expected, int) and expected and len(content) != expected:
                raise ApiError(f"received {len(content)} of {expected} bytes", retry=False)
            attachments.check_size(len(content))
        except ValidationError as refusal:  # too large: not downloaded
            item.text = _note(item.text, name, " ".join(refusal.messages))
            return
        except ApiError as error:
            if error.retry:  # the Bot API is down or busy: the delivery is processed again later
                raise
            log.warning("telegram channel %s: file %s not received: %s", self.channel.pk, name, error.description)
            item.text = _note(item.text, name, f"not received: {error.description}")
            return
        item.files.append(IncomingFile(name=name, content=content, content_type=str(media.get("mime_type") or "")))

    # Outbound --------------------------------------------------------------------------------

    def send(self, message, *, to: str) -> str:
        files = []  # read before anything leaves: a file missing from storage must not cut a reply in half
        for attachment in message.attachments.all():
            try:
                with attachment.file.open("rb") as handle:
                    files.append((attachment.name, handle.read(), attachment.content_type))
            except OSError as error:
                raise SendRefused(f"the attached file {attachment.name} cannot be read ({type(error).__name__})") from error
        text = message.text or ""
        chat = _chat_id(to)
        separate = bool(text) and (not files or len(text) > CAPTION_MAX)  # the text as a message of its own
        sent: list[int] = []  # the Bot API message ids of the parts already sent
        try:
            if separate:
                sent.append(self._message_id(self.call("sendMessage", {"chat_id": chat, "text": text})))
            for index, (name, content, content_type) in enumerate(files):
                fields = {"chat_id": str(chat)}
                if index == 0 and text and not separate:
                    fields["caption"] = text
                body, form_type = multipart(fields, {"document": (name, content, content_type)})
                sent.append(self._message_id(self._part("sendDocument", body, form_type, first=not sent)))
        except ApiError as error:
            if sent:  # a part has gone: resending the whole message would repeat it
                raise SendRefused(f"{len(sent)} of {len(files) + separate} parts sent; the rest failed: {error.description}. "
                                  "Retry sends every part again.") from error
            raise _send_error(error) from error
        if not sent:
            raise SendRefused("nothing to send")
        return f"{to}:{sent[0]}"

    def _part(self, method: str, body: bytes, content_type: str, *, first: bool):
        """One multipart call. A later part of a reply cannot be left to the outbox's retry (the
        parts before it would go again): a failure that may pass is tried once more after a short
        wait (a 429's retry_after, at most 5 s)."""
        try:
            return self.call(method, body=body, content_type=content_type)
        except ApiError as error:
            if first or not error.retry:
                raise
            time.sleep(min(float(error.retry_after or 1), PART_RETRY_WAIT_MAX))
            return self.call(method, body=body, content_type=content_type)

    @staticmethod
    def _message_id(result) -> int:
        if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
            raise ApiError("the Bot API answered without a message_id", status=200, retry=False)
        return result["message_id"]

    # Webhook ---------------------------------------------------------------------------------

    @classmethod
    def register_webhook(cls, channel, url: str) -> tuple[bool, str]:
        """Point the bot's updates at `url` (our /hooks/telegram/<token>/) with the channel's
        webhook secret, made and saved first when the channel has none: (ok, Telegram's word)."""
        from .. import secrets

        if not secrets.read(channel).get("webhook_secret"):
            # 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule): token_urlsafe gives those.
            secrets.write(channel, {"webhook_secret": tokens.token_urlsafe(32)})
            channel.save(update_fields=["secrets"])
        backend = cls(channel)
        payload = {"url": url, "secret_token": backend.secrets()["webhook_secret"], "allowed_updates": ["message"],
                   "drop_pending_updates": False}
        try:
            answer = backend.answer("setWebhook", payload)
        except ApiError as error:
            return False, error.description
        except SendRefused as refusal:  # no bot token
            return False, str(refusal)
        return answer.get("result") is True, str(answer.get("description") or "Webhook was set")

    # The Bot API -----------------------------------------------------------------------------

    def api_base(self) -> str:
        return str((self.channel.settings or {}).get("api_base") or settings.TELEGRAM_API_BASE).rstrip("/")

    def token(self) -> str:
        token = str(self.secrets().get("bot_token") or "")
        if not token:
            raise SendRefused("the channel has no bot token")
        return token

    def call(self, method: str, payload: dict | None = None, *, body: bytes | None = None, content_type: str = ""):
        """One Bot API method's `result`; ApiError when it did not succeed."""
        return self.answer(method, payload, body=body, content_type=content_type).get("result")

    def answer(self, method: str, payload: dict | None = None, *, body: bytes | None = None, content_type: str = "") -> dict:
        """One Bot API method: its whole answer when ok, else ApiError (a refusal, a failure that may
        pass, no answer). A JSON payload, or a ready body (multipart) with its content type."""
        token = self.token()
        if body is None:
            body, content_type = json.dumps(payload or {}, ensure_ascii=False).encode(), "application/json"
        response = self._request("POST", f"bot{token}/{method}", token, body=body, content_type=content_type, timeout=API_TIMEOUT,
                                 repeat=method.startswith("send"))
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        status = response.status
        if status == 200 and answer.get("ok") is True:
            return answer
        description = _redact(str(answer.get("description") or ""), token)[:250] or http.client.responses.get(status, "")
        description = description if description.startswith(str(status)) else f"{status} {description}".strip()
        if status == 429:
            parameters = _dict(answer.get("parameters"))
            retry_after = parameters.get("retry_after") if isinstance(parameters.get("retry_after"), int) else None
            after = f"; retry after {retry_after} s" if retry_after is not None else ""
            raise ApiError(description + after, status=429, retry_after=retry_after)
        if status in REFUSED_STATUSES or status == 200:  # 200 with "ok": false, or an answer that is not the Bot API's
            raise ApiError(description, status=status, retry=False)
        raise ApiError(description, status=status, retry=status >= 500 or status in (408, 425))

    def download(self, path: str) -> bytes:
        """A file's bytes from {api_base}/file/bot<token>/<file_path> (as getFile named it)."""
        token = self.token()
        response = self._request("GET", f"file/bot{token}/{path.lstrip('/')}", token, timeout=FILE_TIMEOUT)
        if response.status != 200:
            raise ApiError(f"{response.status} fetching the file", status=response.status,
                           retry=response.status >= 500 or response.status in (408, 425, 429))
        return response.body

    def _request(self, method: str, path: str, token: str, *, body: bytes | None = None, content_type: str = "",
                 timeout: float, repeat: bool = False) -> outbound.Response:
        url = f"{self.api_base()}/{path}"
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            return outbound.request(method, url, body=body, headers=headers, timeout=timeout)
        except outbound.Blocked as blocked:
            raise ApiError(f"the Bot API address is refused: {_redact(str(blocked), token)}", retry=False) from None
        except ValueError as error:  # a URL that cannot be requested (a bad port)
            raise ApiError(f"the Bot API address is not usable: {_redact(str(error), token)}", retry=False) from None
        except (OSError, http.client.HTTPException) as error:  # timeouts, refused or reset connections
            reason = _redact(str(error), token) or type(error).__name__
            sent = repeat and not isinstance(error, ConnectionRefusedError)  # refused: it never reached Telegram
            maybe = "; Telegram may have taken it, so a retry can repeat it" if sent else ""
            raise ApiError(f"no answer from the Bot API ({reason}){maybe}") from None


register_webhook = TelegramBackend.register_webhook


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578) and its Content-Type: text fields, then files as
    (file name, bytes, content type). Names are UTF-8, with quotes and line breaks escaped."""
    boundary = f"voronka-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode())
        chunks.append(str(value).encode() + b"\r\n")
    for name, (filename, content, content_type) in files.items():
        chunks.append(
            (f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"; filename="{_quote(filename)}"\r\n'
             f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n").encode()
        )
        chunks.append(content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _quote(value: str) -> str:
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _send_error(error: ApiError) -> SendError:
    return SendError(error.description) if error.retry else SendRefused(error.description)


def _chat_id(to: str):
    """Telegram takes a numeric chat id as a number, a public chat as "@name"."""
    return int(to) if re.fullmatch(r"-?\d{1,20}", to or "") else to


def _timestamp(value) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _note(text: str, name: str, reason: str) -> str:
    return (text + f"\n[{name}: {reason}]").strip()


def _redact(text: str, token: str) -> str:
    """Never show the bot token (it is in every Bot API URL) in an error someone will read."""
    return text.replace(token, "<token>") if token else text
