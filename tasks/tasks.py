"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from crm import jobs

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1500, time_limit=1800)
def tasks_bulk_run(job_id: str) -> str | None:
    """A message queued before bulk tasks moved onto crm.Job (tasks/0003 kept the id): run that
    job. New bulk tasks are queued as crm.tasks.job_run."""
    job = jobs.run(job_id)
    return job.state if job else None


@shared_task(acks_late=True)
def reminders_send() -> int:
    return services.reminders_send()
