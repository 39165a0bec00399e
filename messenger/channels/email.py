"""The e-mail channel: a mailbox read over IMAP, replies sent over SMTP with threading headers.

    settings  imap_host, imap_port, imap_user, imap_ssl, mailbox ("INBOX"), from_email,
              smtp_host, smtp_port, smtp_user, smtp_tls (no smtp_host: Django's default mailer)
    secrets   imap_password, smtp_password

In: the sweep polls the channel every 10 s (messenger.sweep). A poll takes the mailbox's unseen
mails, stores each one raw as an Inbound under "<UIDVALIDITY>:<UID>" and only then marks it
\\Seen: a poll that dies in between reads the mail again next time, and the key makes it the same
Inbound (and its Message-ID the same message). Two polls of one channel never run at once (a
PostgreSQL advisory lock). The worker's parse() reads the stored mail: the sender, the text
(the plain part, else the HTML part as text; the quoted reply at the end left out), the files.

Threading: our replies carry a Message-ID made from the message's key (stored as the message's
external id) and In-Reply-To/References of the client's newest mail; an answer whose
In-Reply-To/References name any message of the channel joins that message's conversation,
whichever address it comes from (a colleague's, a forward). Otherwise the conversation is the
sender's address.

A bounce (a delivery status report saying "failed") marks the reply it names failed with the
server's reason instead of becoming a message from MAILER-DAEMON.
"""

import base64
import email
import email.policy
import html
import imaplib
import json
import logging
import mimetypes
import re
import smtplib
import uuid
from contextlib import nullcontext
from email.utils import parseaddr
from html.parser import HTMLParser

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.utils import DNS_NAME
from django.utils.translation import gettext as _
from django.utils.translation import override

from crm import locks

from ..ingress import store
from ..models import Message
from ..services import failure_reason, is_permanent
from . import Backend, Incoming, IncomingFile, SendError, SendRefused, StatusUpdate

log = logging.getLogger(__name__)

TIMEOUT = 30  # seconds for an IMAP or SMTP server to answer
BATCH = 100  # mails taken per poll: the rest wait for the next poll (10 s later)
# A mail larger than this is stored as its headers only, with a note: it would not fit the worker's
# memory or the message's limits anyway (its files are limited to MESSENGER_MAX_ATTACHMENT_BYTES).
MAX_MAIL_BYTES = 50 * 1024 * 1024
MSGID = re.compile(r"<[^<>\s]+>")
REPLY_PREFIX = re.compile(r"^(\s*(re|fwd?|fw|aw|sv|ответ|отв|пересл)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def poll_lock_name(channel_id: int) -> str:
    """The advisory lock a poll of this channel holds (another poll of it returns at once)."""
    return f"messenger.email.poll:{channel_id}"


class EmailBackend(Backend):
    idempotent = False  # SMTP has no idempotency key; a resend carries the same Message-ID

    # In -----------------------------------------------------------------------------------

    def poll(self) -> int:
        """Store the mailbox's unseen mails as Inbound deliveries, then mark them read; how many
        were new. A server that cannot be reached or refuses the login raises (the sweep tries
        again); a poll of the same channel already running makes this one return 0."""
        with locks.held(poll_lock_name(self.channel.pk)) as mine:
            if not mine:
                return 0
            imap = self._imap()
            try:
                return self._take_unseen(imap)
            finally:
                try:
                    imap.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass

    def _imap(self) -> imaplib.IMAP4:
        config = self.channel.settings
        host, ssl = config.get("imap_host", ""), bool(config.get("imap_ssl", True))
        port = int(config.get("imap_port") or (993 if ssl else 143))
        imap = (imaplib.IMAP4_SSL if ssl else imaplib.IMAP4)(host, port, timeout=TIMEOUT)
        try:
            imap.login(config.get("imap_user", ""), self.secrets().get("imap_password", ""))
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def _take_unseen(self, imap: imaplib.IMAP4) -> int:
        _ok(imap.select(_quoted(self.channel.settings.get("mailbox") or "INBOX")))
        uidvalidity = (imap.response("UIDVALIDITY")[1] or [b""])[0]
        if not uidvalidity:
            raise imaplib.IMAP4.error("the server gave no UIDVALIDITY")
        uids = _ok(imap.uid("SEARCH", "UNSEEN"))[0].decode().split()[:BATCH]
        sizes = _sizes(imap, uids)
        new = 0
        for uid in uids:
            key = f"{uidvalidity.decode()}:{uid}"
            too_large = sizes.get(uid, 0) > MAX_MAIL_BYTES
            raw = _fetch(imap, uid, "BODY.PEEK[HEADER]" if too_large else "BODY.PEEK[]")
            if raw is None:
                continue  # expunged meanwhile by another mail program
            payload: dict[str, str | int] = {"key": key, "raw": base64.b64encode(raw).decode()}
            if too_large:
                payload["size"] = sizes[uid]
            if store(self.channel, key, json.dumps(payload)) is not None:
                new += 1
            # Marked read only once stored: a crash before this line reads the mail again, as the same Inbound.
            _ok(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)"))
        return new

    def parse(self, payload: str) -> list:
        data = json.loads(payload)
        mail = email.message_from_bytes(base64.b64decode(data["raw"]), policy=email.policy.default)
        bounce = _bounce(mail)
        if bounce is not None:
            return [bounce] if bounce.external_id else []
        name, address = _sender(mail)
        if not address:
            raise ValueError("the mail has no sender address")
        if address == parseaddr(self._from_email())[1].lower():
            return []  # our own mail (a copy, a loop): not a client
        external_id = _ids(_header(mail, "Message-ID"))
        refs = _unique(_ids(_header(mail, "In-Reply-To")) + _ids(_header(mail, "References"))[::-1])
        if data.get("size"):  # only its headers were taken
            files = []
            text = _("[The mail was too large to receive: %(mb)s MB.]") % {"mb": -(-data["size"] // (1024 * 1024))}
        else:
            body = _body(mail)
            text = strip_quote(_text_of(body)) if body is not None else ""
            files = [_file(part) for part in _attachments(mail, body)]
        return [Incoming(
            external_id=external_id[0] if external_id else f"uid:{data.get('key', '')}",
            chat_id=self._thread_chat(refs) or address,
            text=text,
            name=name,
            email=address,
            subject=" ".join(_header(mail, "Subject").split()),
            thread_refs=refs,
            files=files,
            sent_at=_date(mail),
        )]

    def _thread_chat(self, refs: list[str]) -> str:
        """The conversation a mail answers: the newest message of this channel its references name.
        Both lookups are indexed: our replies by their key (their Message-ID is made from it), the
        clients' mails by the unique (channel, external id) of inbound messages."""
        refs = refs[:50]
        keys = [key for key in (_key_of(ref) for ref in refs) if key]
        ours = Message.objects.filter(key__in=keys, channel=self.channel, direction=Message.Direction.OUT, external_id__in=refs)
        theirs = (Message.objects.filter(channel=self.channel, direction=Message.Direction.IN, external_id__in=refs)
                  .exclude(external_id=""))  # the unique index's own condition, so that it is used
        found = [row for rows in (ours, theirs) for row in rows.order_by("-id").values_list("id", "conversation__external_chat_id")[:1]]
        return max(found)[1] if found else ""

    # Out ----------------------------------------------------------------------------------

    def send(self, message, *, to: str) -> str:
        """Send the reply; its Message-ID (the same on a resend: it is made from the message's key).
        SMTP 5xx for the recipient or the message (or an address it cannot carry): SendRefused;
        anything else (4xx, our login or sender refused, the server unreachable): SendError."""
        from_email = self._from_email()
        message_id = f"<{message.key}@{_domain(from_email)}>"
        language = message.author.language if message.author else ""
        with override(language) if language else nullcontext():  # the reasons and the default subject
            mail = EmailMessage(subject=self._subject(message), body=message.text, from_email=from_email, to=[to],
                                headers={"Message-ID": message_id, **self._thread_headers(message)})
            for attachment in message.attachments.all():
                with attachment.file.open("rb") as file:
                    mail.attach(attachment.name, file.read(), attachment.content_type)
            try:
                sent = self._mailer().send_messages([mail])
            except (smtplib.SMTPException, OSError, ValueError) as error:
                reason = failure_reason(error, "email")
                raise (SendRefused if is_permanent(error) else SendError)(reason) from error
        if not sent:
            raise SendError(_("The mail server did not take the message."))
        return message_id

    def _from_email(self) -> str:
        return self.channel.settings.get("from_email") or settings.DEFAULT_FROM_EMAIL

    def _subject(self, message) -> str:
        subject = REPLY_PREFIX.sub("", message.conversation.subject)
        return f"Re: {subject}" if subject else _("Message from %(name)s") % {"name": self.channel.name}

    def _thread_headers(self, message) -> dict:
        """In-Reply-To the client's newest mail, References its parent and it (RFC 5322 §3.6.4)."""
        newest = (Message.objects.filter(conversation_id=message.conversation_id, direction=Message.Direction.IN)
                  .exclude(external_id="").exclude(external_id__startswith="uid:").order_by("-id").first())
        if newest is None:
            return {}
        refs = _unique([*_ids(newest.thread_ref), newest.external_id])
        return {"In-Reply-To": newest.external_id, "References": " ".join(refs)}

    def _mailer(self):
        config = self.channel.settings
        if not config.get("smtp_host"):
            return mailers.default
        return SmtpBackend(alias=f"messenger-channel-{self.channel.pk}", host=config["smtp_host"],
                           port=int(config.get("smtp_port") or 25), username=config.get("smtp_user") or "",
                           password=self.secrets().get("smtp_password", ""), use_tls=bool(config.get("smtp_tls")),
                           timeout=TIMEOUT)


# IMAP ----------------------------------------------------------------------------------------


def _ok(response):
    typ, data = response
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ} {data!r}"[:300])
    return data


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sizes(imap: imaplib.IMAP4, uids: list[str]) -> dict[str, int]:
    if not uids:
        return {}
    sizes = {}
    for item in _ok(imap.uid("FETCH", ",".join(uids), "(RFC822.SIZE)")):
        line = item[0] if isinstance(item, tuple) else item
        uid, size = re.search(rb"UID (\d+)", line or b""), re.search(rb"RFC822\.SIZE (\d+)", line or b"")
        if uid and size:
            sizes[uid.group(1).decode()] = int(size.group(1))
    return sizes


def _fetch(imap: imaplib.IMAP4, uid: str, what: str) -> bytes | None:
    for item in _ok(imap.uid("FETCH", uid, f"({what})")):
        if isinstance(item, tuple):
            return item[1]
    return None


# Reading a mail ------------------------------------------------------------------------------


def _header(mail, name: str) -> str:
    try:
        return str(mail.get(name) or "")
    except Exception:  # a header the parser cannot read: its raw text
        raw = [value for key, value in mail.raw_items() if key.lower() == name.lower()]
        return str(raw[0]) if raw else ""


def _ids(value: str) -> list[str]:
    return MSGID.findall(value or "")


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _sender(mail) -> tuple[str, str]:
    """The sender's display name and address (lower-cased): From, else Sender, Reply-To, Return-Path."""
    for name in ("From", "Sender", "Reply-To", "Return-Path"):
        try:
            header = mail.get(name)
            addresses = getattr(header, "addresses", ()) if header is not None else ()
        except Exception:
            addresses = ()
        for address in addresses:
            if address.addr_spec and "@" in address.addr_spec:
                return " ".join(address.display_name.split()), address.addr_spec.strip().lower()
        display, addr = parseaddr(_header(mail, name))
        if "@" in addr:
            return " ".join(display.split()), addr.strip().lower()
    return "", ""


def _date(mail):
    try:
        header = mail.get("Date")
        moment = getattr(header, "datetime", None)
    except Exception:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _body(mail):
    """The part that is the mail's text: plain text preferred, else HTML."""
    try:
        return mail.get_body(preferencelist=("plain", "html"))
    except Exception:
        return None


def _decoded_text(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # an unknown or lying charset
        return (part.get_payload(decode=True) or b"").decode("utf-8", "replace")


def _text_of(part) -> str:
    text = _decoded_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip()


def _attachments(mail, body) -> list:
    """The mail's files: every leaf part that is not its text (or the text's other version), a
    forwarded mail as one .eml file, without looking inside it."""
    found = []

    def walk(part):
        if part is body:
            return
        if part.get_content_type() == "message/rfc822" or not part.is_multipart():
            disposition = part.get_content_disposition()
            is_text = part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html")
            if is_text and disposition != "attachment" and not part.get_filename():
                return  # the body's other version (HTML beside the plain text), not a file
            found.append(part)
            return
        for child in part.iter_parts():
            walk(child)

    walk(mail)
    return found


def _file(part) -> IncomingFile:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        content = inner.as_bytes(policy=email.policy.default)
        name = part.get_filename() or f"{' '.join(str(inner.get('Subject', '')).split())[:80] or 'message'}.eml"
    else:
        content = part.get_payload(decode=True) or b""
        name = part.get_filename() or ""
        if not name:
            extension = mimetypes.guess_extension(part.get_content_type()) or ".bin"
            name = f"attachment{extension}"
    return IncomingFile(name=name, content=content, content_type=part.get_content_type())


def _key_of(message_id: str) -> uuid.UUID | None:
    """The message key a Message-ID of ours is made from (None for anyone else's)."""
    try:
        return uuid.UUID(message_id.strip("<>").partition("@")[0])
    except ValueError:
        return None


def _domain(from_email: str) -> str:
    address = parseaddr(from_email)[1]
    domain = address.rpartition("@")[2] if "@" in address else ""
    return domain or str(DNS_NAME)


# Bounces -------------------------------------------------------------------------------------


def _bounce(mail) -> StatusUpdate | None:
    """A delivery status report (RFC 3464): None for any other mail; else a failed status for the
    reply it names (an empty external id when it names none of ours, or it says it was delivered or delayed)."""
    if mail.get_content_type() != "multipart/report" or mail.get_param("report-type", "").lower() != "delivery-status":
        return None
    action, reason, original = "", "", ""
    for part in mail.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload():
                for key in ("Action", "Diagnostic-Code", "Status"):
                    value = str(block.get(key, "") or "")
                    if key == "Action" and value:
                        action = action or value.strip().lower()
                    elif key == "Diagnostic-Code" and value and not reason:
                        reason = " ".join(value.split(";", 1)[-1].split())
                    elif key == "Status" and value and not reason:
                        reason = value.strip()
        elif kind in ("message/rfc822", "text/rfc822-headers") and not original:
            inner = part.get_payload(0) if kind == "message/rfc822" else email.message_from_string(
                _decoded_text(part), policy=email.policy.default)
            original = (_ids(_header(inner, "Message-ID")) or [""])[0]
    if action != "failed":
        return StatusUpdate(external_id="", status="")
    return StatusUpdate(external_id=original, status="failed", error=reason or _("The mail could not be delivered."))


# Text ----------------------------------------------------------------------------------------


class _HtmlText(HTMLParser):
    """HTML as plain text, roughly: tags out, entities in, blocks on their own lines, quoted
    (<blockquote>) lines marked with ">" like a plain-text reply."""

    # Tags that end a line, and those that also leave a blank line after their block.
    LINES = {"br", "dd", "dt", "li", "tr"}
    BLOCKS = {"address", "article", "blockquote", "div", "dl", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
              "header", "hr", "ol", "p", "pre", "section", "table", "ul"}
    HIDDEN = {"head", "script", "style", "title", "template"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.depth = 0  # blockquotes around the current line
        self.line_depth = 0
        self.hidden = 0

    def _break(self, blank: bool):
        text = " ".join("".join(self.line).split())
        if text:
            self.lines.append("> " * self.line_depth + text)
        if blank and self.lines and self.lines[-1]:
            self.lines.append("")
        self.line, self.line_depth = [], self.depth

    def _quote(self, step: int):
        self.depth = max(0, self.depth + step)
        self.line_depth = self.depth

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS or tag in self.LINES:
            self._break(blank=tag in self.BLOCKS)
            if tag == "blockquote":
                self._quote(+1)

    def handle_startendtag(self, tag, attrs):
        if tag in self.BLOCKS or tag in self.LINES:
            self._break(blank=tag in self.BLOCKS)

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS or tag in self.LINES:
            self._break(blank=tag in self.BLOCKS)
            if tag == "blockquote":
                self._quote(-1)

    def handle_data(self, data):
        if not self.hidden:
            if not "".join(self.line).strip():
                self.line_depth = self.depth
            self.line.append(data)

    def text(self) -> str:
        self.close()
        self._break(blank=False)
        return "\n".join(self.lines).strip()


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(markup)
        return parser.text()
    except Exception:  # HTMLParser copes with nearly anything; if not, the tags are simply cut out
        return html.unescape(re.sub(r"<[^>]*>", " ", markup)).strip()


_WROTE = r"(wrote|написал\(?а?\)?|пишет|schrieb|a écrit|escribió|ha scritto|napisał\(?a?\)?)"
_ADDRESS = r"<?[\w.+-]+@[\w-]+(\.[\w-]+)+>?"
# "On …, Name <a@b> wrote:", "вт, 3 дек. 2024 г. в 09:12, Name <a@b>:"; its tail alone on a line
# when the client's program wrapped it ("…, Name <" / "a@b> wrote:").
ATTRIBUTION = re.compile(rf"({_WROTE}|{_ADDRESS})\s*:\s*$", re.IGNORECASE)
ATTRIBUTION_TAIL = re.compile(rf"^\s*({_ADDRESS}\s*{_WROTE}?|{_WROTE})\s*:\s*$", re.IGNORECASE)
ORIGINAL = re.compile(r"^\s*-{2,}\s*(original message|исходное сообщение|ursprüngliche nachricht|message d'origine)\s*-{2,}\s*$",
                      re.IGNORECASE)
OUTLOOK_FROM = re.compile(r"^\s*(from|от|von|de)\s*:", re.IGNORECASE)


def strip_quote(text: str) -> str:
    """The reply without the mail it quotes at its end: the trailing "> " lines with the
    "On … wrote:" line before them, or everything under an "-----Original Message-----" (or an
    Outlook "____" + "From:") separator. Quotes between answered lines stay, and a mail that is
    all quote is kept whole."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        starts_outlook = line.strip().startswith("____") and index + 1 < len(lines) and OUTLOOK_FROM.match(lines[index + 1])
        if (ORIGINAL.match(line) or starts_outlook) and "\n".join(lines[:index]).strip():
            lines = lines[:index]
            break
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    quote_start = end
    while quote_start and (lines[quote_start - 1].lstrip().startswith(">") or not lines[quote_start - 1].strip()):
        quote_start -= 1
    if quote_start < end:  # a quote at the end: cut it, and the attribution line(s) just above it
        keep = quote_start
        if keep and ATTRIBUTION.search(lines[keep - 1]):
            keep -= 1
            if ATTRIBUTION_TAIL.match(lines[keep]) and keep and lines[keep - 1].strip():
                keep -= 1  # the attribution's first half, wrapped
        if "\n".join(lines[:keep]).strip():
            lines = lines[:keep]
    return "\n".join(lines).strip()

