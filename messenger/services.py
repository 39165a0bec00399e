"""Mass email and SMS (seed 002 mass actions; seed 004: subject, message, action type, recorded on
each client's feed at the client's current step). Every recipient gets the message once."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.services import _lock_selection
from crm import activity
from crm import permissions as gate
from crm.models import Activity

from .backends import SendError, sms_backend  # SendError: the backends' failure
from .models import Delivery, MassSend

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


def current_step(client, deal=None) -> str:
    """Where the client is now: the stage of their newest open deal, else their status (seed 004)."""
    if deal is not None:
        return str(deal.stage)
    return str(client.get_lifecycle_display())


@transaction.atomic
def mass_send_start(*, actor, channel: str, clients, digest: str | None, subject: str, body: str,
                    action_type: str = "") -> MassSend:
    """Record the send and one delivery per client with an address, in one transaction with the
    feed entries; the worker sends after the commit. Clients without an address are counted."""
    gate.require(actor, gate.SEND_MESSAGES)
    body = (body or "").strip()
    if not body:
        raise ValidationError(_("Write the message."))
    if channel == MassSend.Channel.EMAIL and not (subject or "").strip():
        raise ValidationError(_("Write the subject."))
    ids = _lock_selection(clients.filter(deleted_at__isnull=True), digest)
    from clients.models import Client
    from deals.models import Deal

    rows = list(Client.objects.filter(pk__in=ids).only("pk", "email", "phone", "lifecycle"))
    address_of = (lambda c: c.email) if channel == MassSend.Channel.EMAIL else (lambda c: c.phone)
    reachable = [c for c in rows if address_of(c)]
    send = MassSend.objects.create(channel=channel, subject=(subject or "").strip()[:150], body=body,
                                   action_type=(action_type or "").strip()[:60], created_by=actor,
                                   total=len(reachable), skipped=len(rows) - len(reachable))
    Delivery.objects.bulk_create([Delivery(mass_send=send, client=c, address=address_of(c)) for c in reachable], batch_size=2000)
    newest_deal: dict[int, Deal] = {}
    deals = Deal.objects.filter(client_id__in=[c.pk for c in reachable], deleted_at__isnull=True)
    for deal in deals.select_related("stage").order_by("client_id", "-created_at"):
        newest_deal.setdefault(deal.client_id, deal)
    channel_label = str(MassSend.Channel(channel).label)
    activity.record_many([
        activity.entry(client_id=c.pk, actor=actor, kind=Activity.Kind.MESSAGE, field=channel,
                       field_label=current_step(c, newest_deal.get(c.pk)),
                       old=action_type, new=f"{channel_label}: {send.subject or body[:80]}", text=body[:999])
        for c in reachable
    ])
    transaction.on_commit(lambda: _enqueue(send.pk))
    return send


def _enqueue(send_id) -> None:
    from .tasks import mass_send_run

    mass_send_run.delay(str(send_id))


def mass_send_run(*, send_id) -> int:
    """Send every pending delivery of a mass send. A delivery is claimed (pending → sending) and
    committed before its message leaves, and marked sent right after; a second worker, or this
    one restarted, never takes a claimed or sent one. Returns how many it sent."""
    send = MassSend.objects.get(pk=send_id)
    MassSend.objects.filter(pk=send.pk, status=MassSend.Status.QUEUED).update(status=MassSend.Status.SENDING)
    gap = 1.0 / settings.MASS_SEND_RATE_PER_SECOND if settings.MASS_SEND_RATE_PER_SECOND else 0
    sent = 0
    while True:
        delivery = _claim_next(send)
        if delivery is None:
            break
        try:
            provider_id = _deliver(send, delivery)
        except Exception as error:  # any failure: retry a few times, then give up on this one
            log.warning("delivery %s failed: %s", delivery.pk, error)
            status = Delivery.Status.FAILED if delivery.attempts >= MAX_ATTEMPTS else Delivery.Status.PENDING
            Delivery.objects.filter(pk=delivery.pk).update(status=status, error=str(error)[:300])
            continue
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENT, sent_at=timezone.now(),
                                                       provider_id=provider_id[:100])
        sent += 1
        if gap:
            time.sleep(gap)
    if not Delivery.objects.filter(mass_send=send, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]).exists():
        MassSend.objects.filter(pk=send.pk).update(status=MassSend.Status.DONE, finished_at=timezone.now())
    return sent


def _claim_next(send):
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(skip_locked=True)
                    .filter(mass_send=send, status=Delivery.Status.PENDING).order_by("pk").first())
        if delivery is None:
            return None
        delivery.attempts += 1
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING, claimed_at=timezone.now(),
                                                       attempts=delivery.attempts)
        return delivery


def _deliver(send, delivery) -> str:
    if send.channel == MassSend.Channel.SMS:
        return sms_backend().send(to=delivery.address, text=send.body, key=delivery.key)
    message = EmailMessage(subject=send.subject, body=send.body, to=[delivery.address],
                           headers={"Message-ID": f"<{delivery.key}@voronka>"})
    try:
        message.send()
    except OSError as error:
        raise SendError(str(error)) from error
    return delivery.key


def mass_sends_resume(*, stale_after: int | None = None) -> list[str]:
    """After a worker died: deliveries it had claimed and not finished go back to pending, and
    every unfinished send is queued again. (SMS carries an idempotency key; for email the only
    gap is a crash between the SMTP server's "250 OK" and the next line.)"""
    seconds = settings.MASS_SEND_STALE_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lte=cutoff)
    stale.filter(attempts__gte=MAX_ATTEMPTS).update(status=Delivery.Status.FAILED, error="interrupted too often")
    stale.update(status=Delivery.Status.PENDING)
    unfinished = list(MassSend.objects.exclude(status=MassSend.Status.DONE).filter(
        deliveries__status=Delivery.Status.PENDING).distinct().values_list("pk", flat=True))
    for pk in unfinished:
        _enqueue(pk)
    return [str(pk) for pk in unfinished]
