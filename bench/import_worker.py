"""Run one import job as the Celery worker does (clients.import_services.import_run)."""

import sys

from common import setup_django

if __name__ == "__main__":
    setup_django()
    from clients import import_services

    job = import_services.import_run(job_id=sys.argv[1])
    print(job.status, job.processed)
