"""Attachments: kept under MEDIA_ROOT (which no web server serves), typed by their bytes, limited in
size, and given out only through the gate (messenger.views.attachment) as downloads. Raster images
are shown inline with their sniffed type and `nosniff`; nothing else ever is (an SVG or HTML file
is a download, whatever it calls itself)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _

from .models import Attachment, Message

SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),  # also .docx and .xlsx: downloaded as they are
    (b"OggS", "audio/ogg"),  # Telegram's voice messages
    (b"ID3", "audio/mpeg"),
]


def sniff(content: bytes) -> str:
    """The type the bytes show (never the sender's word): a few formats chats carry, else plain
    text when it decodes as UTF-8 without control bytes, else application/octet-stream."""
    head = content[:16]
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp":
        return "video/mp4"
    try:
        text = content[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text):
        return "application/octet-stream"
    return "text/plain"


def check_size(size: int) -> None:
    if size > settings.MESSENGER_MAX_ATTACHMENT_BYTES:
        raise ValidationError(_("The file is larger than %(mb)s MB.") % {"mb": settings.MESSENGER_MAX_ATTACHMENT_BYTES // (1024 * 1024)})


def clean_name(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    return name[:200] or "file"


def store(message: Message, name: str, content: bytes) -> Attachment:
    check_size(len(content))
    attachment = Attachment(message=message, name=clean_name(name), content_type=sniff(content), size=len(content))
    attachment.file.save("f", ContentFile(content), save=False)
    attachment.save()
    return attachment
