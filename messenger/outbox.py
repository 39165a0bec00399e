"""Replies from the inbox: stored, then sent by the worker exactly once (DESIGN §7).

A reply is a Message (out, queued) committed with the request; the worker claims it (queued →
sending, a conditional UPDATE committed before anything leaves), hands it to the channel's
backend with the message's key, and marks it sent with the channel's id. A failure that may pass
puts it back, due after 1, 5 then 30 minutes (±20 %); a refusal, or the fourth failure, marks it
failed with the reason, shown in the chat with a Retry. A worker killed while sending leaves the
message claimed: the sweep takes it back once the claim is older than JOB_STALE_SECONDS and sends
it again with the same key (the webhook and SMS channels drop the copy; Telegram's Bot API has no
such key, so a crash in that instant can repeat one message, and the message's error says so).
The feed entry is written when the message has actually left.
"""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import activity, events, queueing
from crm import permissions as gate
from crm.models import Activity, Event

from . import attachments
from .backends import SendError, SendRefused
from .channels import backend_for
from .models import Channel, Conversation, Message, Unread

log = logging.getLogger(__name__)

REPLY = gate.REPLY
RETRY_DELAYS = (60, 300, 1800)
KICK_SECONDS = 2
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
MAX_TEXT = 4000


def may_reply(user, channel: Channel) -> bool:
    """Whether the user may write through this channel: the permission, and a team the channel allows (if it names any)."""
    if not gate.can(user, REPLY) or not channel.is_active:
        return False
    allowed = getattr(channel, "_team_ids", None)
    if allowed is None:
        allowed = channel._team_ids = set(channel.teams.values_list("pk", flat=True))  # type: ignore[attr-defined]
    return not allowed or user.is_superuser or user.team_id in allowed


@transaction.atomic
def reply(*, actor, conversation: Conversation, text: str, files=()) -> Message:
    """Queue a reply; the worker sends it once this commits. `files`: uploaded files (checked by size and content)."""
    if not may_reply(actor, conversation.channel):
        raise PermissionDenied
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()  # a form posts CRLF
    if not text and not files:
        raise ValidationError(_("Write a message or attach a file."))
    if len(text) > MAX_TEXT:
        raise ValidationError(_("A message can be at most %(n)s characters.") % {"n": MAX_TEXT})
    for upload in files:
        attachments.check_size(upload.size)
    now = timezone.now()
    message = Message.objects.create(conversation=conversation, channel=conversation.channel, direction=Message.Direction.OUT,
                                     text=text, author=actor, status=Message.Status.QUEUED, created_at=now,
                                     claimed_at=now)  # put on the broker at commit (due() reads it)
    for upload in files:
        attachments.store(message, upload.name, upload.read())
    from .receive import touch

    touch(conversation, message, count_unread=False)
    # Answering is reading: the conversation's unread count goes, and so does the author's.
    Conversation.objects.filter(pk=conversation.pk).update(unread=0, assignee_id=conversation.assignee_id or actor.pk)
    Unread.objects.filter(conversation=conversation).filter(Q(user=actor) | Q(user_id=conversation.assignee_id)).delete()
    events.emit(Event.Kind.MESSAGE_OUT, client_id=conversation.client_id, at=now)
    transaction.on_commit(lambda: queue(message.pk))
    return message


def send_automatic(*, conversation: Conversation, text: str, key) -> Message:
    """A message written by an automation (a robot): stored and sent like a reply, with the caller's
    idempotency key, which the channel receives and which is unique: the same key twice is refused
    by the database (a robot's run writes it in the same transaction as the step that sends it, so
    a resumed run never gets here twice). No author, no permission: the caller decided."""
    text = (text or "").strip()[:MAX_TEXT]
    now = timezone.now()
    message = Message.objects.create(conversation=conversation, channel=conversation.channel, direction=Message.Direction.OUT,
                                     text=text, author=None, status=Message.Status.QUEUED, created_at=now, key=key)
    from .receive import touch

    touch(conversation, message, count_unread=False)
    events.emit(Event.Kind.MESSAGE_OUT, client_id=conversation.client_id, at=now)
    # Not a task per message: an automation may write ten thousand at once. One drain sends them.
    transaction.on_commit(kick_sending)
    return message


SEND_KICK_KEY = "messenger:outbox-drain"
SEND_BATCH = 100
SEND_SECONDS = 50.0


def kick_sending(*, again: bool = False) -> None:
    """Have a worker send the queued messages nobody has put on the broker (automations' messages)."""
    from .tasks import outbox_drain

    queueing.kick(SEND_KICK_KEY, outbox_drain, again=again, seconds=KICK_SECONDS)


def claim_unsent(limit: int = SEND_BATCH) -> list[int]:
    """Queued messages never put on the broker (claimed_at empty, first attempt), oldest first,
    marked as taken by this drain (another drain, or the sweep, leaves them JOB_STALE_SECONDS)."""
    with transaction.atomic():
        ids = list(Message.objects.select_for_update(skip_locked=True)
                   .filter(direction=Message.Direction.OUT, status=Message.Status.QUEUED, claimed_at__isnull=True,
                           next_attempt_at__isnull=True).order_by("pk").values_list("pk", flat=True)[:limit])
        Message.objects.filter(pk__in=ids).update(claimed_at=timezone.now())
    return ids


def drain_sending(*, time_budget: float = SEND_SECONDS, limit: int = SEND_BATCH) -> int:
    """Send the claimed messages one by one (deliver: exactly as a reply), batch after batch."""
    def step() -> int:
        ids = claim_unsent(limit)
        for pk in ids:
            deliver(pk)
        return len(ids)

    return queueing.drain(step, key=SEND_KICK_KEY, limit=limit, seconds=time_budget,
                          kick_again=lambda: kick_sending(again=True))


def conversation_for(client_id: int) -> Conversation | None:
    """Where an automation writes to a client: their most recent conversation in an active channel
    (not one on the ignore list)."""
    return (Conversation.objects.select_related("channel").filter(client_id=client_id, channel__is_active=True)
            .exclude(status=Conversation.Status.IGNORED).order_by(F("last_message_at").desc(nulls_last=True), "-pk").first())


def queue(message_id: int) -> None:
    from .tasks import message_send

    try:
        message_send.delay(message_id)
    except Exception:  # the broker is down: the sweep sends it
        log.exception("could not queue message %s; the sweep will", message_id)


def retry(*, actor, message: Message) -> None:
    """Send a failed reply again (the chat's Retry)."""
    if not may_reply(actor, message.channel):
        raise PermissionDenied
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, direction=Message.Direction.OUT, status=Message.Status.FAILED).update(
            status=Message.Status.QUEUED, attempts=0, error="", next_attempt_at=None, claimed_at=None)
        if updated:
            Conversation.objects.filter(pk=message.conversation_id).update(version=F("version") + 1)
            transaction.on_commit(lambda: queue(message.pk))


def deliver(message_id: int, *, now=None) -> str:
    """Send one queued reply if it is due and no one else is sending it."""
    now = now or timezone.now()
    claimed = Message.objects.filter(pk=message_id, direction=Message.Direction.OUT, status=Message.Status.QUEUED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).update(status=Message.Status.SENDING, claimed_at=now,
                                                                            attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("conversation", "conversation__client", "channel", "author").get(pk=message_id)
    backend = backend_for(message.channel)
    try:
        external_id = backend.send(message, to=message.conversation.external_chat_id)
    except SendRefused as refusal:
        _fail(message, str(refusal) or type(refusal).__name__)
        return "failed"
    except Exception as error:  # SendError, or a fault of ours: tried again with backoff, then failed with the reason
        if not isinstance(error, SendError):
            log.exception("sending message %s failed", message.pk)
        if message.attempts >= MAX_ATTEMPTS:
            _fail(message, str(error) or type(error).__name__)
            return "failed"
        delay = RETRY_DELAYS[message.attempts - 1] * random.uniform(0.8, 1.2)
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED, error=str(error)[:300], claimed_at=None, next_attempt_at=now + timedelta(seconds=delay))
        _bump(message)
        return "retry"
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.SENT, external_id=str(external_id)[:200], sent_at=timezone.now(), error="", claimed_at=None)
        _bump(message)
        _feed(message, failure=None)
    return "sent"


def _bump(message: Message) -> None:
    Conversation.objects.filter(pk=message.conversation_id).update(version=F("version") + 1)


def _fail(message: Message, reason: str) -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED, error=reason[:300], claimed_at=None)
        _bump(message)
        _feed(message, failure=reason)


def _feed(message: Message, *, failure: str | None) -> None:
    activity.record(client_id=message.conversation.client_id, actor=message.author, kind=Activity.Kind.MESSAGE,
                    field="chat_out_failed" if failure is not None else "chat_out", new=message.channel.name,
                    text=(failure if failure is not None else message.text)[:999])


def due(now=None) -> list[int]:
    """Replies to send now, marked as put on the broker: queued and due (and not put on it within
    JOB_STALE_SECONDS), or claimed by a worker that died (claim older than JOB_STALE_SECONDS)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    Message.objects.filter(direction=Message.Direction.OUT, status=Message.Status.SENDING, claimed_at__lt=stale).update(
        status=Message.Status.QUEUED, claimed_at=None, next_attempt_at=None)
    # A queued reply's claimed_at is when it was last put on the broker: one waiting its turn behind
    # a busy queue (a robot's ten thousand messages) is not queued again until that is stale.
    waiting = Message.objects.filter(direction=Message.Direction.OUT, status=Message.Status.QUEUED).filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lt=now - timedelta(seconds=10))).filter(
        Q(claimed_at__isnull=True, created_at__lt=stale) | Q(claimed_at__lt=stale))
    with transaction.atomic():
        ids = list(waiting.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[:1000])
        Message.objects.filter(pk__in=ids).update(claimed_at=now)
    return ids
