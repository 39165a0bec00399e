"""The send's state and end are its job's (0003 copied them there)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("messenger", "0003_masssend_job_delivery_next_attempt_at")]

    operations = [
        migrations.RemoveField(model_name="masssend", name="finished_at"),
        migrations.RemoveField(model_name="masssend", name="status"),
    ]
