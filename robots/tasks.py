"""Celery tasks of robots: each calls robots.engine and does nothing else."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300)
def robots_drain() -> int:
    from . import engine

    return engine.drain()


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def robots_sweep() -> dict:
    """Beat, every 30 s: timed runs that are due, runs of a dead worker."""
    from . import engine

    return engine.sweep()
