"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from . import services


# Imports run as crm.Job (imports/jobs.py) since issue 12; this task stays for messages queued
# before that. Late acknowledgement: a message whose worker died is not lost.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1500, time_limit=1800)
def import_run(job_id: str) -> str:
    return services.import_run(job_id=job_id).status


@shared_task
def imports_resume(at_worker_start: bool = False) -> list[str]:
    return services.imports_resume(at_worker_start=at_worker_start)


@shared_task
def imports_cleanup() -> int:
    return services.imports_cleanup()
