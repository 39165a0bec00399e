"""Mass sends run as crm.Job (issue 12). Every existing send gets its job: an unfinished one a
queued job whose heartbeat is long past, so the jobs sweep (crm.tasks.jobs_resume, every 30 s)
sends what is left without anyone queuing it. The send's own status goes in 0004 (its own
transaction: PostgreSQL refuses to alter a table with pending deferred-constraint events)."""

import django.db.models.deletion
from django.db import migrations, models


def give_every_send_a_job(apps, schema_editor):
    MassSend = apps.get_model("messenger", "MassSend")
    Delivery = apps.get_model("messenger", "Delivery")
    Job = apps.get_model("crm", "Job")
    for send in MassSend.objects.filter(job__isnull=True).iterator():
        finished = Delivery.objects.filter(mass_send=send, status__in=["sent", "failed"]).count()
        done = send.status == "done"
        job = Job.objects.create(
            kind="mass_send", owner_id=send.created_by_id, params={"send_id": str(send.pk)},
            state="done" if done else "queued", total=send.total, done=send.total if done else finished,
            heartbeat_at=send.finished_at or send.created_at, started_at=send.created_at, finished_at=send.finished_at,
        )
        MassSend.objects.filter(pk=send.pk).update(job=job)


class Migration(migrations.Migration):
    dependencies = [("messenger", "0002_admin_may_send"), ("crm", "0009_job")]

    operations = [
        migrations.AddField(
            model_name="masssend",
            name="job",
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                       related_name="mass_send", to="crm.job"),
        ),
        migrations.AddField(
            model_name="delivery",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(give_every_send_a_job, migrations.RunPython.noop),
    ]
