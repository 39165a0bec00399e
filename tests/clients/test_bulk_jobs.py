"""Mass actions over more than BULK_INLINE_MAX clients run as a job (issue 12, point 4): the request
checks the confirmed set and hands exactly those ids to the job, which works through them in
chunks of BULK_JOB_CHUNK, each its own transaction locking only its rows."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from clients import services
from clients.models import Client
from crm import jobs
from crm.models import Activity, Job, Notification
from deals.models import Deal
from tests.clients.test_bulk import confirm, digest_of, run
from tests.conftest import HX, start_worker, stop_worker, wait_for
from tests.factories import ClientFactory, DealFactory, UserFactory, role
from tests.tasks.crash import FAST_RESUME, client_row_locked, kill, row_is_free, wait_until_stuck

MANY = services.BULK_INLINE_MAX + 1


def many_clients(n: int, name: str = "Bulk") -> list[int]:
    rows = Client.objects.bulk_create(Client(name=f"{name} {i:05}") for i in range(n))
    return sorted(c.pk for c in rows)


def confirm_and_run(http, action, **data):
    digest = digest_of(confirm(http, action, **data))
    return run(http, action, digest=digest, **data)


def responsible_entries():
    return Activity.objects.filter(kind=Activity.Kind.CHANGE, field="responsible")


@pytest.mark.django_db
def test_over_the_inline_limit_the_change_of_responsible_is_a_job_the_modal_follows(admin_client, admin, manager):
    ids = many_clients(MANY)
    response = confirm_and_run(admin_client, "responsible", scope="filter", query="q=Bulk", responsible=manager.pk)
    page = response.content.decode()
    job = Job.objects.get()
    assert (job.kind, job.state, job.owner, job.total) == (Job.Kind.BULK_RESPONSIBLE, "queued", admin, MANY)
    assert job.params["ids"] == ids and job.params["responsible"] == manager.pk
    assert f'id="job-{job.pk}"' in page and reverse("crm:job", args=[job.pk]) in page  # the progress partial, polling
    assert "HX-Redirect" not in response.headers
    assert not Client.objects.filter(responsible=manager).exists()  # nothing done in the request

    jobs.run(job.pk)  # what the worker runs

    job.refresh_from_db()
    assert (job.state, job.done, job.params["applied"], job.params["skipped"]) == ("done", MANY, MANY, 0)
    assert Client.objects.filter(responsible=manager).count() == MANY
    assert responsible_entries().count() == MANY
    assert set(responsible_entries().values_list("client_id", flat=True)) == set(ids)
    told = Notification.objects.get(user=manager, kind="assigned")
    assert told.params["n"] == MANY
    progress = admin_client.get(reverse("crm:job", args=[job.pk]), headers=HX).content.decode()
    assert f"{MANY:,} of {MANY:,}" in progress  # grouped in the reader's locale (English here)


@pytest.mark.django_db
def test_at_the_limit_it_stays_in_the_request(admin_client, manager):
    many_clients(services.BULK_INLINE_MAX)
    response = confirm_and_run(admin_client, "responsible", scope="filter", query="q=Bulk", responsible=manager.pk)
    assert "HX-Redirect" in response.headers
    assert not Job.objects.exists()
    assert Client.objects.filter(responsible=manager).count() == services.BULK_INLINE_MAX


@pytest.mark.django_db
def test_a_client_joining_the_filter_between_confirm_and_run_refuses_the_job(admin_client, manager):
    many_clients(MANY)
    query = "q=Bulk"
    digest = digest_of(confirm(admin_client, "responsible", scope="filter", query=query))
    ClientFactory(name="Bulk late")
    response = run(admin_client, "responsible", scope="filter", query=query, digest=digest, responsible=manager.pk)
    assert f"nothing was done. {MANY + 1} clients match now" in response.content.decode()
    assert not Job.objects.exists()
    assert not Client.objects.filter(responsible=manager).exists()
    assert not responsible_entries().exists()


@pytest.mark.django_db
def test_the_job_applies_to_exactly_the_confirmed_ids_and_counts_what_it_skipped(admin_client, admin, manager):
    ids = many_clients(MANY)
    confirm_and_run(admin_client, "responsible", scope="filter", query="q=Bulk", responsible=manager.pk)
    job = Job.objects.get()
    newcomer = ClientFactory(name="Bulk newcomer")  # matches the filter now, was not confirmed
    Client.objects.filter(pk=ids[3]).update(deleted_at=timezone.now())  # deleted meanwhile

    jobs.run(job.pk)

    job.refresh_from_db()
    assert (job.state, job.params["applied"], job.params["skipped"]) == ("done", MANY - 1, 1)
    newcomer.refresh_from_db()
    assert newcomer.responsible is None
    assert Client.objects.get(pk=ids[3]).responsible is None
    assert set(Client.objects.filter(responsible=manager).values_list("pk", flat=True)) == set(ids) - {ids[3]}
    assert responsible_entries().count() == MANY - 1
    assert Notification.objects.get(user=manager, kind="assigned").params["n"] == MANY - 1


class DiesInChunk(jobs.Progress):
    """A worker that dies inside chunk `n` (its transaction is rolled back) — in-process."""

    def __init__(self, job, n):
        super().__init__(job)
        self.calls, self.n = 0, n

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("worker died")
        super().__call__(*args, **kwargs)


@pytest.mark.django_db
def test_a_run_after_one_that_died_half_way_continues_from_the_last_committed_chunk(admin, manager):
    ids = many_clients(2 * services.BULK_JOB_CHUNK + 10)
    job = services.clients_change_responsible(actor=admin, clients=Client.objects.filter(pk__in=ids), responsible=manager)
    assert isinstance(job, Job)
    with pytest.raises(RuntimeError):
        services.clients_bulk_responsible_run(job=job, progress=DiesInChunk(job, 2))
    job.refresh_from_db()
    assert job.done == services.BULK_JOB_CHUNK
    assert Client.objects.filter(responsible=manager).count() == services.BULK_JOB_CHUNK  # the second chunk rolled back
    services.clients_bulk_responsible_run(job=job, progress=jobs.Progress(job))
    services.clients_bulk_responsible_run(job=job, progress=jobs.Progress(job))  # and once more: nothing left
    assert Client.objects.filter(responsible=manager).count() == len(ids)
    assert responsible_entries().count() == len(ids)
    assert Notification.objects.filter(user=manager, kind="assigned").count() == 1


@pytest.mark.django_db
def test_bulk_delete_with_deals_as_a_job(admin_client, admin):
    ids = many_clients(MANY)
    with_deal = Client.objects.get(pk=ids[-1])
    deal = DealFactory(client=with_deal)
    response = confirm_and_run(admin_client, "delete", scope="filter", query="q=Bulk", with_deals="1")
    assert "Delete clients" in response.content.decode()
    job = Job.objects.get()
    assert (job.kind, job.params["with_deals"]) == (Job.Kind.BULK_DELETE, True)
    assert Client.objects.deleted().count() == 0

    jobs.run(job.pk)

    job.refresh_from_db()
    assert (job.state, job.params["applied"], job.params["skipped"]) == ("done", MANY, 0)
    assert set(Client.objects.deleted().values_list("pk", flat=True)) == set(ids)
    assert {c.deleted_by for c in Client.objects.deleted()} == {admin}
    assert Activity.objects.filter(kind=Activity.Kind.DELETED).count() == MANY
    deal = Deal.objects.get(pk=deal.pk)
    assert deal.deleted_at is not None and deal.deleted_with_client


@pytest.mark.django_db
def test_the_job_refuses_when_the_owner_lost_the_permission_meanwhile(admin, manager):
    ids = many_clients(MANY)
    boss = UserFactory(role=role("Admin"))
    job = services.clients_change_responsible(actor=boss, clients=Client.objects.filter(pk__in=ids), responsible=manager)
    boss.role = role("Manager")  # a manager may not reassign
    boss.save()
    boss.groups.set([boss.role.group])

    jobs.run(job.pk)

    job.refresh_from_db()
    assert job.state == "failed" and "You may no longer change the responsible" in job.error
    assert not Client.objects.filter(responsible=manager).exists()


# A real worker, killed with SIGKILL half way -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_change_of_responsible_resumes_after_its_worker_is_killed(worker_queue, client):
    admin = UserFactory(role=role("Admin"))
    new = UserFactory(role=role("Manager"))
    n = 3 * services.BULK_JOB_CHUNK - 300  # three chunks: 500, 500, 200
    ids = many_clients(n)
    client.force_login(admin)
    chunk = services.BULK_JOB_CHUNK
    first = start_worker(worker_queue, FAST_RESUME)
    try:
        with client_row_locked(ids[chunk + 100]):  # a client of the second chunk
            confirm_and_run(client, "responsible", scope="filter", query="q=Bulk", responsible=new.pk)
            job = Job.objects.get()
            assert wait_until_stuck(job.pk, done=chunk), open(first.log_path).read()
            # The first chunk is committed and its rows free again; the second holds only its own
            # rows (up to the locked one); the third is not touched yet.
            assert Client.objects.filter(pk__in=ids[:chunk], responsible=new).count() == chunk
            assert row_is_free(ids[0]) and row_is_free(ids[-1])
            assert not row_is_free(ids[chunk])
            kill(first)
    finally:
        stop_worker(first)
    assert Job.objects.get(pk=job.pk).state == "running"  # as the dead worker left it

    second = start_worker(worker_queue, FAST_RESUME)
    try:
        started = time.monotonic()
        assert wait_for(lambda: Job.objects.get(pk=job.pk).state == "done", 60), open(second.log_path).read()
        resumed_in = time.monotonic() - started
    finally:
        stop_worker(second)
    job.refresh_from_db()
    assert job.attempts == 2 and resumed_in < 60
    assert Client.objects.filter(pk__in=ids, responsible=new).count() == n
    assert responsible_entries().count() == n  # one per client: none twice, none missing
    assert set(responsible_entries().values_list("client_id", flat=True)) == set(ids)
    assert Notification.objects.filter(user=new, kind="assigned").count() == 1
    assert Notification.objects.filter(user=admin, kind="job").count() == 1  # "ready", once
