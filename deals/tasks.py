"""Celery tasks of shifts and distribution: each calls the service and does nothing else."""

from celery import shared_task

from . import shifts


@shared_task(acks_late=True)
def shifts_sweep() -> dict:
    return shifts.sweep()
