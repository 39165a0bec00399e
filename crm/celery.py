"""The Celery app. Periodic jobs are scheduled in code with beat_schedule."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.dev")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = {
    # Task reminders (issue 6): due soon and overdue, each sent once (tasks.services.reminders_send).
    "tasks-reminders": {"task": "tasks.tasks.reminders_send", "schedule": 60.0},
    # Mass sends a dead worker left half done are picked up again (messenger.services).
    "mass-sends-resume": {"task": "messenger.tasks.mass_sends_resume", "schedule": 300.0},
}
app.autodiscover_tasks()
