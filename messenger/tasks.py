"""Celery tasks of the messenger: each calls its service and does nothing else."""

from celery import shared_task

from . import sweep as sweeping
from .outbox import deliver
from .receive import drain, process


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def inbound_process(inbound_id: int) -> str:
    return process(inbound_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def inbound_drain() -> int:
    return drain()


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def message_send(message_id: int) -> str:
    return deliver(message_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=120, time_limit=150)
def outbox_drain() -> int:
    from .outbox import drain_sending

    return drain_sending()


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def messenger_sweep() -> dict:
    return sweeping.sweep()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def channel_poll(channel_id: int) -> int:
    return sweeping.poll(channel_id)
