"""Bulk "Add task" as a crm.Job (issue 12): the old BulkTaskJob rows carried over, and a real
worker killed half way through."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from crm import jobs
from crm.models import Activity, Job, Notification
from tasks import services
from tasks.models import Task, TaskType
from tests.conftest import HX, start_worker, stop_worker, wait_for
from tests.factories import UserFactory, role
from tests.tasks.crash import FAST_RESUME, client_row_locked, kill, wait_until_stuck

BEFORE, AFTER = [("tasks", "0002_defaults")], [("tasks", "0003_bulk_task_jobs_on_crm_job")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    """Every app at its newest migration (the schema the code and later tests expect)."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_bulk_task_jobs_into_jobs_with_the_same_id_and_an_unfinished_one_resumes():
    admin = UserFactory(role=role("Admin"))
    clients = Client.objects.bulk_create(Client(name=f"c{i}") for i in range(3))
    try:
        old = migrate(BEFORE)
        BulkTaskJob, OldTask = old.get_model("tasks", "BulkTaskJob"), old.get_model("tasks", "Task")
        deadline = timezone.now() + timedelta(days=2)
        finished = BulkTaskJob.objects.create(created_by_id=admin.pk, client_ids=[clients[0].pk], description="Done one",
                                              type_id=TaskType.objects.first().pk, deadline=deadline, total=1, done=1,
                                              status="done", finished_at=timezone.now())
        # A run that died after its first chunk: one task of three made.
        died = BulkTaskJob.objects.create(created_by_id=admin.pk, client_ids=[c.pk for c in clients], description="Half",
                                          type_id=TaskType.objects.first().pk, responsible_id=admin.pk, deadline=deadline,
                                          total=3, done=1, status="running")
        BulkTaskJob.objects.filter(pk=died.pk).update(created_at=timezone.now() - timedelta(hours=2))
        OldTask.objects.create(client_id=clients[0].pk, type_id=died.type_id, description="Half", deadline=deadline,
                               batch=died.pk, created_by_id=admin.pk, responsible_id=admin.pk)

        migrate(AFTER)
        migrate(latest())  # what came after (tasks.Task.step, ...): the schema the code below writes

        done = Job.objects.get(pk=finished.pk)
        assert (done.kind, done.owner, done.state, done.total, done.done) == ("bulk_task", admin, "done", 1, 1)
        assert done.params["description"] == "Done one" and done.params["client_ids"] == [clients[0].pk]
        half = Job.objects.get(pk=died.pk)
        assert (half.state, half.done, half.created_at < timezone.now() - timedelta(hours=1)) == ("running", 1, True)
        assert half.heartbeat_at < timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS)  # the sweep takes it
        jobs.run(half.pk)  # what the worker then runs: it continues from the old row's `done`
        half.refresh_from_db()
        assert half.state == "done"
        assert sorted(Task.objects.filter(batch=half.pk).values_list("client_id", flat=True)) == sorted(c.pk for c in clients)

        old = migrate(BEFORE)  # and back: the rows return as they are now
        back = old.get_model("tasks", "BulkTaskJob").objects.get(pk=died.pk)
        assert (back.status, back.done, back.client_ids) == ("done", 3, [c.pk for c in clients])
        assert not Job.objects.exists()
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_a_bulk_add_resumes_after_its_worker_is_killed(worker_queue, client):
    admin = UserFactory(role=role("Admin"))
    chunk = services.BULK_CHUNK
    n = 3 * chunk - 300  # three chunks: 500, 500, 200
    ids = sorted(c.pk for c in Client.objects.bulk_create(Client(name=f"Bulk {i:05}") for i in range(n)))
    client.force_login(admin)
    form = {"scope": "filter", "query": "q=Bulk", "confirm": "1", "description": "Позвонить",
            "type": TaskType.objects.first().pk, "responsible": admin.pk, "deadline": "2030-01-01T12:00"}
    first = start_worker(worker_queue, FAST_RESUME)
    try:
        with client_row_locked(ids[chunk + 100]):  # the second chunk's tasks wait on it
            confirm = client.post(reverse("tasks:bulk"), {"scope": "filter", "query": "q=Bulk"}, headers=HX).content.decode()
            digest = confirm.split('name="digest" value="')[1].split('"')[0]
            page = client.post(reverse("tasks:bulk"), {**form, "digest": digest}, headers=HX).content.decode()
            job = Job.objects.get()
            assert f'id="job-{job.pk}"' in page and "Adding tasks" in page  # the jobs' progress partial
            assert wait_until_stuck(job.pk, done=chunk), open(first.log_path).read()
            kill(first)
    finally:
        stop_worker(first)

    second = start_worker(worker_queue, FAST_RESUME)
    try:
        started = time.monotonic()
        assert wait_for(lambda: Job.objects.get(pk=job.pk).state == "done", 60), open(second.log_path).read()
        assert time.monotonic() - started < 60
    finally:
        stop_worker(second)
    job.refresh_from_db()
    assert (job.attempts, job.total, job.done) == (2, n, n)
    made = Task.objects.filter(batch=job.pk)
    assert made.count() == n and sorted(made.values_list("client_id", flat=True)) == ids  # each client exactly one
    assert Activity.objects.filter(kind=Activity.Kind.TASK, field="created").count() == n
    assert Notification.objects.filter(user=admin, kind="job").count() == 1
    progress = client.get(reverse("crm:job", args=[job.pk]), headers=HX).content.decode()
    assert f"{n:,} of {n:,}" in progress  # grouped in the reader's locale (English here)
