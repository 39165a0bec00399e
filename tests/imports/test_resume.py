"""Never stuck: a real worker killed with SIGKILL mid-import, the job resumed by itself and ended
with exactly the file's rows; an unexpected error fails the job with a message and keeps what
was committed; undo removes what the import created, deals included, and restores what it updated."""

import os
import signal
import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from crm import locks
from crm.models import Activity
from deals.models import Deal
from imports import services, writer
from imports.models import ImportJob, ImportRecord
from tests.conftest import start_worker, stop_worker, wait_for
from tests.factories import ClientFactory, FunnelFactory, UserFactory, role

from .conftest import service_import
from .files import e164, phone_formats, plain_xlsx

ROWS = 1500


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_is_resumed_and_every_row_lands_once(worker_queue, settings, _media, client):
    admin = UserFactory(role=role("Admin"), language="en")
    rows = [["ФИО", "Телефон", "Email"]] + [[f"Клиент {i}", phone_formats(i)[i % 6], f"c{i}@example.com"] for i in range(ROWS)]
    job = services.import_upload(actor=admin, uploaded=SimpleUploadedFile("big.xlsx", plain_xlsx(rows)))
    services.import_set_mapping(actor=admin, job=job, mapping={"0": "name", "1": "phone", "2": "email"}, headers=rows[0],
                                duplicates="skip")
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "IMPORT_CHUNK_ROWS": "100", "IMPORT_CHUNK_PAUSE_SECONDS": "0.3"}
    worker = start_worker(worker_queue, env)
    try:
        services.import_start(actor=admin, job=job)
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).processed >= 400, timeout=60, step=0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_worker(worker)
    stuck = ImportJob.objects.get(pk=job.pk)
    assert stuck.status == "running" and 400 <= stuck.processed < ROWS  # it really died half way
    # The page says so, and keeps polling
    client.force_login(admin)
    stuck.heartbeat_at = timezone.now() - timedelta(seconds=30)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=stuck.heartbeat_at)
    page = client.get(reverse("imports:job", args=[job.pk]), headers={"HX-Request": "true"}).content.decode()
    assert "resumes by itself" in page and 'hx-trigger="every 1s"' in page
    # A worker comes back: nobody calls anything, it finds the job itself (worker_ready → imports_resume)
    worker = start_worker(worker_queue, {**env, "IMPORT_CHUNK_PAUSE_SECONDS": "0"})
    try:
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == "done", timeout=60)
    finally:
        stop_worker(worker)
    job = ImportJob.objects.get(pk=job.pk)
    assert (job.processed, job.created, job.skipped, job.failed, job.attempts) == (ROWS, ROWS, 0, 0, 2)
    assert Client.objects.count() == ROWS
    assert set(Client.objects.values_list("phone", flat=True)) == {e164(i) for i in range(ROWS)}
    assert ImportRecord.objects.filter(job=job).count() == ROWS
    assert Activity.objects.filter(kind="created").count() == ROWS  # one feed line each, none doubled
    assert not job.file  # the file went with the finished job


@pytest.mark.django_db
def test_the_sweep_requeues_only_jobs_whose_runner_is_gone(admin, django_capture_on_commit_callbacks):
    old = timezone.now() - timedelta(minutes=5)
    dead = ImportJob.objects.create(created_by=admin, filename="dead.xlsx", status="running", heartbeat_at=old)
    waiting = ImportJob.objects.create(created_by=admin, filename="q.xlsx", status="queued", heartbeat_at=timezone.now())
    lost = ImportJob.objects.create(created_by=admin, filename="lost.xlsx", status="queued", heartbeat_at=old)
    ImportJob.objects.create(created_by=admin, filename="done.xlsx", status="done", heartbeat_at=old)
    with django_capture_on_commit_callbacks() as sent:
        assert sorted(services.imports_resume()) == sorted([str(dead.pk), str(lost.pk)])
    assert len(sent) == 2
    with django_capture_on_commit_callbacks() as sent:
        assert services.imports_resume() == []  # once per stale period: the heartbeat moved with the re-queue
    assert waiting.pk not in services.imports_resume(at_worker_start=True)


@pytest.mark.django_db
def test_a_running_job_whose_runner_holds_the_lock_is_left_alone(admin):
    from django.db import connections

    old = timezone.now() - timedelta(minutes=5)
    job = ImportJob.objects.create(created_by=admin, filename="alive.xlsx", status="running", heartbeat_at=old)
    other = connections.create_connection("default")  # another process's runner, holding the job's lock
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [locks.key(services._lock_name(job.pk))])
    try:
        assert services.imports_resume(at_worker_start=True) == []
    finally:
        # Let go in-band: a closed connection's backend ends (and frees its locks) only a moment later
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [locks.key(services._lock_name(job.pk))])
        other.close()
    assert services.imports_resume(at_worker_start=True) == [str(job.pk)]


@pytest.mark.django_db
def test_an_unexpected_error_fails_the_job_with_a_message_and_undo_still_works(admin, settings, monkeypatch):
    settings.IMPORT_CHUNK_ROWS = 2
    real = writer.ChunkWriter.apply
    calls = {"n": 0}

    def breaks_on_the_third_chunk(self, plan):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(self, plan)

    monkeypatch.setattr(writer.ChunkWriter, "apply", breaks_on_the_third_chunk)
    rows = [["ФИО", "Телефон"]] + [[f"Клиент {i}", f"+7 916 000 00 {i:02d}"] for i in range(8)]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone"})
    assert job.status == "failed" and job.processed == 4 and Client.objects.count() == 4
    assert job.error == "The import stopped on an unexpected error at row 5; the rows before it are imported and can be undone."
    assert not job.file
    services.import_undo(actor=admin, job=job)
    assert Client.objects.alive().count() == 0


@pytest.mark.django_db
def test_undo_removes_created_clients_and_deals_and_restores_updated_ones(admin_client, admin):
    funnel = FunnelFactory(name="Импорт")
    line = funnel.lines.get()
    kept = ClientFactory(name="Старое Имя", phone="+79161112233", city="Тула", email="keep@example.com")
    rows = [["ФИО", "Телефон", "Город", "Сделка"], ["Новое Имя", "8 916 111-22-33", "Москва", "Допродажа"],
            ["Новый Клиент", "8 916 999-00-01", "Омск", ""]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone", 2: "city", 3: "deal_name"},
                         duplicates="update", deal_line=line)
    kept.refresh_from_db()
    assert (kept.name, kept.city, kept.email) == ("Новое Имя", "Москва", "keep@example.com")
    assert Deal.objects.filter(client=kept, name="Допродажа").exists()
    new = Client.objects.get(name="Новый Клиент")
    assert Deal.objects.filter(client=new).count() == 1
    response = admin_client.post(reverse("imports:undo", args=[job.pk]))
    assert response.status_code == 302
    kept.refresh_from_db()
    new.refresh_from_db()
    assert (kept.name, kept.city, kept.email) == ("Старое Имя", "Тула", "keep@example.com") and kept.deleted_at is None
    assert new.deleted_at is not None
    assert not Deal.objects.filter(deleted_at__isnull=True).exists()  # no imported deal left on the board
    assert Deal.objects.get(client=new).deleted_with_client  # "restore with deals" brings it back with its client
    assert Activity.objects.filter(client=kept, kind="restored").exists()
    page = admin_client.post(reverse("imports:undo", args=[job.pk]), follow=True).content.decode()
    assert "This import was undone already." in page
    assert ImportJob.objects.get(pk=job.pk).status == "undone"


@pytest.mark.django_db
def test_starting_twice_queues_one_run(admin, django_capture_on_commit_callbacks):
    job = services.import_upload(actor=admin, uploaded=SimpleUploadedFile("o.xlsx", plain_xlsx([["ФИО", "Город"], ["Один", "Тула"]])))
    services.import_set_mapping(actor=admin, job=job, mapping={"0": "name"}, headers=["ФИО", "Город"], duplicates="skip")
    with django_capture_on_commit_callbacks() as callbacks:
        services.import_start(actor=admin, job=job)
        services.import_start(actor=admin, job=job)
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_the_pipelined_writer_keeps_duplicates_across_chunks_being_written(settings, _media):
    """Outside a test transaction chunk N is written by a thread while chunk N+1 is prepared: a row
    of N+1 matching a client that N creates or updates still finds it (the in-flight chunk is
    looked up in memory), and its update is not lost."""
    settings.IMPORT_CHUNK_ROWS = 2
    admin = UserFactory(role=role("Admin"), language="en")
    old = ClientFactory(name="Старый", phone="+79160000001", city="Тула", email="old@example.com")
    rows = [["ФИО", "Телефон", "Город", "Email"],
            ["Новый", "8 916 000-00-09", "Омск", None],        # chunk 1: created
            ["Старый 2", "8 916 000-00-01", "Уфа", None],      # chunk 1: updates the old client
            ["Новый снова", "+7 916 000 00 09", None, "n@example.com"],  # chunk 2: same as row 2
            ["Старый 3", "79160000001", None, None],           # chunk 2: the old client again
            ["Третий", "8 916 000-00-03", "Сочи", None]]        # chunk 3
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone", 2: "city", 3: "email"}, duplicates="update")
    assert (job.status, job.created, job.updated) == ("done", 2, 3)
    new = Client.objects.get(phone="+79160000009")
    assert (new.name, new.city, new.email) == ("Новый снова", "Омск", "n@example.com")
    old.refresh_from_db()
    assert (old.name, old.city, old.email) == ("Старый 3", "Уфа", "old@example.com")
    assert Client.objects.count() == 3
    services.import_undo(actor=admin, job=job)
    old.refresh_from_db()
    assert (old.name, old.city) == ("Старый", "Тула") and Client.objects.alive().count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_chunks_written_at_once_commit_in_order_and_a_failed_one_takes_the_next_down(settings, _media, monkeypatch):
    """Outside a test transaction writer.WRITERS chunks are written at once: the third chunk's new
    clients go in while the second is still being written. It commits only after the second, and
    not at all when the second fails: the job's count stays a prefix of the file (what a resume
    starts from), and nothing written after the failed chunk stays."""
    settings.IMPORT_CHUNK_ROWS = 2
    admin = UserFactory(role=role("Admin"), language="en")
    third_inserted = threading.Event()
    insert, records = writer.ChunkWriter._insert_clients, writer.ChunkWriter._records

    def insert_and_tell(self, fresh):
        insert(self, fresh)
        if any(r.landed.client.name == "Клиент 4" for r in fresh):
            third_inserted.set()

    def second_fails_once_the_third_is_in(self, results):
        if any(r.target and r.target.client.name == "Клиент 2" for r in results):
            assert third_inserted.wait(10), "the third chunk was not being written while the second was"
            raise RuntimeError("disk full")
        return records(self, results)

    monkeypatch.setattr(writer.ChunkWriter, "_insert_clients", insert_and_tell)
    monkeypatch.setattr(writer.ChunkWriter, "_records", second_fails_once_the_third_is_in)
    rows = [["ФИО", "Телефон"]] + [[f"Клиент {i}", f"+7 916 000 00 {i:02d}"] for i in range(6)]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone"})
    assert third_inserted.is_set()
    assert job.status == "failed" and job.processed == 2
    assert sorted(Client.objects.values_list("name", flat=True)) == ["Клиент 0", "Клиент 1"]
    assert ImportRecord.objects.filter(job=job).count() == 2 and Activity.objects.filter(kind="created").count() == 2
    assert job.error == "The import stopped on an unexpected error at row 3; the rows before it are imported and can be undone."


@pytest.mark.django_db
def test_an_import_runs_as_a_job_listed_for_its_owner(admin, admin_client, django_capture_on_commit_callbacks):
    from crm import jobs
    from crm.models import Job

    job = services.import_upload(actor=admin, uploaded=SimpleUploadedFile("j.xlsx", plain_xlsx([["ФИО"], ["Один"], ["Два"]])))
    services.import_set_mapping(actor=admin, job=job, mapping={"0": "name"}, headers=["ФИО"], duplicates="skip")
    with django_capture_on_commit_callbacks():
        services.import_start(actor=admin, job=job)
    run = ImportJob.objects.get(pk=job.pk).run_job
    assert (run.kind, run.state, run.owner) == (Job.Kind.IMPORT, Job.State.QUEUED, admin)
    finished = jobs.run(run.pk)  # what the worker does
    assert (finished.state, finished.done, finished.total) == (Job.State.DONE, 2, 2)
    assert ImportJob.objects.get(pk=job.pk).status == "done" and Client.objects.count() == 2
    page = admin_client.get(reverse("crm:jobs")).content.decode()
    assert run.get_absolute_url() in page and "2 of 2" in page
