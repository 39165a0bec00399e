"""Bulk "Add task" runs move onto crm.Job (issue 12): each BulkTaskJob becomes a Job of kind
bulk_task with the same id, so Task.batch keeps pointing at its job, and what it was to create
goes into Job.params. Unfinished ones are picked up by the jobs sweep (their heartbeat is old)."""

from django.db import migrations


def to_jobs(apps, schema_editor):
    BulkTaskJob = apps.get_model("tasks", "BulkTaskJob")
    Job = apps.get_model("crm", "Job")
    for old in BulkTaskJob.objects.all().iterator():
        stamp = old.finished_at or old.created_at
        Job.objects.create(
            id=old.id, kind="bulk_task", owner_id=old.created_by_id, state=old.status, total=old.total, done=old.done,
            params={"client_ids": old.client_ids, "type": old.type_id, "description": old.description,
                    "responsible": old.responsible_id, "deadline": old.deadline.isoformat()},
            heartbeat_at=stamp, finished_at=old.finished_at,
        )
        Job.objects.filter(pk=old.id).update(created_at=old.created_at)  # auto_now_add stamped it now


def from_jobs(apps, schema_editor):
    from datetime import datetime

    BulkTaskJob = apps.get_model("tasks", "BulkTaskJob")
    Job = apps.get_model("crm", "Job")
    for job in Job.objects.filter(kind="bulk_task").iterator():
        p = job.params
        BulkTaskJob.objects.create(
            id=job.id, created_by_id=job.owner_id, client_ids=p["client_ids"], description=p["description"],
            type_id=p["type"], responsible_id=p["responsible"], deadline=datetime.fromisoformat(p["deadline"]),
            total=job.total, done=job.done, status=job.state, finished_at=job.finished_at,
        )
        BulkTaskJob.objects.filter(pk=job.id).update(created_at=job.created_at)
    Job.objects.filter(kind="bulk_task").delete()


class Migration(migrations.Migration):
    dependencies = [("tasks", "0002_defaults"), ("crm", "0009_job")]
    operations = [
        migrations.RunPython(to_jobs, from_jobs),
        migrations.DeleteModel(name="BulkTaskJob"),
    ]
