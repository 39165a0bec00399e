"""One job model for every long piece of work (issue 12).

A service starts a job (`start`) and names a handler for its kind (`handler`). The worker runs
it (`run`, the Celery task crm.tasks.job_run): the run first *claims* the job with a conditional
UPDATE, so a redelivered message, a second worker or the sweep's extra message never makes two
runs at once; a heartbeat thread then stamps the row every few seconds while the handler works.
A worker killed with SIGKILL stops its heartbeat and drops its PostgreSQL advisory lock on the
job: the beat sweep (`resume`, every 30 s and when a worker starts) queues again every running
job whose lock is free, and any job whose heartbeat is older than JOB_STALE_SECONDS (the rule
without PostgreSQL, and for a message lost on the way), and the handler continues from what it
committed (each handler is written to be re-run: it skips what is
done). A handler that raises marks the job failed with a message for the user; what it committed
stays.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from . import locks
from .models import Job

log = logging.getLogger(__name__)

Handler = Callable[["Job", "Progress"], None]
HANDLERS: dict[str, Handler] = {}


class JobFailed(Exception):
    """Raised by a handler to end its job as failed with this message for the user."""


class JobLater(Exception):  # a signal, not an error
    """Raised by a handler whose remaining work is due later (a delivery retried after a
    backoff): the job goes back to queued and its message is sent again with this countdown.
    Should that message be lost, the sweep queues the job after JOB_STALE_SECONDS and the
    handler, finding nothing due yet, says later again."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = max(1.0, float(seconds))


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that does the work of a job kind."""

    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def start(*, kind: str, owner, total: int = 0, params: dict | None = None) -> Job:
    """Create a queued job; its message goes to the broker when the transaction commits."""
    job = Job.objects.create(kind=kind, owner=owner, total=total, params=params or {}, heartbeat_at=timezone.now())
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id, countdown: float | None = None) -> None:
    from .tasks import job_run

    job_run.apply_async((str(job_id),), countdown=countdown)


class Progress:
    """What a handler reports: how far it got (and the total when it learns it)."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self, done: int | None = None, *, total: int | None = None, add: int = 0) -> None:
        changes: dict = {"heartbeat_at": timezone.now()}
        if done is not None:
            changes["done"] = done
            self.job.done = done
        if add:
            changes["done"] = F("done") + add
            self.job.done += add
        if total is not None:
            changes["total"] = total
            self.job.total = total
        Job.objects.filter(pk=self.job.pk).update(**changes)


def _claim(job_id) -> Job | None:
    """queued → running, for one runner only. A running job is taken over only when its
    heartbeat is stale (its runner died and the sweep has not got to it yet)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    claimed = Job.objects.filter(
        Q(state=Job.State.QUEUED) | Q(state=Job.State.RUNNING, heartbeat_at__lt=stale), pk=job_id,
    ).update(state=Job.State.RUNNING, heartbeat_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    job = Job.objects.select_related("owner").get(pk=job_id)
    if job.started_at is None:
        Job.objects.filter(pk=job.pk).update(started_at=now)
    return job


class _Heartbeat(threading.Thread):
    """Stamps the job every JOB_HEARTBEAT_SECONDS from its own connection while the handler works."""

    def __init__(self, job_id):
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.job_id = job_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(heartbeat_at=timezone.now())
        finally:
            connection.close()


def finish(job: Job, *, state=Job.State.DONE, error: str = "") -> None:
    changes = {"state": state, "finished_at": timezone.now(), "heartbeat_at": timezone.now(), "error": error[:500]}
    if state == Job.State.DONE:
        changes["done"] = F("total")
    Job.objects.filter(pk=job.pk).update(**changes)


def _lock_name(job_id) -> str:
    return f"job:{job_id}"


def sole_runner() -> bool:
    """Inside a handler: whether no other run of this job can be alive. On PostgreSQL the runner
    lock makes it so, and whatever an earlier run left half done (claimed, never finished) was
    left by a dead run and may be taken back at once; elsewhere a handler waits for such claims to
    go stale (JOB_STALE_SECONDS)."""
    return connection.vendor == "postgresql"


def run(job_id) -> Job | None:
    """Run a job if this worker wins its claim; None when another runner has it or it is over."""
    # The runner holds the job's lock for the run (crm.locks): the sweep sees a killed one at once.
    with locks.held(_lock_name(job_id)) as alone:
        if not alone:
            return None
        return _run(job_id)


def _run(job_id) -> Job | None:
    job = _claim(job_id)
    if job is None:
        return None
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        with override(job.owner.language or None):
            finish(job, state=Job.State.FAILED, error=_("The job was interrupted too many times; what was done is kept."))
        job.refresh_from_db()
        return job
    beat = _Heartbeat(job.pk)
    beat.start()
    try:
        HANDLERS[job.kind](job, Progress(job))
    except (JobLater, SoftTimeLimitExceeded) as later:
        # Due later, or out of time: what is committed stays, a new run continues from there.
        # A planned pause is not an interruption (attempts given back), and the heartbeat is set
        # to when the job is due, so the sweep leaves it alone until then (and JOB_STALE_SECONDS).
        countdown = later.seconds if isinstance(later, JobLater) else 1.0
        Job.objects.filter(pk=job.pk).update(state=Job.State.QUEUED, attempts=F("attempts") - 1,
                                             heartbeat_at=timezone.now() + timedelta(seconds=countdown))
        transaction.on_commit(lambda: enqueue(job.pk, countdown=countdown))
        job.refresh_from_db()
        return job
    except JobFailed as failure:
        finish(job, state=Job.State.FAILED, error=str(failure))
    except Exception as error:  # the job must end with a message, never "running" forever
        log.exception("job %s (%s) failed", job.pk, job.kind)
        with override(job.owner.language or None):
            finish(job, state=Job.State.FAILED,
                   error=_("Something went wrong (%(error)s); what was done is kept.") % {"error": type(error).__name__})
    else:
        finish(job)
    finally:
        beat.stopped.set()
        beat.join()
    job.refresh_from_db()
    if job.params.get("notify"):
        _notify_owner(job)
    return job


def _notify_owner(job: Job) -> None:
    """The owner hears of a finished job they may have left (an export's download link)."""
    from . import activity
    from .models import Notification

    activity.notify(user=job.owner, kind=Notification.Kind.JOB, actor=None, url=job.get_absolute_url(),
                    params={"job_kind": job.kind, "n": job.total, "failed": job.state == Job.State.FAILED})


def resume() -> list[str]:
    """The sweep: queue again every unfinished job whose heartbeat is older than
    JOB_STALE_SECONDS (a running job whose worker died, or a queued one whose message was lost).
    Re-queuing stamps the heartbeat, so a job waiting behind a busy worker gets at most one
    extra message per JOB_STALE_SECONDS, and the claim lets only one of them run."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    ids = list(Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING], heartbeat_at__lt=stale)
               .values_list("pk", flat=True))
    if ids:
        Job.objects.filter(pk__in=ids, heartbeat_at__lt=stale).update(state=Job.State.QUEUED, heartbeat_at=now)
    # A running job whose runner's lock is free has no runner, however fresh its heartbeat.
    for pk, beat in Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__gte=stale).values_list("pk", "heartbeat_at"):
        if locks.holder_gone(_lock_name(pk)) and Job.objects.filter(pk=pk, state=Job.State.RUNNING, heartbeat_at=beat).update(
            state=Job.State.QUEUED, heartbeat_at=now
        ):
            ids.append(pk)
    for pk in ids:
        enqueue(pk)
    return [str(pk) for pk in ids]
