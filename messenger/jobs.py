"""The mass send's run as a crm.Job (issue 12): the job model claims it, stamps its heartbeat and
queues it again when its worker died; messenger.services.mass_send_run does the sending."""

from django.conf import settings

from crm import jobs
from crm.models import Job

from . import services

# A run stops at this share of its task's soft time limit (1350 s of job_run's 1500 s), leaving the
# rest for the message in flight (SMTP_TIMEOUT, SMS_GATEWAY_TIMEOUT: 10-15 s) and the job's bookkeeping.
TIME_BUDGET_SHARE = 0.9


@jobs.handler(Job.Kind.MASS_SEND)
def run_send(job: Job, progress: jobs.Progress) -> None:
    """Send what is due; when deliveries wait for a retry (or the run ran out of time), the job
    comes back when the earliest is due."""
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        outcome = services.mass_send_run(send_id=job.params["send_id"], progress=progress, time_budget=time_budget(),
                                         sole_runner=jobs.sole_runner())
    except SoftTimeLimitExceeded:  # a message outlasted the budget: it stays claimed until its claim is stale
        later = settings.JOB_STALE_SECONDS + 1.0
    else:
        if outcome.later is None:
            return  # every delivery sent or failed: the job is done
        later = outcome.later
    # A pause the send asked for is not an interruption: crm.jobs gives the attempt back and
    # keeps the sweep away until the pause is over.
    raise jobs.JobLater(later)


def time_budget() -> float | None:
    """Seconds this run may take: most of the soft time limit of the task running it (None
    outside a worker)."""
    from celery import current_task

    if not current_task or current_task.request.called_directly:
        return None
    soft = (current_task.request.timelimit or (None, None))[1] or current_task.soft_time_limit \
        or current_task.app.conf.task_soft_time_limit
    return soft * TIME_BUDGET_SHARE if soft else None
