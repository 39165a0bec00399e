"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from . import services


# Late acknowledgement: a message whose worker died is not lost. The time limits stay under the
# broker's visibility timeout (settings), so a live run is never handed to a second worker; a
# run out of time re-queues itself and continues from its last committed chunk.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1500, time_limit=1800)
def import_run(job_id: str) -> str:
    return services.import_run(job_id=job_id).status


@shared_task
def imports_resume(at_worker_start: bool = False) -> list[str]:
    return services.imports_resume(at_worker_start=at_worker_start)


@shared_task
def imports_cleanup() -> int:
    return services.imports_cleanup()
