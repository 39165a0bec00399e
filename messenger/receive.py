"""The worker's half of the ingress: an Inbound delivery becomes messages (DESIGN §7).

For each message the channel's parse() reads:
- its conversation is found by (channel, the sender's chat id); else its client by the sender's
  E.164 phone or e-mail when exactly one live client has it; else a new client (the name from the
  profile, the channel, the channel's name as source) is created with a deal in the first stage
  of the channel's line, given out by the line's distribution (shifts) or queued. A weaker
  likeness (the same name) is never merged: it is suggested as a possible duplicate on the card;
- a known client without an open deal gets a new one the same way;
- the message is stored once: (channel, external id) is unique, so a replay changes nothing;
- while the sender is on the ignore list it is stored and marked so, with no unread count and no
  notification; when they write after the ignore ended (or the rule says "back on a new
  message"), their deal leaves the Ignore stage for «Вернулся из игнора» and is given out again.
"""

import logging
import random
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from clients import duplicates
from clients.models import NAME_MAX, Client
from clients.phones import normalize_phone, phone_digits
from crm import activity, events, queueing
from crm.models import Activity, Event, Notification
from deals import distribution
from deals.models import Deal, Line, Stage
from deals.services import deal_to_stage, new_position

from . import attachments, ignore
from .channels import Incoming, StatusUpdate, backend_for
from .models import Channel, Conversation, Inbound, Message, Unread

log = logging.getLogger(__name__)

RETRY_DELAYS = (30, 120, 600, 1800)  # seconds before the next try of a delivery the worker could not process
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
CLIENT_CHANNEL = {"telegram": "telegram", "email": "email", "sms": "phone"}
PREVIEW = 160


def process(inbound_id: int) -> str:
    """Process one stored delivery, once: its row is locked (a second worker skips it) and marked
    done in the transaction that wrote its messages. A failure is kept with its reason and tried
    again later (after 30 s, 2, 10, 30 min), then left failed for an admin to see and retry."""
    with transaction.atomic():
        row = (Inbound.objects.select_for_update(skip_locked=True).select_related("channel")
               .filter(pk=inbound_id).exclude(state=Inbound.State.DONE).first())
        if row is None:
            return "skipped"
        try:
            with transaction.atomic():
                for item in backend_for(row.channel).parse(row.payload):
                    if isinstance(item, StatusUpdate):
                        status_update(row.channel, item)
                    else:
                        receive(row.channel, item)
        except Exception as error:  # any failure is kept on the row, retried and shown to admins
            log.warning("inbound %s failed: %s", row.pk, error, exc_info=True)
            row.attempts += 1
            row.error = f"{type(error).__name__}: {error}"[:500]
            row.state = Inbound.State.FAILED
            if row.attempts < MAX_ATTEMPTS:
                delay = RETRY_DELAYS[row.attempts - 1] * random.uniform(0.8, 1.2)
                row.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            else:
                row.next_attempt_at = None  # given up: an admin retries it from the channel's page
            row.save(update_fields=["attempts", "error", "state", "next_attempt_at"])
            return "failed"
        row.state = Inbound.State.DONE
        row.error = ""
        row.processed_at = timezone.now()
        row.next_attempt_at = None
        row.save(update_fields=["state", "error", "processed_at", "next_attempt_at"])
    return "done"


# The drain: the ingress does not queue a job per message (publishing one costs more than storing
# the message); it kicks a drain, at most once per KICK_SECONDS while one is pending or running,
# and the drain claims new deliveries in batches until none is left. A drain that finds a full
# batch kicks another, so other workers join a burst. Claims expire after CLAIM_SECONDS (a worker
# killed mid-batch); the beat's sweep queues whatever waited longer than that.
KICK_KEY = "messenger:inbound-drain"
KICK_SECONDS = 5
DRAIN_BATCH = 50
CLAIM_SECONDS = 60
DRAIN_SECONDS = 50.0


def kick(*, again: bool = False) -> None:
    """Have a worker drain the new deliveries (queued unless a drain is already on its way)."""
    from .tasks import inbound_drain

    queueing.kick(KICK_KEY, inbound_drain, again=again, seconds=KICK_SECONDS, quiet=False)


def claim_new(limit: int = DRAIN_BATCH) -> list[int]:
    """New deliveries no other drain holds, oldest first, claimed for CLAIM_SECONDS."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(Inbound.objects.select_for_update(skip_locked=True).filter(state=Inbound.State.NEW)
                   .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).order_by("pk")
                   .values_list("pk", flat=True)[:limit])
        if ids:
            Inbound.objects.filter(pk__in=ids).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    return ids


def drain(*, time_budget: float = DRAIN_SECONDS) -> int:
    """Process new deliveries until none is left (or the time is up: then another drain follows)."""
    import time

    from django.core.cache import cache

    deadline = time.monotonic() + time_budget
    done = 0
    while time.monotonic() < deadline:
        ids = claim_new()
        if not ids:
            # Let the next delivery kick a new drain, then look once more: one stored between the
            # last claim and this moment found the key taken and queued nothing.
            cache.delete(KICK_KEY)
            ids = claim_new()
            if not ids:
                return done
        if len(ids) == DRAIN_BATCH:
            kick(again=True)  # more are waiting: another worker may join
        for pk in ids:
            process(pk)
            done += 1
    cache.delete(KICK_KEY)
    kick()
    return done


def status_update(channel: Channel, update: StatusUpdate) -> None:
    """Delivered / read / failed for a message we sent; a status never goes back (read stays read)."""
    order: list[str] = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ]
    status = update.status if update.status in (*order, Message.Status.FAILED) else None
    if status is None:
        return
    messages = Message.objects.filter(channel=channel, direction=Message.Direction.OUT, external_id=update.external_id)
    if status == Message.Status.FAILED:
        messages.exclude(status=Message.Status.READ).update(status=status, error=update.error[:300])
    else:
        messages.filter(status__in=order[: order.index(status)]).update(status=status)
    Conversation.objects.filter(pk__in=messages.values("conversation_id")).update(version=F("version") + 1)


def receive(channel: Channel, item: Incoming) -> Message | None:
    """Store one inbound message (None when it was already stored: a replay)."""
    if Message.objects.filter(channel=channel, direction=Message.Direction.IN, external_id=item.external_id).exists():
        return None
    conversation = Conversation.objects.select_related("client").filter(channel=channel, external_chat_id=item.chat_id[:200]).first()
    if conversation is None or conversation.client.deleted_at is not None:
        client = _client_for(channel, item)
        conversation = _conversation(channel, client, item)
    client = conversation.client
    rule = ignore.active_rule(client, item)
    if rule is not None and rule.back_on_message:
        ignore.end(rule, actor=None)
        rule = None
    deal = _open_deal(channel, client, ignored=rule is not None)
    assignee_id = (deal.responsible_id if deal else None) or client.responsible_id
    if conversation.assignee_id is None and assignee_id:
        Conversation.objects.filter(pk=conversation.pk).update(assignee_id=assignee_id)
        conversation.assignee_id = assignee_id
    now = timezone.now()
    message = Message(conversation=conversation, channel=channel, direction=Message.Direction.IN, text=item.text,
                      external_id=item.external_id[:200], status=Message.Status.RECEIVED, thread_ref=(item.thread_refs or [""])[0][:300],
                      while_ignored=rule is not None, created_at=now)
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:  # the same message, stored meanwhile by another delivery
        return None
    for file in item.files:
        try:
            attachments.store(message, file.name, file.content)
        except ValidationError as refusal:  # too large: the message says so instead of the file
            message.text = (message.text + f"\n[{file.name}: {' '.join(refusal.messages)}]").strip()
            message.save(update_fields=["text"])
    touch(conversation, message, count_unread=rule is None)
    if rule is None:
        _notify(conversation, message)
    activity.record(client_id=client.pk, deal_id=deal.pk if deal else None, actor=None, kind=Activity.Kind.MESSAGE,
                    field="chat_in", new=channel.name, text=_excerpt(message, 999))
    if rule is None:  # a message from an ignored client is kept, and nothing reacts to it
        events.emit(Event.Kind.MESSAGE_IN, client_id=client.pk, deal_id=deal.pk if deal else None, at=now)
    return message


def _excerpt(message: Message, length: int = PREVIEW) -> str:
    text = " ".join(message.text.split())
    if not text and message.pk and message.attachments.exists():
        text = "[" + ", ".join(a.name for a in message.attachments.all()) + "]"
    return text[:length]


def touch(conversation: Conversation, message: Message, *, count_unread: bool) -> None:
    """The conversation's newest message, preview and unread counts (the conversation's and its
    assignee's); a conversation on the ignore list stays marked ignored."""
    values = {"version": F("version") + 1, "last_message_at": message.created_at, "last_message_id": message.pk, "last_text": _excerpt(message),
              "last_direction": message.direction}
    if message.direction == Message.Direction.IN:
        if count_unread:
            values["unread"] = F("unread") + 1
            if conversation.status == Conversation.Status.CLOSED:
                values["status"] = Conversation.Status.OPEN
        else:
            values["status"] = Conversation.Status.IGNORED
    Conversation.objects.filter(pk=conversation.pk).update(**values)
    if message.direction == Message.Direction.IN and count_unread and conversation.assignee_id:
        if not Unread.objects.filter(user_id=conversation.assignee_id, conversation=conversation).update(count=F("count") + 1):
            Unread.objects.create(user_id=conversation.assignee_id, conversation=conversation, count=1)


def _notify(conversation: Conversation, message: Message) -> None:
    """The assignee hears of a conversation's first unread message (not of every one after it)."""
    if not conversation.assignee_id:
        return
    if Unread.objects.filter(user_id=conversation.assignee_id, conversation=conversation, count__gt=1).exists():
        return
    from django.urls import reverse

    activity.notify(user=conversation.assignee, kind=Notification.Kind.MESSAGE, actor=None,
                    params={**activity.client_params(conversation.client), "channel": conversation.channel.name},
                    text=_excerpt(message), url=reverse("messenger:inbox") + f"?c={conversation.pk}")


# Who wrote -----------------------------------------------------------------------------------


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except ValidationError:
        return ""


def _client_for(channel: Channel, item: Incoming) -> Client:
    """The live client this sender is: exactly one by E.164 phone or e-mail; else a new one."""
    phone, email = _phone(item.phone), item.email.strip().lower()
    if phone or email:
        match = Q(phone=phone) if phone else Q()
        if email:
            match = (match | Q(email__iexact=email)) if phone else Q(email__iexact=email)
        found = list(Client.objects.alive().filter(match).order_by("pk")[:2])
        if len(found) == 1:
            return found[0]
    name = " ".join(item.name.split()) or item.username or item.phone or item.email or item.chat_id
    client = Client(name=name[:NAME_MAX], phone=phone, email=email[:254], channel=CLIENT_CHANNEL.get(channel.kind, ""),
                    source=channel.name[:100])
    client.phone_digits = phone_digits(client.all_phones)
    client.save()
    activity.record(client_id=client.pk, actor=None, kind=Activity.Kind.CREATED, new=client.name,
                    field="channel", field_label=channel.name)
    duplicates.suggest_for([client.pk])
    return client


def _conversation(channel: Channel, client: Client, item: Incoming) -> Conversation:
    conversation, _created = Conversation.objects.get_or_create(
        channel=channel, external_chat_id=item.chat_id[:200],
        defaults={"client": client, "subject": item.subject[:200]},
    )
    if conversation.client_id != client.pk:  # the old client was deleted: the chat follows the sender
        conversation.client = client
        conversation.save(update_fields=["client"])
    conversation.client = client
    return conversation


# The deal ------------------------------------------------------------------------------------


def channel_line(channel: Channel) -> Line | None:
    """Where a new sender's deal goes: the channel's line, else the first line of the first funnel."""
    if channel.line_id:
        return channel.line
    return Line.objects.order_by("funnel__position", "funnel_id", "position", "pk").first()


def _open_deal(channel: Channel, client: Client, *, ignored: bool) -> Deal | None:
    """The client's deal this message belongs to: the newest one in an Ignore stage when they are
    back (moved to «Вернулся из игнора» and given out again), else the newest open one, else a new
    deal in the channel's line."""
    deals = Deal.objects.filter(client=client, deleted_at__isnull=True).select_related("stage", "stage__line")
    in_ignore = deals.filter(stage__code="ignore").order_by("-pk").first()
    if in_ignore is not None:
        if not ignored:
            back_from_ignore(in_ignore)
        return in_ignore
    deal = deals.filter(stage__closes=False).order_by("-pk").first()
    if deal is not None or ignored:
        return deal
    line = channel_line(channel)
    if line is None:
        return None
    stage = Stage.objects.filter(line=line).order_by("position", "pk").first()
    if stage is None:
        return None
    deal = Deal(client=client, stage=stage, name=client.name, channel=client.channel, position=new_position())
    distribution.assign_new(deal, line=line)
    deal.save()
    activity.record(client_id=client.pk, deal_id=deal.pk, actor=None, kind=Activity.Kind.DEAL, new=f"#{deal.pk} {deal.name} · {stage}")
    events.emit(Event.Kind.STAGE, client_id=client.pk, deal_id=deal.pk, stage_id=stage.pk, at=deal.entered_at)
    distribution.after_insert([deal], previous={deal.pk: client.responsible_id})
    client.refresh_from_db(fields=["responsible"])
    return deal


def back_from_ignore(deal: Deal) -> None:
    """The client wrote after their ignore ended: the deal goes to «Вернулся из игнора» (the line's
    stage of that code, else its first) and is given out again by the line's distribution."""
    line = deal.stage.line
    stage = (Stage.objects.filter(line=line, code="back_from_ignore").first()
             or Stage.objects.filter(line=line).order_by("position", "pk").first())
    if stage is None:
        return
    deal_to_stage(deal, stage)
    if line.distribution != Line.Distribution.OFF:
        distribution.assign_again([deal], line)
        deal.refresh_from_db(fields=["responsible"])
    if deal.responsible_id:
        Conversation.objects.filter(client_id=deal.client_id).update(assignee_id=deal.responsible_id)
