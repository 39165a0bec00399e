"""Exports that keep the request bounded (issue 12, point 4).

Rows go from the database into the file as they are read (a server-side cursor into crm.xlsx's
streamed sheet, or CSV). Up to EXPORT_INLINE_MAX_ROWS rows the request answers with the file
itself; above it — counted first, no further than that limit — the export becomes a job: the
request answers with the job's progress (or its page) and the worker writes the file
(deals/jobs.py), reading the rows again as the user who asked, with the query string they asked
with; the owner is notified with a link to the job page, where the file is downloaded.
Documents (a .zip of filled .docx) follow the same path above DOCUMENTS_INLINE_MAX clients.
"""

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.files import File
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation

from . import jobs
from .csvexport import csv_response, write_csv
from .models import Job
from .xlsx import write_xlsx, xlsx_response

# Defaults of the settings of the same names (issue 12: files above 10,000 rows are made by the worker).
EXPORT_INLINE_MAX_ROWS = 10_000
DOCUMENTS_INLINE_MAX = 50  # filled .docx: each costs ~30 ms, so 50 stay well inside a request
EXPORT_PROGRESS_ROWS = 1_000  # rows between two progress reports of an export job


def _setting(name: str, default):
    return getattr(settings, name, default)


def inline_max_rows() -> int:
    return _setting("EXPORT_INLINE_MAX_ROWS", EXPORT_INLINE_MAX_ROWS)


def documents_inline_max() -> int:
    return _setting("DOCUMENTS_INLINE_MAX", DOCUMENTS_INLINE_MAX)


@dataclass
class ExportRows:
    """What an export selector returns: the header, the rows (a generator, read once) and the
    filtered queryset they come from, to count before reading them."""

    header: list[str]
    rows: Iterator[list]
    counted: QuerySet

    def count_upto(self, limit: int) -> int:
        """How many rows, counted no further than limit + 1: on a million-row table a capped
        count stops early where a full one would read every match."""
        return self.counted.order_by()[: limit + 1].count()

    def count(self) -> int:
        return self.counted.order_by().count()


@contextlib.contextmanager
def whole_result():
    """Plan the export's query for reading every row. PostgreSQL plans a cursor for its first 10 %
    (cursor_tuple_fraction) and so picked a walk of the recency index over the whole table with a
    filter: 3.4 s to read 100,000 of 1,000,000 clients, against 0.9 s planned for the whole
    result. Reset afterwards: the connection lives on (in a worker, for other jobs)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET cursor_tuple_fraction = 1.0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET cursor_tuple_fraction")


def file_response(*, fmt: str, filename: str, export: ExportRows, language: str):
    """The file itself, for an export small enough to be made in the request."""
    if fmt == "csv":
        return csv_response(filename=filename, header=export.header, rows=export.rows, language=language)
    return xlsx_response(filename=filename, header=export.header, rows=export.rows)


def request_params(request) -> dict:
    """What the worker needs to read the rows as the request would have: the user's language and
    time zone (the owner is the user), and a link back to them when the file is ready."""
    return {"language": request.LANGUAGE_CODE, "time_zone": timezone.get_current_timezone_name(), "notify": True}


def start(request, *, kind: str, total: int, params: dict) -> Job:
    """A job for the current user; its message is queued when the request's transaction commits."""
    return jobs.start(kind=kind, owner=request.user, total=total, params={**request_params(request), **params})


def job_response(request, job: Job) -> HttpResponse:
    """The job's progress partial for HTMX, its page otherwise (a plain link or form)."""
    if request.htmx:
        from .selectors import job_status

        return render(request, "crm/jobs.html#job-progress", {"job": job, **job_status(job)})
    return redirect(job.get_absolute_url())


@contextlib.contextmanager
def as_owner(job: Job):
    """The owner's language and time zone as they were in the request (labels, local times, the
    CSV separator)."""
    language = job.params.get("language") or job.owner.language or settings.LANGUAGE_CODE
    try:
        zone = ZoneInfo(job.params.get("time_zone") or job.owner.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    with translation.override(language), timezone.override(zone):
        yield


def save_result(job: Job, *, filename: str, write: Callable) -> None:
    """Write the file to a temporary file first, then store it and point the job at it in one
    UPDATE: the job never refers to a half-written file. A run that is resumed starts the file
    again and replaces what an earlier run may have stored."""
    with tempfile.TemporaryFile() as spool:
        write(spool)
        spool.seek(0)
        previous = Job.objects.filter(pk=job.pk).values_list("result", flat=True).first()
        job.result.save(filename, File(spool, name=filename), save=False)
    Job.objects.filter(pk=job.pk).update(result=job.result.name, result_name=filename)
    if previous and previous != job.result.name:
        job.result.storage.delete(previous)


def _reported(rows, progress: jobs.Progress):
    """The rows, reporting progress every EXPORT_PROGRESS_ROWS of them."""
    every = max(1, _setting("EXPORT_PROGRESS_ROWS", EXPORT_PROGRESS_ROWS))
    pause = _setting("EXPORT_CHUNK_PAUSE_SECONDS", 0)  # tests slow a worker so that a kill lands mid-file
    done = 0
    for row in rows:
        yield row
        done += 1
        if done % every == 0:
            progress(done)
            if pause:
                time.sleep(pause)
    progress(done)


def export_run(job: Job, progress: jobs.Progress, export: ExportRows) -> None:
    """The worker's half of an export: count for the progress bar, write the file, store it."""
    progress(0, total=export.count())
    rows = _reported(export.rows, progress)
    language = translation.get_language() or settings.LANGUAGE_CODE
    if job.params.get("format") == "csv":
        def write(out):
            write_csv(out, header=export.header, rows=rows, language=language)
    else:
        def write(out):
            write_xlsx(out, header=export.header, rows=rows)
    save_result(job, filename=job.params["filename"], write=write)
