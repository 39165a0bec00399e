"""The worker's side of mass actions over more than BULK_INLINE_MAX clients (crm.Job kinds
bulk_responsible and bulk_delete): clients.services does the work, in the owner's language (the
feed's words and any refusal read as they would in the request). And the possible duplicates of an
import's clients, looked for once it is done (kind duplicates)."""

from django.utils.translation import override

from crm import jobs
from crm.models import Job

from . import duplicates, services


@jobs.handler(Job.Kind.BULK_RESPONSIBLE)
def bulk_responsible(job: Job, progress: jobs.Progress) -> None:
    with override(job.owner.language or None):
        services.clients_bulk_responsible_run(job=job, progress=progress)


@jobs.handler(Job.Kind.BULK_DELETE)
def bulk_delete(job: Job, progress: jobs.Progress) -> None:
    with override(job.owner.language or None):
        services.clients_bulk_delete_run(job=job, progress=progress)


@jobs.handler(Job.Kind.DUPLICATES)
def duplicates_of_an_import(job: Job, progress: jobs.Progress) -> None:
    duplicates.suggest_for_import(job.params["import"], progress=progress, start=job.done)
