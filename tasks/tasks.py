"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, max_retries=3)
def tasks_bulk_run(job_id: str) -> int:
    return services.tasks_bulk_run(job_id=job_id).done


@shared_task(acks_late=True)
def reminders_send() -> int:
    return services.reminders_send()
