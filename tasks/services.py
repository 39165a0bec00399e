"""Writes to tasks. Each checks the gate, owns its transaction and records the client's feed."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import activity, jobs
from crm import permissions as gate
from crm.models import Activity, Job, Notification

from .models import DESCRIPTION_MAX, Task, TaskType

log = logging.getLogger(__name__)
User = get_user_model()
BULK_INLINE_LIMIT = 200  # above this, a mass "Add task" runs in the worker with a progress bar
BULK_CHUNK = 500  # tasks per committed chunk: what a crash can cost, and how long the job's row stays locked


def _clean(description: str) -> str:
    description = (description or "").strip()
    if not description:
        raise ValidationError(_("Describe the task."))
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError(_("A task description can have at most %(n)s characters.") % {"n": DESCRIPTION_MAX})
    return description


@transaction.atomic
def task_create(*, actor, client, type: TaskType, description: str, responsible, deadline, deal=None, step=None) -> Task:
    """A task; with `step`, an action at that step of a lead (seed 004, clients.leads)."""
    gate.require(actor, gate.ADD_TASK)
    task = Task.objects.create(
        client=client, deal=deal, type=type, description=_clean(description), responsible=responsible,
        deadline=deadline, created_by=actor, step=step,
    )
    activity.record(client_id=client.pk, deal_id=deal.pk if deal else None, actor=actor, kind=Activity.Kind.TASK,
                    field="created", new=f"{type}: {task.description}", text=str(task.pk))
    if responsible is not None and responsible.pk != actor.pk:
        activity.notify(user=responsible, kind=Notification.Kind.ASSIGNED, actor=actor, url=task.get_absolute_url(),
                        params={"about": "task"}, text=task.description)
    return task


def task_create_automatic(*, by: str, client, type: TaskType, description: str, responsible, deadline, deal=None) -> Task:
    """A task an automation sets (a robot named `by`): no author and no permission asked (the
    caller decided); the feed has it, and the responsible is told."""
    task = Task.objects.create(client=client, deal=deal, type=type, description=_clean(description), responsible=responsible,
                               deadline=deadline, created_by=None)
    activity.record(client_id=client.pk, deal_id=deal.pk if deal else None, actor=None, kind=Activity.Kind.TASK,
                    field="created", new=f"{type}: {task.description}", text=str(task.pk))
    if responsible is not None:
        activity.notify(user=responsible, kind=Notification.Kind.ASSIGNED, actor=None, url=task.get_absolute_url(),
                        params={"about": "task", "actor": by}, text=task.description)
    return task


@transaction.atomic
def task_complete(*, actor, task: Task, result: str) -> Task:
    gate.require(actor, gate.CHANGE_TASK)
    updated = Task.objects.filter(pk=task.pk, status=Task.Status.OPEN).update(
        status=Task.Status.DONE, result=(result or "").strip()[:2000], completed_at=timezone.now(), completed_by=actor
    )
    if not updated:
        raise ValidationError(_("The task is already done."))
    task.refresh_from_db()
    activity.record(client_id=task.client_id, deal_id=task.deal_id, actor=actor, kind=Activity.Kind.TASK,
                    field="done", new=task.description, text=task.result)
    return task


# Mass "Add task" (seed 002): admin-only by default, one task per client, safe to retry ---------


@transaction.atomic
def tasks_bulk_start(*, actor, client_ids: list[int], type: TaskType, description: str, responsible, deadline) -> Job:
    """A task for each client, as a crm.Job of kind bulk_task: run here for up to
    BULK_INLINE_LIMIT clients (the job is done when this returns), else queued for the worker."""
    gate.require(actor, gate.ADD_TASKS_BULK)
    ids = sorted(set(client_ids))
    params = {"client_ids": ids, "type": type.pk, "description": _clean(description),
              "responsible": responsible.pk if responsible is not None else None, "deadline": deadline.isoformat()}
    if len(ids) > BULK_INLINE_LIMIT:
        return jobs.start(kind=Job.Kind.BULK_TASK, owner=actor, total=len(ids), params={**params, "notify": True})
    now = timezone.now()
    job = Job.objects.create(kind=Job.Kind.BULK_TASK, owner=actor, total=len(ids), params=params, state=Job.State.RUNNING,
                             attempts=1, started_at=now, heartbeat_at=now)
    tasks_bulk_run(job=job, progress=jobs.Progress(job))
    jobs.finish(job)
    job.refresh_from_db()
    return job


def tasks_bulk_run(*, job: Job, progress: jobs.Progress) -> None:
    """Create the job's tasks chunk by chunk, each chunk in its own transaction. Each task carries
    the job id and the database allows one per (job, client); the job's `done` is the resume
    point, moved in the chunk's transaction: a run after a crash starts where the last one
    committed, and never doubles a task, its feed entry or the responsible's notification."""
    p = job.params
    type = TaskType.objects.filter(pk=p["type"]).first()
    if type is None:
        raise jobs.JobFailed(_("The task type was deleted meanwhile; no more tasks were added."))
    responsible = User.objects.filter(pk=p["responsible"]).first() if p["responsible"] else None
    deadline, description, actor = datetime.fromisoformat(p["deadline"]), p["description"], job.owner
    ids: list[int] = p["client_ids"]
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start : start + BULK_CHUNK]
        end = start + len(chunk)
        with transaction.atomic():
            # The job's row first: two runs of one job (the sweep queued it again while a slow
            # run still worked) take chunks in turn, and each sees how far the other got.
            if Job.objects.select_for_update().filter(pk=job.pk).values_list("done", flat=True).get() >= end:
                continue
            existing = set(Task.objects.filter(batch=job.pk, client_id__in=chunk).values_list("client_id", flat=True))
            fresh = [pk for pk in chunk if pk not in existing]
            Task.objects.bulk_create(
                [Task(client_id=pk, type=type, description=description, responsible=responsible,
                      deadline=deadline, created_by=actor, batch=job.pk) for pk in fresh],
                ignore_conflicts=True,
            )
            activity.record_many([
                activity.entry(client_id=pk, actor=actor, kind=Activity.Kind.TASK, field="created",
                               new=f"{type}: {description}") for pk in fresh
            ])
            progress(end)
            if end == len(ids) and responsible is not None:  # told once, with the chunk that ends the job
                activity.notify(user=responsible, kind=Notification.Kind.ASSIGNED, actor=actor,
                                url="/tasks/?view=mine", params={"about": "tasks", "n": len(ids)}, text=description)


# Reminders ------------------------------------------------------------------------------------


def reminders_send(*, now=None, crash_after: int | None = None) -> int:
    """Notify responsibles before a deadline and again once it has passed. Each reminder is
    claimed by a conditional UPDATE in the transaction that writes its notification, so two runs
    at once, or a run after a worker died half way, send every reminder exactly once.
    (crash_after is for the test that stops a run half way.)"""
    now = now or timezone.now()
    before = timedelta(minutes=settings.TASK_REMINDER_BEFORE_MINUTES)
    due_soon = Task.objects.filter(status=Task.Status.OPEN, reminded_before_at__isnull=True,
                                   deadline__gt=now, deadline__lte=now + before)
    overdue = Task.objects.filter(status=Task.Status.OPEN, reminded_overdue_at__isnull=True, deadline__lte=now)
    sent = 0
    for kind, queryset, field in (("soon", due_soon, "reminded_before_at"), ("overdue", overdue, "reminded_overdue_at")):
        for task in queryset.select_related("responsible", "client").order_by("deadline")[:5000]:
            if crash_after is not None and sent >= crash_after:
                raise RuntimeError("worker died")
            if _remind(task, kind, field, now):
                sent += 1
    return sent


def _remind(task: Task, kind: str, field: str, now) -> bool:
    with transaction.atomic():
        due = Q(deadline__lte=now) if kind == "overdue" else Q(deadline__gt=now)
        claimed = Task.objects.filter(due, pk=task.pk, status=Task.Status.OPEN, **{f"{field}__isnull": True}).update(**{field: now})
        if not claimed or task.responsible is None:
            return False
        user = task.responsible
        notification = activity.notify(
            user=user, kind=Notification.Kind.REMINDER, actor=None, url=task.get_absolute_url(), text=task.description,
            params={"about": kind, "due": activity.utc_iso(task.deadline), **activity.client_params(task.client)},
        )
        if notification is not None and user.email_reminders and user.email:
            transaction.on_commit(lambda: _email(user, notification))
    return True


def _email(user, notification: Notification) -> None:
    """The reminder by email, worded as the user reads the app: their language and time zone."""
    text = activity.notification_text_for(user, notification)
    try:
        send_mail(subject=text[:78], message=text, from_email=None, recipient_list=[user.email])
    except OSError:  # the reminder is in the app already; mail is a courtesy copy
        log.exception("reminder email to %s failed", user.email)


@transaction.atomic
def task_type_save(*, actor, type: TaskType | None, name: str) -> TaskType:
    gate.require(actor, gate.CONFIGURE_TASK_TYPES)
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationError(_("Give the type a name of at most 60 characters."))
    if type is None:
        last = TaskType.objects.order_by("-position").values_list("position", flat=True).first() or 0
        return TaskType.objects.create(name=name, position=last + 1)
    TaskType.objects.filter(pk=type.pk).update(name=name, is_default_name=False)
    type.refresh_from_db()
    return type
