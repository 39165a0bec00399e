"""Celery tasks: each has the name of the service it calls and does nothing else."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def mass_send_run(send_id: str) -> int:
    return services.mass_send_run(send_id=send_id)


@shared_task
def mass_sends_resume() -> list[str]:
    return services.mass_sends_resume()
