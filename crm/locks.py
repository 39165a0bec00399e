"""PostgreSQL advisory locks held by a runner for the length of its run.

A session lock dies with its connection, so a worker killed with SIGKILL frees it at once: a
sweep that finds the lock free knows the run has no runner, without waiting for a heartbeat to go
stale. Elsewhere (SQLite) there are no such locks: the holder always gets its lock and nobody can
tell a dead runner from a live one (the heartbeat rule decides there).
"""

import hashlib
from contextlib import contextmanager

from django.db import connection


def key(name: str) -> int:
    """The 64-bit key PostgreSQL knows the lock `name` by."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)


def _try_lock(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key(name)])
        return cursor.fetchone()[0]


def _unlock(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [key(name)])


@contextmanager
def held(name: str):
    """Hold the lock `name` for the block; yields False (and holds nothing) if another session has it."""
    if connection.vendor != "postgresql":
        yield True
        return
    acquired = _try_lock(name)
    try:
        yield acquired
    finally:
        if acquired:
            _unlock(name)


def holder_gone(name: str) -> bool:
    """Whether nobody holds the lock `name` (PostgreSQL; elsewhere: False, nothing can be told)."""
    if connection.vendor != "postgresql":
        return False
    if not _try_lock(name):
        return False
    _unlock(name)
    return True
