"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from . import duplicates


# Late acknowledgement: a worker killed half way leaves the message to another (the lookup is idempotent).
@shared_task(acks_late=True, reject_on_worker_lost=True)
def duplicates_after_import(job_id: str) -> int:
    return duplicates.suggest_for_import(job_id)
