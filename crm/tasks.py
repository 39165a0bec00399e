"""Celery tasks of the job model: each calls crm.jobs and does nothing else."""

from celery import shared_task

from . import jobs


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1500, time_limit=1800)
def job_run(job_id: str) -> str | None:
    job = jobs.run(job_id)
    return job.state if job else None


@shared_task(acks_late=True)
def jobs_resume() -> list[str]:
    return jobs.resume()


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300)
def events_process() -> int:
    from . import events

    return events.process()


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def events_sweep() -> int:
    from . import events

    return events.sweep()
