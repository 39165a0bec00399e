"""The import's run as a crm.Job (issue 12): the job model claims, stamps and sweeps it; the
import itself keeps its chunk commits, its advisory lock and its own resume point."""

from crm import jobs
from crm.models import Job

from . import services
from .models import ImportJob


@jobs.handler(Job.Kind.IMPORT)
def run_import(job: Job, progress: jobs.Progress) -> None:
    done = services.import_run(job_id=job.params["import_id"], progress=progress)
    if done.status == ImportJob.Status.FAILED:
        raise jobs.JobFailed(done.error)
    if done.status in ImportJob.ACTIVE:  # out of time, or another runner holds it: look again shortly
        raise jobs.JobLater(5)
