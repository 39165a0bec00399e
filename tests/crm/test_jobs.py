"""The job model (issue 12): one claim per run, a heartbeat, the resume sweep, a failure that
says why, and the pages that show jobs to their owner (and to admins)."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from crm import jobs, locks
from crm.models import Job
from tests.conftest import HX
from tests.factories import UserFactory, role

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    """A handler of our own for the Export kind, recording what it was given."""
    seen = []

    def work(job, progress):
        seen.append((job.pk, job.attempts))
        progress(total=3)
        for n in range(1, 4):
            progress(n)
        if job.params.get("explode"):
            raise ValueError("boom")
        if job.params.get("refuse"):
            raise jobs.JobFailed("Nothing to export.")

    monkeypatch.setitem(jobs.HANDLERS, Job.Kind.EXPORT, work)
    return seen


def new_job(owner, **params):
    return Job.objects.create(kind=Job.Kind.EXPORT, owner=owner, params=params, heartbeat_at=timezone.now())


def test_a_job_runs_once_and_reports_progress(admin, calls):
    job = new_job(admin)
    done = jobs.run(job.pk)
    assert done.state == Job.State.DONE and (done.done, done.total) == (3, 3) and done.attempts == 1
    assert done.started_at and done.finished_at
    assert jobs.run(job.pk) is None  # a redelivered message finds it done: nothing runs again
    assert len(calls) == 1


def test_a_running_job_with_a_live_heartbeat_is_not_taken_twice(admin, calls):
    job = new_job(admin)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, heartbeat_at=timezone.now())
    assert jobs.run(job.pk) is None and calls == []


def test_a_stale_running_job_is_taken_over(admin, calls, settings):
    job = new_job(admin)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, attempts=1,
                                         heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 1))
    assert jobs.run(job.pk).state == Job.State.DONE and calls == [(job.pk, 2)]


def test_the_sweep_requeues_only_stale_unfinished_jobs(admin, settings, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda pk: queued.append(pk))
    old = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5)
    dead = new_job(admin)
    lost = new_job(admin)
    alive = new_job(admin)
    finished = new_job(admin)
    Job.objects.filter(pk=dead.pk).update(state=Job.State.RUNNING, heartbeat_at=old)
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=old)
    Job.objects.filter(pk=alive.pk).update(state=Job.State.RUNNING)
    Job.objects.filter(pk=finished.pk).update(state=Job.State.DONE, heartbeat_at=old)
    with runner_holding(alive):
        assert set(jobs.resume()) == {str(dead.pk), str(lost.pk)}
        assert set(queued) == {dead.pk, lost.pk}
        assert Job.objects.get(pk=dead.pk).state == Job.State.QUEUED
        assert jobs.resume() == []  # re-queuing stamped them: no second message for a minute
        assert Job.objects.get(pk=alive.pk).state == Job.State.RUNNING


def test_a_killed_runner_is_seen_at_once_by_its_free_lock(admin, monkeypatch):
    """A worker killed a second ago: its heartbeat is fresh but its advisory lock went with its
    connection, so the sweep queues the job again without waiting for the heartbeat to go stale."""
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda pk: queued.append(pk))
    orphan = new_job(admin)
    Job.objects.filter(pk=orphan.pk).update(state=Job.State.RUNNING, heartbeat_at=timezone.now())
    assert jobs.resume() == [str(orphan.pk)] and queued == [orphan.pk]


class runner_holding:
    """Another connection (another worker) holding a job's runner lock."""

    def __init__(self, job):
        self.job = job

    def __enter__(self):
        import psycopg
        from django.db import connection

        db = connection.settings_dict
        self.conn = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(%s)", [locks.key(jobs._lock_name(self.job.pk))])
        return self

    def __exit__(self, *exc):
        self.conn.execute("SELECT pg_advisory_unlock(%s)", [locks.key(jobs._lock_name(self.job.pk))])
        self.conn.close()  # a closed connection frees its locks only when its backend has ended


def test_too_many_interruptions_fail_the_job_with_a_message(admin, calls, settings):
    job = new_job(admin)
    Job.objects.filter(pk=job.pk).update(attempts=settings.JOB_MAX_ATTEMPTS)
    done = jobs.run(job.pk)
    assert done.state == Job.State.FAILED and "interrupted" in done.error and calls == []


def test_an_unexpected_error_fails_the_job_and_keeps_progress(admin, calls):
    done = jobs.run(new_job(admin, explode=True).pk)
    assert done.state == Job.State.FAILED and done.done == 3
    assert "ValueError" in done.error and "boom" not in done.error  # no internals beyond the kind


def test_a_handler_refusal_is_shown_as_written(admin, calls):
    done = jobs.run(new_job(admin, refuse=True).pk)
    assert (done.state, done.error) == (Job.State.FAILED, "Nothing to export.")


def test_the_error_is_in_the_owner_language(calls):
    owner = UserFactory(language="ru", role=role("Manager"))
    done = jobs.run(new_job(owner, explode=True).pk)
    assert "что сделано, сохранено" in done.error


def test_jobs_list_shows_mine_and_admins_see_all(client, admin, manager, other_manager):
    mine = new_job(manager)
    theirs = new_job(other_manager)
    client.force_login(manager)
    page = client.get(reverse("crm:jobs")).content.decode()
    assert reverse("crm:job", args=[mine.pk]) in page and reverse("crm:job", args=[theirs.pk]) not in page
    assert client.get(reverse("crm:job", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("crm:job-download", args=[theirs.pk])).status_code == 404
    client.force_login(admin)
    page = client.get(reverse("crm:jobs")).content.decode()
    assert reverse("crm:job", args=[theirs.pk]) in page and str(other_manager) in page


def test_progress_partial_polls_until_final_and_says_when_no_worker_runs(client, manager, settings):
    job = new_job(manager)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=2), total=10, done=4)
    client.force_login(manager)
    page = client.get(reverse("crm:job", args=[job.pk]), headers=HX).content.decode()
    assert 'hx-trigger="every 2s"' in page and "4 of 10" in page and "Waiting for a worker" in page
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, heartbeat_at=timezone.now())
    page = client.get(reverse("crm:job", args=[job.pk]), headers=HX).content.decode()
    assert "Waiting for a worker" not in page
    Job.objects.filter(pk=job.pk).update(state=Job.State.DONE)
    page = client.get(reverse("crm:job", args=[job.pk]), headers=HX).content.decode()
    assert "hx-trigger" not in page and "10 of 10" not in page or "Done" in page


def test_result_file_downloads_for_its_owner(client, manager, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = new_job(manager)
    job.result.save("clients.csv", ContentFile("a;b\n"), save=False)
    job.result_name = "clients.csv"
    job.save()
    client.force_login(manager)
    response = client.get(reverse("crm:job-download", args=[job.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"a;b\n"
    assert 'filename="clients.csv"' in response["Content-Disposition"]


@pytest.mark.parametrize("jobs_count", [1, 30])
def test_jobs_list_query_count(client, manager, django_assert_num_queries, jobs_count):
    for _ in range(jobs_count):
        new_job(manager)
    client.force_login(manager)
    with django_assert_num_queries(2):  # user with perms, jobs (with owners)
        client.get(reverse("crm:jobs"))


def test_later_puts_the_job_back_in_the_queue_with_a_countdown(admin, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda pk, countdown=None: sent.append((pk, countdown)))

    def work(job, progress):
        raise jobs.JobLater(90)

    monkeypatch.setitem(jobs.HANDLERS, Job.Kind.EXPORT, work)
    job = new_job(admin)
    with django_capture_on_commit_callbacks(execute=True):
        later = jobs.run(job.pk)
    assert later.state == Job.State.QUEUED and later.finished_at is None and sent == [(job.pk, 90.0)]
    assert later.attempts == 0  # a planned pause is not an interruption
    assert jobs.resume() == []  # the sweep leaves it alone until it is due
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(10):  # many pauses never add up to "interrupted too many times"
            Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
            assert jobs.run(job.pk).state == Job.State.QUEUED


def test_a_notified_job_tells_its_owner_in_their_language(calls, client):
    owner = UserFactory(language="en", role=role("Manager"))
    job = new_job(owner, notify=True)
    jobs.run(job.pk)
    client.force_login(owner)
    page = client.get(reverse("crm:notifications")).content.decode()
    assert "Export is ready (3)" in page and job.get_absolute_url() in page


def test_out_of_time_goes_back_to_the_queue_not_failed(admin, monkeypatch, django_capture_on_commit_callbacks):
    from celery.exceptions import SoftTimeLimitExceeded

    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda pk, countdown=None: sent.append(pk))

    def work(job, progress):
        progress(2, total=5)
        raise SoftTimeLimitExceeded()

    monkeypatch.setitem(jobs.HANDLERS, Job.Kind.EXPORT, work)
    job = new_job(admin)
    with django_capture_on_commit_callbacks(execute=True):
        again = jobs.run(job.pk)
    assert (again.state, again.done, again.error) == (Job.State.QUEUED, 2, "") and sent == [job.pk]


@pytest.mark.parametrize("others", [0, 30])
def test_job_progress_partial_query_count(client, manager, django_assert_num_queries, others):
    for _ in range(others):
        new_job(manager)
    job = new_job(manager)
    client.force_login(manager)
    with django_assert_num_queries(2):  # user with perms, the job (with its owner)
        client.get(reverse("crm:job", args=[job.pk]), headers=HX)
