"""Killing a real worker half way through a chunked job, at a known place, without sleeps.

The test holds a row lock on a client of a later chunk (`SELECT … FOR UPDATE` in a transaction
of its own) and only then queues the job, to a worker already running. The worker commits the chunks before it, then waits on that lock inside the chunk that
needs the row; the test sees the job's progress and a backend waiting on a lock, and SIGKILLs the
worker there. Releasing the lock afterwards lets the dead worker's database session notice its
client is gone (what it was doing uncommitted is rolled back; a COMMIT it had already sent
completes). A new worker with short JOB_STALE_SECONDS resumes the job."""

import threading
from contextlib import contextmanager

from django.db import connection, transaction

from clients.models import Client
from crm.models import Job
from tests.conftest import wait_for

# A resumed job is re-queued once its heartbeat is this old; the heartbeat is stamped every second.
FAST_RESUME = {"JOB_STALE_SECONDS": "5", "JOB_HEARTBEAT_SECONDS": "1"}


def a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@contextmanager
def client_row_locked(pk: int):
    """Hold client `pk`'s row lock (FOR UPDATE) until the block ends, from a connection of its own
    (a thread), so what the test itself does meanwhile commits as usual."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Client.objects.select_for_update().get(pk=pk)
                locked.set()
                release.wait(120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(10), "could not lock the row"
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def wait_until_stuck(job_id, *, done: int, timeout: float = 30) -> bool:
    """The job has committed `done` clients' worth of chunks and its runner waits on a lock."""
    return wait_for(lambda: Job.objects.get(pk=job_id).done >= done and a_backend_waits_on_a_lock(), timeout)


def kill(process) -> None:
    process.kill()  # SIGKILL: no cleanup, no acknowledgement, the heartbeat just stops
    process.wait(10)


def row_is_free(pk: int) -> bool:
    """Nobody else holds client `pk`'s row lock (tried with NOWAIT inside a savepoint)."""
    from django.db import DatabaseError

    try:
        with transaction.atomic():
            Client.objects.select_for_update(nowait=True).filter(pk=pk).first()
    except DatabaseError:
        return False
    return True
