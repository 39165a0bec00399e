"""The worker's side of bulk "Add task" (a crm.Job of kind bulk_task): tasks.services does the
work, in the owner's language (the feed's words and any refusal read as they would in the request)."""

from django.utils.translation import override

from crm import jobs
from crm.models import Job

from . import services


@jobs.handler(Job.Kind.BULK_TASK)
def bulk_task(job: Job, progress: jobs.Progress) -> None:
    with override(job.owner.language or None):
        services.tasks_bulk_run(job=job, progress=progress)
