"""Mass email and SMS (seed 002 mass actions; seed 004: subject, message, action type, recorded on
each client's feed at the client's current step). Every recipient gets the message once.

The send runs in the worker as a crm.Job (messenger/jobs.py; issue 12). A run sends the
deliveries that are due, one by one: each is claimed (pending → sending, a conditional UPDATE
committed before the message leaves), then
- sent: marked sent, with the client's feed entry, in one transaction;
- failed for a reason that may pass (a timeout, SMTP 4xx, gateway 5xx): pending again, due after
  1, 5, then 30 minutes (±20 %); the fourth failure is final;
- refused for good (an invalid address, SMTP 5xx for the recipient, gateway 4xx), or failed the
  fourth time: marked failed with the reason, on the feed too.
The run then tells its job when the rest is due (RunOutcome.later), and the job comes back then.
A run that died leaves at most the delivery it was sending claimed; the next run puts it back
once its claim is older than JOB_STALE_SECONDS (SMS carries an idempotency key; for email the
only gap is a crash between the SMTP server's "250 OK" and the next statement).
"""

import logging
import random
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from clients.services import _lock_selection
from crm import activity, jobs
from crm import permissions as gate
from crm.models import Activity, Job

from .backends import SendError, SendRefused, sms_backend
from .models import Delivery, MassSend

log = logging.getLogger(__name__)

RETRY_DELAYS = (60, 300, 1800)  # seconds before the 1st, 2nd and 3rd retry of a failed delivery
RETRY_JITTER = 0.2  # ±20 %: deliveries that failed together (a provider's outage) do not all come back together
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
BATCH = 200  # due deliveries read (with their clients' current steps) at a time
PROGRESS_EVERY_S = 1.0  # the job's progress is written at most this often
FAILED_SUFFIX = "_failed"  # a feed entry's field for a message that was not delivered: "email_failed"


def current_step(client, deal=None) -> str:
    """Where the client is now: the stage of their newest open deal, else their status (seed 004)."""
    if deal is not None:
        return str(deal.stage)
    return str(client.get_lifecycle_display())


@transaction.atomic
def mass_send_start(*, actor, channel: str, clients, digest: str | None, subject: str, body: str,
                    action_type: str = "") -> MassSend:
    """Record the send, one delivery per client with an address, and the job that sends them
    (queued when the transaction commits). Clients without an address are counted. Nothing goes
    on the feed yet: each client's entry is written when their message is sent (or fails)."""
    gate.require(actor, gate.SEND_MESSAGES)
    body = (body or "").strip()
    if not body:
        raise ValidationError(_("Write the message."))
    if channel == MassSend.Channel.EMAIL and not (subject or "").strip():
        raise ValidationError(_("Write the subject."))
    ids = _lock_selection(clients.filter(deleted_at__isnull=True), digest)
    from clients.models import Client

    rows = list(Client.objects.filter(pk__in=ids).only("pk", "email", "phone"))
    address_of = (lambda c: c.email) if channel == MassSend.Channel.EMAIL else (lambda c: c.phone)
    reachable = [c for c in rows if address_of(c)]
    send = MassSend(channel=channel, subject=(subject or "").strip()[:150], body=body,
                    action_type=(action_type or "").strip()[:60], created_by=actor,
                    total=len(reachable), skipped=len(rows) - len(reachable))
    send.job = jobs.start(kind=Job.Kind.MASS_SEND, owner=actor, total=send.total, params={"send_id": str(send.pk)})
    send.save(force_insert=True)
    Delivery.objects.bulk_create([Delivery(mass_send=send, client=c, address=address_of(c)) for c in reachable], batch_size=2000)
    return send


@dataclass
class RunOutcome:
    """What one run did, and when the send's remaining work is due (None: nothing is left)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0  # failed for now, put back with the time of their next attempt
    later: float | None = None  # seconds until the earliest remaining delivery is due
    out_of_time: bool = False


def mass_send_run(*, send_id, progress=None, now: datetime | None = None, time_budget: float | None = None,
                  sole_runner: bool = False) -> RunOutcome:
    """One run of a send (its job's handler calls it; so may a test, with `now` to move time).

    Sends every delivery due at `now`, paced at MASS_SEND_RATE_PER_SECOND, and stops before
    `time_budget` seconds have passed (the pause between two messages never runs past it): the
    outcome then says `out_of_time` and the job comes straight back. `progress`
    (crm.jobs.Progress) hears how many deliveries are finished, sent or failed. With
    `sole_runner` (crm.jobs.sole_runner: no other run can be alive) deliveries an earlier run left
    claimed are taken back at once instead of after JOB_STALE_SECONDS."""
    send = MassSend.objects.select_related("created_by").get(pk=send_id)
    clock = (lambda: now) if now is not None else timezone.now
    deadline = time.monotonic() + time_budget if time_budget is not None else None
    outcome = RunOutcome()
    ticker = _Ticker(progress)
    with override(send.created_by.language or None):  # reasons on the feed: in the sender's language
        _release_stale_claims(send, clock(), at_once=sole_runner)
        if progress is not None:
            progress(Delivery.objects.filter(mass_send=send, status__in=Delivery.FINISHED).count(), total=send.total)
        pace = _Pace(settings.MASS_SEND_RATE_PER_SECOND)
        with _Outbox(send) as outbox:
            while batch := _due(send, clock()):
                steps = _steps(batch)
                for delivery in batch:
                    if not pace.wait(deadline):
                        outcome.out_of_time = True
                        ticker.flush()
                        outcome.later = 1.0
                        return outcome
                    if not _claim(delivery, clock()):
                        continue  # another run took it
                    _attempt(send, delivery, outbox, clock(), steps[delivery.client_id], outcome, ticker)
        ticker.flush()
        outcome.later = _next_due_in(send, clock())
    return outcome


def _release_stale_claims(send: MassSend, now: datetime, *, at_once: bool = False) -> None:
    """Deliveries a dead run left claimed (sending) for longer than JOB_STALE_SECONDS become
    pending again, due at once; one whose last allowed attempt was interrupted fails (a message
    that kills its worker every time must not stop the send for good)."""
    cutoff = now if at_once else now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    stale = Delivery.objects.filter(mass_send=send, status=Delivery.Status.SENDING, claimed_at__lte=cutoff)
    hopeless = list(stale.filter(attempts__gte=MAX_ATTEMPTS).select_related("client"))
    if hopeless:
        steps = _steps(hopeless)
        reason = _("Its last attempt was interrupted and no attempt is left.")
        for delivery in hopeless:
            _mark_failed(send, delivery, reason, steps[delivery.client_id])
    stale.update(status=Delivery.Status.PENDING, next_attempt_at=None)


def _due(send: MassSend, now: datetime) -> list[Delivery]:
    return list(
        Delivery.objects.filter(mass_send=send, status=Delivery.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .select_related("client").only("pk", "mass_send_id", "client_id", "address", "attempts", "client__lifecycle")
        .order_by("pk")[:BATCH]
    )


def _steps(deliveries: list[Delivery]) -> dict[int, str]:
    """Each recipient's current step, for the feed entry: one query for the batch."""
    from deals.models import Deal

    newest: dict[int, Deal] = {}
    deals = Deal.objects.filter(client_id__in={d.client_id for d in deliveries}, deleted_at__isnull=True)
    for deal in deals.select_related("stage").order_by("client_id", "-created_at"):
        newest.setdefault(deal.client_id, deal)
    return {d.client_id: current_step(d.client, newest.get(d.client_id)) for d in deliveries}


def _claim(delivery: Delivery, now: datetime) -> bool:
    """pending → sending, committed before the message leaves: only the run that wins it sends it."""
    claimed = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    delivery.attempts += 1
    return bool(claimed)


def _attempt(send, delivery, outbox, now, step, outcome: RunOutcome, ticker) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        provider_id = outbox.deliver(delivery)
    except SoftTimeLimitExceeded:
        raise  # out of time mid-message: it stays claimed, the next run looks at it once stale
    except Exception as error:
        reason = failure_reason(error, send.channel)
        if is_permanent(error) or delivery.attempts >= MAX_ATTEMPTS:
            log.warning("delivery %s failed for good (attempt %s): %s", delivery.pk, delivery.attempts, reason)
            _mark_failed(send, delivery, reason, step)
            outcome.failed += 1
            ticker.add()
            return
        if not isinstance(error, (SendError, OSError)):
            log.exception("delivery %s: unexpected error, retried", delivery.pk)
        delay = RETRY_DELAYS[delivery.attempts - 1] * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.PENDING, next_attempt_at=now + timedelta(seconds=delay), error=reason[:300])
        outcome.retried += 1
        return
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENT, sent_at=now, provider_id=provider_id[:100],
                                                       next_attempt_at=None)
        _feed(send, delivery, step)
    outcome.sent += 1
    ticker.add()


def _mark_failed(send, delivery, reason: str, step: str) -> None:
    with transaction.atomic():
        if Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.FAILED, error=reason[:300], next_attempt_at=None):
            _feed(send, delivery, step, failure=reason)


def _feed(send: MassSend, delivery: Delivery, step: str, failure: str | None = None) -> None:
    """The client's feed entry, written when the message went out (or failed for good): what was
    sent, the action type, the step the client was at; a failure keeps its reason instead of the
    text (the send keeps the text)."""
    headline = f"{MassSend.Channel(send.channel).label}: {send.subject or send.body[:80]}"
    activity.record(client_id=delivery.client_id, actor=send.created_by, kind=Activity.Kind.MESSAGE,
                    field=send.channel + (FAILED_SUFFIX if failure is not None else ""), field_label=step,
                    old=send.action_type, new=headline, text=failure if failure is not None else send.body[:999])


def is_permanent(error: Exception) -> bool:
    """A refusal retrying cannot change: the gateway's 4xx, SMTP 5xx for the recipient or the
    message, an address the message cannot carry. A refused sender or login is our own
    configuration: retried, so there is time to fix it."""
    if isinstance(error, SendRefused):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _reply in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return isinstance(error, ValueError)  # an invalid address (Django's prep_address), a header with a newline


def failure_reason(error: Exception, channel: str) -> str:
    """The reason the feed and the send show, in the sender's language."""
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        code, reply = next(iter(error.recipients.values()))
        return _("The mail server refused the address: %(reply)s") % {"reply": _smtp_reply(code, reply)}
    if isinstance(error, smtplib.SMTPResponseException):
        return _("The mail server refused the message: %(reply)s") % {"reply": _smtp_reply(error.smtp_code, error.smtp_error)}
    if isinstance(error, ValueError):
        return _("Invalid address.")
    if isinstance(error, SendRefused):
        return _("The SMS gateway refused the message: %(reply)s") % {"reply": str(error)}
    if isinstance(error, SendError) and channel == MassSend.Channel.SMS:
        return _("The SMS gateway did not take the message: %(reply)s") % {"reply": str(error)}
    if isinstance(error, OSError):
        return _("The mail server could not be reached: %(error)s") % {"error": str(error) or type(error).__name__}
    return f"{type(error).__name__}: {error}"


def _smtp_reply(code, reply) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {text}".strip()


def _next_due_in(send: MassSend, now: datetime) -> float | None:
    """Seconds until the send's remaining work is due: the earliest retry, or a claim another run
    holds becoming stale; None when every delivery is sent or failed."""
    left = Delivery.objects.filter(mass_send=send, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]).aggregate(
        n=Count("pk"),
        due_now=Count("pk", filter=Q(status=Delivery.Status.PENDING, next_attempt_at__isnull=True)),
        next_retry=Min("next_attempt_at", filter=Q(status=Delivery.Status.PENDING)),
        oldest_claim=Min("claimed_at", filter=Q(status=Delivery.Status.SENDING)),
    )
    if not left["n"]:
        return None
    moments = [now] if left["due_now"] else []
    if left["next_retry"]:
        moments.append(left["next_retry"])
    if left["oldest_claim"]:
        moments.append(left["oldest_claim"] + timedelta(seconds=settings.JOB_STALE_SECONDS))
    return max(0.0, (min(moments) - now).total_seconds())


class _Outbox:
    """The channel for one run: one SMTP connection reused for every message (opened again after
    an error), or the SMS backend."""

    def __init__(self, send: MassSend):
        self.send = send
        self.mailer: BaseEmailBackend | None = None
        self.sms: Any = None  # the SMS_BACKEND's class: send(to=, text=, key=) -> str

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        if self.mailer is not None:
            mailer, self.mailer = self.mailer, None
            try:
                mailer.close()
            except Exception:  # a connection already gone: nothing to say goodbye to
                log.debug("closing the mail connection", exc_info=True)

    def deliver(self, delivery: Delivery) -> str:
        if self.send.channel == MassSend.Channel.SMS:
            if self.sms is None:
                self.sms = sms_backend()
            return self.sms.send(to=delivery.address, text=self.send.body, key=delivery.key)
        message = EmailMessage(subject=self.send.subject, body=self.send.body, to=[delivery.address],
                               headers={"Message-ID": f"<{delivery.key}@voronka>"})
        try:
            if self.mailer is None:
                self.mailer = mailers.default
                self.mailer.open()
            self.mailer.send_messages([message])
        except BaseException:  # the conversation is in doubt: the next message opens a new connection
            self.close()
            raise
        return delivery.key


class _Pace:
    """MASS_SEND_RATE_PER_SECOND: a message at most every 1/rate seconds. The pause before the
    next one is never taken when it would end past the run's deadline."""

    def __init__(self, rate: int):
        self.gap = 1.0 / rate if rate else 0.0
        self.next_at = 0.0

    def wait(self, deadline: float | None) -> bool:
        now = time.monotonic()
        at = max(now, self.next_at)
        if deadline is not None and at >= deadline:
            return False
        if at > now:
            time.sleep(at - now)
        self.next_at = at + self.gap
        return True


class _Ticker:
    """Finished deliveries reported to the job's progress at most every PROGRESS_EVERY_S."""

    def __init__(self, progress):
        self.progress = progress
        self.count = 0
        self.last = time.monotonic()

    def add(self) -> None:
        self.count += 1
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.progress is not None and self.count:
            self.progress(add=self.count)
        self.count = 0
        self.last = time.monotonic()

