"""Events: what happened to deals and clients, for the automations that react to it (DESIGN §8).

One mechanism, a transactional outbox:

- **Emit.** A service that moves a deal to a stage (or creates it there), stores an inbound or
  outbound message, a comment, a sale or a registration calls `emit` (or `emit_many`) inside its
  own transaction. The event is a row of `crm.Event`, so it exists exactly when the change does:
  a rolled-back change leaves no event, a committed one cannot lose it.
- **Dispatch on commit.** `emit` asks, once the transaction commits, for a worker to `process`
  the new events: it claims a batch (`SELECT … FOR UPDATE SKIP LOCKED`, so several workers share
  the work), hands it to every listener in one transaction with the batch's `processed_at`, and
  goes on while batches are full. A listener's writes and the events' being processed commit
  together: a crash in between leaves both undone, and the events are handed over again.
  Listeners must therefore be idempotent (robots insert their runs under a unique key).
- **Sweep.** Beat's `sweep` (every 30 s) processes whatever a missed dispatch left (a worker
  killed, a broker down at commit time) once it is `SWEEP_AFTER` old, and deletes processed events
  after `KEEP_DAYS`.
- **Depth.** Work done by an automation runs inside `caused_by(depth)`: the events it emits carry
  that depth, so a chain of automations can be stopped (robots stop at depth 5).

Listeners register in their app's `ready()` with `listen(handler)`; `handler(events)` gets the
batch (a list of `Event`). Robots are the first; webhooks and reports read the same events.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import queueing
from .models import Event

log = logging.getLogger(__name__)

BATCH = 500
SWEEP_AFTER = timedelta(seconds=10)
KEEP_DAYS = 7
KICK_KEY = "events:process"
KICK_SECONDS = 2
PROCESS_SECONDS = 50.0

# Kinds that count as work on a deal (a timed robot "without activity" waits again from them).
ACTIVITY = frozenset({Event.Kind.STAGE, Event.Kind.MESSAGE_IN, Event.Kind.MESSAGE_OUT, Event.Kind.COMMENT})

Listener = Callable[[list[Event]], None]
_listeners: list[Listener] = []
_depth: ContextVar[int] = ContextVar("event_depth", default=0)


def listen(handler: Listener) -> None:
    if handler not in _listeners:
        _listeners.append(handler)


@contextlib.contextmanager
def caused_by(depth: int) -> Iterator[None]:
    """Events emitted inside are the doing of an automation `depth` steps from a person."""
    token = _depth.set(depth)
    try:
        yield
    finally:
        _depth.reset(token)


def current_depth() -> int:
    return _depth.get()


def emit(kind: str, *, client_id: int, deal_id: int | None = None, stage_id: int | None = None,
         at: datetime | None = None) -> None:
    """Record an event in the caller's transaction; a worker processes it once that commits."""
    Event.objects.create(kind=kind, client_id=client_id, deal_id=deal_id, stage_id=stage_id,
                         depth=_depth.get(), at=at or timezone.now())
    dispatch_on_commit()


def emit_many(kind: str, rows: Iterable[tuple[int, int | None, int | None]], *, at: datetime | None = None) -> int:
    """Events of one kind for many (client id, deal id, stage id): an import chunk, a stage's deals
    moved at once. COPY on PostgreSQL for many."""
    from .bulk import copy_rows

    at = at or timezone.now()
    depth = _depth.get()
    values = [(c, d, s, kind, depth, at) for c, d, s in rows]
    if not values:
        return 0
    if len(values) < 50:
        Event.objects.bulk_create([Event(client_id=c, deal_id=d, stage_id=s, kind=k, depth=n, at=w)
                                   for c, d, s, k, n, w in values])
    else:
        copy_rows(Event, ["client_id", "deal_id", "stage_id", "kind", "depth", "at"], values)
    dispatch_on_commit()
    return len(values)


def dispatch_on_commit() -> None:
    """Kick the worker once the transaction commits: once per transaction, however many events it
    emits (a callback dropped with a rolled-back savepoint is no longer there to count)."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(func is kick for _ids, func, _robust in connection.run_on_commit):
        return
    transaction.on_commit(kick)


def kick(*, again: bool = False) -> None:
    """Have a worker process the new events (unless one was asked to a moment ago)."""
    from .tasks import events_process

    queueing.kick(KICK_KEY, events_process, again=again, seconds=KICK_SECONDS)


def process_batch(limit: int = BATCH, *, older_than: datetime | None = None) -> int:
    """Hand one batch of unprocessed events (oldest first) to the listeners; the number handed."""
    with transaction.atomic():
        batch = Event.objects.select_for_update(skip_locked=True).filter(processed_at__isnull=True)
        if older_than is not None:
            batch = batch.filter(at__lt=older_than)
        events = list(batch.order_by("id")[:limit])
        if not events:
            return 0
        for listener in _listeners:
            listener(events)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=timezone.now())
    return len(events)


def process(*, time_budget: float = PROCESS_SECONDS, limit: int = BATCH) -> int:
    """Process new events until none is left (or the time is up: then another worker follows)."""
    return queueing.drain(lambda: process_batch(limit), key=KICK_KEY, limit=limit, seconds=time_budget,
                          kick_again=lambda: kick(again=True))


def sweep(now: datetime | None = None) -> int:
    """Process events a dispatch missed; delete processed ones older than KEEP_DAYS."""
    now = now or timezone.now()
    done = 0
    while (n := process_batch(older_than=now - SWEEP_AFTER)) == BATCH:
        done += n
    done += n
    Event.objects.filter(processed_at__lt=now - timedelta(days=KEEP_DAYS)).delete()
    return done


def pending_for_clients(client_ids: Iterable[int]) -> set[int]:
    """Clients with events not yet processed (a timed robot waits for them to be looked at)."""
    return set(Event.objects.filter(processed_at__isnull=True, client_id__in=list(client_ids))
               .values_list("client_id", flat=True))
