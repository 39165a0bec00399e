"""The Celery app. Periodic jobs are scheduled in code with beat_schedule."""

import os

from celery import Celery
from celery.signals import worker_ready

# Workers and beat run production settings unless told otherwise: a worker started without
# DJANGO_SETTINGS_MODULE must not run with DEBUG on, and without SECRET_KEY it refuses to start.
# Development (scripts/run), the tests (scripts/test, tests/conftest.py) and bench/ say which.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.prod")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = {
    # Task reminders (issue 6): due soon and overdue, each sent once (tasks.services.reminders_send).
    "tasks-reminders": {"task": "tasks.tasks.reminders_send", "schedule": 60.0},
    # Imports whose runner died are re-queued (imports.services.imports_resume); old uploads go.
    "imports-resume": {"task": "imports.tasks.imports_resume", "schedule": 20.0},
    "imports-cleanup": {"task": "imports.tasks.imports_cleanup", "schedule": 24 * 3600.0},
    # Jobs whose heartbeat stopped (their worker died) are queued again (crm.jobs.resume).
    "jobs-resume": {"task": "crm.tasks.jobs_resume", "schedule": 30.0},
    # Shifts left open past the idle limit are closed; queues are drained (deals.shifts.sweep).
    "shifts-sweep": {"task": "deals.tasks.shifts_sweep", "schedule": 60.0},
    # Inbound deliveries not yet processed, replies due, mailboxes to poll (messenger.sweep).
    "messenger-sweep": {"task": "messenger.tasks.messenger_sweep", "schedule": 10.0},
    # Events a dispatch missed (crm.events); timed robots that are due, robot runs of a dead worker (robots.engine).
    "events-sweep": {"task": "crm.tasks.events_sweep", "schedule": 30.0},
    "robots-sweep": {"task": "robots.tasks.robots_sweep", "schedule": 30.0},
}
app.autodiscover_tasks()


@worker_ready.connect
def resume_at_worker_start(sender=None, **kwargs):
    """A worker that (re)starts looks at once for imports a dead worker left running."""
    sender.app.send_task("imports.tasks.imports_resume", kwargs={"at_worker_start": True})
    # Jobs a worker killed just before this one started are not stale yet: look again once they are.
    from django.conf import settings

    sender.app.send_task("crm.tasks.jobs_resume")
    sender.app.send_task("crm.tasks.jobs_resume", countdown=settings.JOB_STALE_SECONDS + 1)
