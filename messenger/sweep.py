"""The messenger's beat sweep (every 10 s): deliveries the worker has not processed (the broker
lost the job, or the try failed and is due again), replies to send (due retries, or claimed by a
worker that died), and the channels that fetch their mail (IMAP) are polled."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .channels import backend_for
from .models import Channel, Inbound
from .receive import MAX_ATTEMPTS

WAITING_SECONDS = 15  # a new delivery not processed after this long is queued again


def sweep() -> dict:
    from .outbox import due
    from .tasks import channel_poll, inbound_process, message_send

    now = timezone.now()
    pending = Inbound.objects.filter(
        Q(state=Inbound.State.NEW, received_at__lt=now - timedelta(seconds=WAITING_SECONDS))
        | Q(state=Inbound.State.FAILED, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=now)
    ).order_by("pk").values_list("pk", flat=True)[:1000]
    inbound = list(pending)
    for pk in inbound:
        inbound_process.delay(pk)
    replies = due(now)
    for pk in replies:
        message_send.delay(pk)
    polled = list(Channel.objects.filter(is_active=True, kind=Channel.Kind.EMAIL).values_list("pk", flat=True))
    for pk in polled:
        channel_poll.delay(pk)
    return {"inbound": len(inbound), "replies": len(replies), "polled": len(polled)}


def poll(channel_id: int) -> int:
    channel = Channel.objects.filter(pk=channel_id, is_active=True).first()
    return backend_for(channel).poll() if channel else 0
