"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from . import import_services


@shared_task(acks_late=True)
def import_run(job_id: str) -> str:
    return import_services.import_run(job_id=job_id).status
