"""A big export survives its worker being killed (issue 12, point 2): a real Celery worker is
killed with SIGKILL mid-file, another one starts, and the job completes within 60 s with every
filtered row exactly once."""

import io
import time

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from crm.models import Job, TableSettings
from tests.conftest import start_worker, stop_worker, wait_for
from tests.factories import ClientFactory


@pytest.mark.django_db(transaction=True)
def test_an_export_resumes_after_its_worker_is_killed(worker_queue, settings, tmp_path, client, admin):
    settings.EXPORT_INLINE_MAX_ROWS = 10
    settings.MEDIA_ROOT = tmp_path
    TableSettings.objects.create(user=admin, table="clients", columns=["name", "city"])
    wanted = {f"Клиент {n:03d}" for n in range(120)}
    for name in sorted(wanted):
        ClientFactory(name=name, city="Казань")
    ClientFactory.create_batch(5, city="Москва")  # filtered out
    env = {"DJANGO_SETTINGS_MODULE": "tests.exports.worker_settings", "MEDIA_ROOT": str(tmp_path),
           "JOB_STALE_SECONDS": "5", "JOB_HEARTBEAT_SECONDS": "1", "EXPORT_PROGRESS_ROWS": "10"}

    worker = start_worker(worker_queue, {**env, "EXPORT_CHUNK_PAUSE_SECONDS": "0.3"})
    try:
        client.force_login(admin)
        assert client.get(reverse("clients:export"), {"city": "Казань"}).status_code == 302
        job = Job.objects.get()
        assert wait_for(lambda: Job.objects.get(pk=job.pk).done >= 30, timeout=30), open(worker.log_path).read()
        worker.kill()  # SIGKILL: no goodbye, the heartbeat just stops
        worker.wait(10)
    finally:
        stop_worker(worker)
    killed = Job.objects.get(pk=job.pk)
    assert killed.state == Job.State.RUNNING and 30 <= killed.done < 120 and not killed.result

    restarted = time.monotonic()
    worker = start_worker(worker_queue, env)
    try:
        finished = wait_for(lambda: Job.objects.get(pk=job.pk).is_final, timeout=60, step=0.5)
        took = time.monotonic() - restarted
    finally:
        stop_worker(worker)
    assert finished, open(worker.log_path).read()
    assert took < 60
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.attempts == 2 and job.total == 120
    with job.result.open("rb") as handle:
        rows = list(load_workbook(io.BytesIO(handle.read()), read_only=True).active.iter_rows(values_only=True))
    names = [r[0] for r in rows[1:]]
    assert rows[0] == ("Full name", "City")
    assert len(names) == len(set(names)) == 120 and set(names) == wanted  # none twice, none missing
