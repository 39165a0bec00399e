"""Import services: upload → sheet → mapping → run (in the worker, resumable) → report → undo.

The run reads the file from where the last run stopped and writes it in chunks; each chunk
commits with its row records and the job's counters, so a worker killed at any moment loses at
most an uncommitted chunk, which the next run redoes. A beat sweep (and every worker as it
starts) re-queues a job whose runner is gone; a PostgreSQL advisory lock keeps one runner per job.
"""

import gc
import logging
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from clients.models import Client, CustomField
from clients.phones import phone_digits
from crm import activity, jobs, locks
from crm import permissions as gate
from crm.models import Activity, Job

from . import fields, readers
from .models import ImportJob, ImportMappingMemory, ImportRecord
from .readers import ImportRefused
from .rows import RowValidator
from .writer import WRITERS, ChunkWriter

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5  # runs of one job; a job that keeps dying is failed with a message
SELECT_MAX_VALUES = 50  # a "new selector" column with more distinct values is refused
Status = ImportJob.Status


# Files ----------------------------------------------------------------------------------------


def _drop_file(job: ImportJob) -> None:
    """The uploaded file goes when the job no longer needs it (refused, finished, undone)."""
    if job.file:
        job.file.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(file="")


def _refuse(job: ImportJob, error: ImportRefused) -> None:
    """A job refused after its upload: no file left behind, and a state that says so."""
    _drop_file(job)
    ImportJob.objects.filter(pk=job.pk).update(status=Status.REFUSED, error=" ".join(error.messages)[:300])


def reader_for(job: ImportJob):
    if not job.file or not os.path.exists(job.file.path):
        raise ImportRefused(_("The uploaded file is no longer available: upload it again."))
    return readers.open_reader(job.file.path, job.format)


# Upload and sheet -----------------------------------------------------------------------------


def import_upload(*, actor, uploaded) -> ImportJob:
    """Keep the file only if it is a sane workbook or CSV with data; else refuse with the reason
    and keep nothing (no job, no file)."""
    gate.require(actor, gate.IMPORT_CLIENTS)
    if uploaded.size > readers.MAX_BYTES:
        raise ImportRefused(_("The file is larger than %(mb)s MB.") % {"mb": readers.MAX_BYTES // (1024 * 1024)})
    job = ImportJob(created_by=actor, filename=Path(uploaded.name or "import").name[:255])
    job.file.save(f"{job.id}.upload", uploaded, save=False)
    try:
        job.format = readers.sniff(job.file.path)
        if job.format == ImportJob.Format.XLSX:
            readers.check_xlsx(job.file.path)
        reader = readers.open_reader(job.file.path, job.format)
        try:
            sheets = reader.sheet_names()
            if not sheets:
                raise ImportRefused(_("The workbook has no sheets."))
            if len(sheets) == 1:
                job.sheet = sheets[0]
                _check_sheet(reader, job.sheet)
        finally:
            reader.close()
    except ImportRefused:
        job.file.delete(save=False)
        raise
    except Exception:  # whatever a library trips on, the user gets a clean refusal
        log.exception("import upload %s could not be read", job.filename)
        job.file.delete(save=False)
        raise readers.damaged() from None
    job.save()
    return job


def _check_sheet(reader, sheet: str) -> None:
    """A sheet must hold a header and at least one data row, in at most MAX_COLUMNS columns."""
    headers, rows = readers.sample_rows(reader, sheet, 1)
    if not rows:
        raise ImportRefused(_("The sheet has a header row but no data rows under it."))


def sheet_names(job: ImportJob) -> list[str]:
    reader = reader_for(job)
    try:
        return reader.sheet_names()
    finally:
        reader.close()


def import_set_sheet(*, actor, job: ImportJob, sheet: str) -> None:
    gate.require(actor, gate.IMPORT_CLIENTS)
    reader = reader_for(job)
    try:
        if sheet not in reader.sheet_names():
            raise ImportRefused(_("Choose a sheet of the file."))
        _check_sheet(reader, sheet)  # an empty sheet is refused, but the user may pick another
    finally:
        reader.close()
    ImportJob.objects.filter(pk=job.pk, status=Status.UPLOADED).update(sheet=sheet)


def sample(job: ImportJob, limit: int) -> tuple[list[str], list[tuple[int, list]]]:
    """The job's sheet's header and first data rows (the mapping and preview steps)."""
    reader = reader_for(job)
    try:
        return readers.sample_rows(reader, job.sheet, limit)
    finally:
        reader.close()


# Mapping --------------------------------------------------------------------------------------


def client_custom_fields():
    return list(CustomField.objects.filter(is_active=True, entity=CustomField.Entity.CLIENT))


def import_set_mapping(*, actor, job: ImportJob, mapping: dict, headers: list[str], duplicates: str,
                       deal_line=None, require_all: bool = False) -> dict:
    """Check and keep the mapping; create the custom fields asked for ("new_text"/"new_select")."""
    gate.require(actor, gate.IMPORT_CLIENTS)
    mapping = {str(k): v for k, v in mapping.items() if v}
    custom = {f.key: f for f in client_custom_fields()}
    allowed = set(fields.STANDARD_FIELDS) | set(custom) | set(fields.NEW_FIELDS)
    if any(v not in allowed for v in mapping.values()):
        raise ImportRefused(_("Choose a field for each column from the list."))
    if "name" not in mapping.values() and not set(fields.NAME_PARTS) & set(mapping.values()):
        raise ImportRefused(_("Map a column to Full name (or to Last name and First name): a client needs one."))
    chosen = [v for v in mapping.values() if v not in fields.NEW_FIELDS]
    if len(set(chosen)) != len(chosen):
        raise ImportRefused(_("Each field can take one column only."))
    if duplicates not in ImportJob.Duplicates.values:
        raise ImportRefused(_("Choose what to do with duplicates."))
    if any(v in fields.DEAL_FIELDS for v in mapping.values()) and deal_line is None:
        raise ImportRefused(_("Choose the funnel line for the deals, or leave the deal columns unmapped."))
    if deal_line is not None and not gate.can(actor, gate.ADD_DEAL):
        raise PermissionDenied
    if "responsible" in mapping.values() and not gate.can(actor, gate.CHANGE_RESPONSIBLE):
        raise ImportRefused(_("You may not choose the responsible: leave that column unmapped."))
    locked = gate.locked_fields(actor) | {f"deal_{key}" for key in gate.locked_fields(actor, gate.DEAL)}
    if any(v in locked for v in mapping.values()):
        raise PermissionDenied
    if any(v in fields.NEW_FIELDS for v in mapping.values()):
        gate.require(actor, gate.CONFIGURE_FIELDS)
    with transaction.atomic():
        for index, key in list(mapping.items()):
            if key in fields.NEW_FIELDS:
                mapping[index] = _new_field(actor, job, int(index), headers, key, custom).key
        if len(set(mapping.values())) != len(mapping):
            raise ImportRefused(_("Each field can take one column only."))
        ImportJob.objects.filter(pk=job.pk).update(mapping=mapping, duplicates=duplicates, deal_line=deal_line,
                                                   require_all=require_all, headers=headers)
        ImportMappingMemory.objects.update_or_create(user=actor, headers_key=fields.headers_key(headers),
                                                     defaults={"mapping": mapping})
    return mapping


def _new_field(actor, job, index: int, headers: list[str], kind: str, custom: dict) -> CustomField:
    """A client custom field named after the column (an active one of that name is reused)."""
    from clients.services import custom_field_create

    label = (headers[index] if index < len(headers) else "").strip()[:40] or _("Column %(n)s") % {"n": index + 1}
    existing = next((f for f in custom.values() if fields.normalise(f.label) == fields.normalise(label)), None)
    if existing is not None:
        return existing
    choices: list[str] = []
    if kind == "new_select":
        seen: dict[str, str] = {}
        reader = reader_for(job)
        try:
            _number, _headers, rows = readers.split_header(reader.rows(job.sheet))
            for _n, cells in rows:
                text = readers.cell_text(cells[index] if index < len(cells) else None)
                if text and fields.normalise(text) not in seen:
                    seen[fields.normalise(text)] = text[:100]
                    if len(seen) > SELECT_MAX_VALUES:
                        raise ImportRefused(_("The column “%(name)s” has more than %(n)s different values: make it a text field.")
                                            % {"name": label, "n": SELECT_MAX_VALUES})
        finally:
            reader.close()
        choices = sorted(seen.values(), key=str.lower)
    field_kind = CustomField.Kind.SELECT if kind == "new_select" else CustomField.Kind.TEXT
    return custom_field_create(actor=actor, label=label, kind=field_kind, choices=choices)


def remembered_mapping(user, headers) -> dict | None:
    row = ImportMappingMemory.objects.filter(user=user, headers_key=fields.headers_key(headers)).first()
    if row is None:
        return None
    custom = {f.key for f in client_custom_fields()}
    return {k: v for k, v in row.mapping.items() if v in fields.STANDARD_FIELDS or v in custom}


def validator_for(job: ImportJob, headers: list[str]) -> tuple[RowValidator, list]:
    from crm.models import User

    stages = list(job.deal_line.stages.order_by("position", "pk")) if job.deal_line is not None else []
    users = []
    if "responsible" in job.mapping.values():
        users = list(User.objects.filter(is_active=True).only("pk", "username", "email", "first_name", "last_name"))
    validator = RowValidator(mapping=job.mapping, headers=headers, custom_fields=client_custom_fields(), users=users,
                             stages=stages, require_all=job.require_all)
    return validator, stages


def preview_rows(job: ImportJob, headers: list[str], samples: list[tuple[int, list]]) -> tuple[list, list[str]]:
    """The first rows as the run would decide them, reading only: [(row number, the mapped cells,
    outcome, reason)] and the mapped fields' labels. A row matching a client (or an earlier row)
    shows as skipped or updated, as the chosen duplicates mode will have it."""
    validator, stages = validator_for(job, headers)
    plan = ChunkWriter(job, validator, stages=stages).prepare(samples, dry=True)
    indexes = [i for i, _key in validator.columns]
    cells = dict(samples)
    rows = [
        (r.row.number, [readers.cell_text(cells[r.row.number][i]) if i < len(cells[r.row.number]) else "" for i in indexes],
         r.outcome, str(r.reason))
        for r in plan.results
    ]
    return rows, validator.labels()


def rows_not_imported(job: ImportJob, limit: int) -> list:
    """The first records of rows a finished (or failed) import skipped or failed, in row order."""
    if job.status not in (Status.DONE, Status.FAILED) or not (job.failed or job.skipped):
        return []
    Outcome = ImportRecord.Outcome
    return list(job.records.filter(outcome__in=[Outcome.FAILED, Outcome.SKIPPED]).order_by("row")
                .only("row", "outcome", "reason")[:limit])


# Run ------------------------------------------------------------------------------------------


def import_start(*, actor, job: ImportJob) -> None:
    gate.require(actor, gate.IMPORT_CLIENTS)
    if not ImportJob.objects.filter(pk=job.pk).exclude(mapping={}).exists():
        raise ImportRefused(_("Map the columns first."))
    if not ImportJob.objects.filter(pk=job.pk, status=Status.UPLOADED).update(status=Status.QUEUED, heartbeat_at=timezone.now()):
        return  # already started: a second click does not start a second run
    run = jobs.start(kind=Job.Kind.IMPORT, owner=actor, total=job.total, params={"import_id": str(job.pk)})
    ImportJob.objects.filter(pk=job.pk).update(run_job=run)


def _queue(job_id) -> None:
    """Send the import's job to the worker again (after a soft time limit, or from the sweep)."""
    run_id = ImportJob.objects.filter(pk=job_id).values_list("run_job_id", flat=True).first()
    if run_id is None:  # an import started before the job model: run it as one now
        owner_id = ImportJob.objects.filter(pk=job_id).values_list("created_by_id", flat=True).get()
        run = Job.objects.create(kind=Job.Kind.IMPORT, owner_id=owner_id, params={"import_id": str(job_id)},
                                 heartbeat_at=timezone.now())
        ImportJob.objects.filter(pk=job_id).update(run_job=run)
        run_id = run.pk
    Job.objects.filter(pk=run_id).exclude(state__in=Job.FINAL).update(state=Job.State.QUEUED, heartbeat_at=timezone.now())
    transaction.on_commit(lambda: jobs.enqueue(run_id))


def _lock_name(job_id) -> str:
    return f"import:{job_id}"


def import_run(*, job_id, progress=None) -> ImportJob:
    """Run (or resume) one import; the row reasons are in the language of the person who started it.
    progress (crm.jobs.Progress) hears how many rows are done, for the Jobs list."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    # A lock for the length of a run (crm.locks): it dies with the runner's connection.
    with locks.held(_lock_name(job_id)) as alone:
        if not alone:  # another worker has this job (a redelivered or re-queued message): leave it
            return job
        with override(job.created_by.language):
            return _run(job_id, progress)


def _run(job_id, progress=None) -> ImportJob:
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status__in=ImportJob.ACTIVE).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, heartbeat_at=now, started_at=now,
    )
    job = ImportJob.objects.select_related("created_by", "deal_line").get(pk=job_id)
    if not claimed:
        return job  # finished, failed or undone meanwhile
    if job.attempts > MAX_ATTEMPTS:
        return _fail(job, _("The import stopped %(n)s times at row %(row)s and was given up; the rows before it are imported.")
                     % {"n": MAX_ATTEMPTS, "row": job.processed + 1})
    reader = None
    try:
        reader = reader_for(job)
        header_row, headers, rows = readers.split_header(reader.rows(job.sheet))
        if not job.total:
            total = _count(reader, job.sheet, header_row)
            ImportJob.objects.filter(pk=job.pk).update(total=total)
            job.total = total
        if progress is not None:
            progress(job.processed, total=job.total)
        validator, stages = validator_for(job, headers)
        writer = ChunkWriter(job, validator, stages=stages)
        _write_all(job, writer, islice(rows, job.processed, None), progress)  # from where committed chunks stopped
    except ImportRefused as error:
        return _fail(job, " ".join(error.messages))
    except Exception as error:  # the job must end with a message, never "running" forever
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(error, SoftTimeLimitExceeded):  # out of time: committed chunks stay, the rest continues
            ImportJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(status=Status.QUEUED)
            job.refresh_from_db()
            return job  # the job's handler asks to be run again (JobLater)
        log.exception("import %s failed", job.pk)
        done = ImportJob.objects.get(pk=job.pk).processed
        return _fail(job, _("The import stopped on an unexpected error at row %(row)s; the rows before it are imported and can be undone.")
                     % {"row": done + 1})
    finally:
        if reader is not None:
            reader.close()
    if ImportJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(status=Status.DONE, finished_at=timezone.now(),
                                                                        total=F("processed")):
        _look_for_duplicates(job)
    job.refresh_from_db()
    _drop_file(job)
    return job


def _look_for_duplicates(job: ImportJob) -> None:
    """The imported clients' possible duplicates are looked for by a worker once the import is done
    (clients.duplicates.suggest_for_import), not in its chunks: a crm.Job of its own, which the sweep
    resumes should its worker die."""
    from crm import jobs
    from crm.models import Job

    jobs.start(kind=Job.Kind.DUPLICATES, owner=job.created_by, params={"import": str(job.pk)})


def _write_all(job: ImportJob, writer: ChunkWriter, rows, progress=None) -> None:
    """Chunk after chunk, each written and counted in one transaction, committed in order. On
    PostgreSQL WRITERS threads (each with its connection) write consecutive chunks at once while
    this one reads and validates the next: each chunk commits only after the one before it
    (ChunkWriter.apply), so the job's count stays a prefix of the file and a killed worker resumes
    exactly where the committed chunks end. Inside an outer transaction (tests) a second connection
    could not see this one's rows, so the chunks are written here, one after the other."""
    done = job.processed
    pipelined = connection.vendor == "postgresql" and not connection.in_atomic_block
    # Hundreds of thousands of short-lived rows, cells and records, and hardly a reference cycle
    # among them: the cyclic collector's frequent passes are pure cost here.
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 50, 100)
    language = job.created_by.language
    # One single-thread pool per writer, used in turn: each thread keeps its own connection.
    pools = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"import-writer-{i}") for i in range(WRITERS)] if pipelined else []
    pending: deque[Future] = deque()  # chunks being written, oldest first
    written = 0
    try:
        while chunk := list(islice(rows, settings.IMPORT_CHUNK_ROWS)):
            if done + len(chunk) > readers.MAX_DATA_ROWS:
                raise ImportRefused(_("The sheet has more than %(max)s rows.") % {"max": readers.MAX_DATA_ROWS})
            plan = writer.prepare(chunk)
            if len(pending) == WRITERS:
                pending.popleft().result()  # the oldest chunk committed (or its error raised here)
            if pipelined:
                previous = pending[-1] if pending else None
                pending.append(pools[written % WRITERS].submit(_apply_committed, writer, plan, language, previous))
            else:
                with transaction.atomic():
                    writer.apply(plan)
            written += 1
            done += len(chunk)
            if progress is not None:
                progress(done)
            _pause_for_tests()
        while pending:
            pending.popleft().result()
    finally:
        for future in pending:  # leave nothing being written behind an error
            future.exception()
        for pool in pools:
            pool.submit(_close_connections).result()
            pool.shutdown()
        gc.set_threshold(*thresholds)


def _apply_committed(writer: ChunkWriter, plan, language: str, previous: Future | None) -> None:
    """In a writer thread: one chunk, one transaction, in the importer's language (the reasons
    are made there), committed after the chunk before it (`previous`), and not at all if that one
    failed."""
    with override(language), transaction.atomic():
        with connection.cursor() as cursor:
            # The chunk and the job's count of it commit together, so a database crash that lost
            # the last commits loses both, and the resume redoes those rows: no need to wait for
            # each commit's WAL flush.
            cursor.execute("SET LOCAL synchronous_commit = off")
        if previous is None:
            writer.apply(plan)
        else:
            writer.apply(plan, after_previous=previous.result)


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()


def _pause_for_tests() -> None:
    """Tests that kill a worker mid-import slow each chunk down through this setting (0 in use)."""
    pause = getattr(settings, "IMPORT_CHUNK_PAUSE_SECONDS", 0)
    if pause:
        time.sleep(pause)


def _count(reader, sheet: str, header_row: int) -> int:
    """Data rows for the progress bar (the sheet's declared size; 0 when unknown until the end)."""
    last = reader.last_row(sheet)
    return max(last - header_row, 0) if last else 0


def _fail(job: ImportJob, message: str) -> ImportJob:
    ImportJob.objects.filter(pk=job.pk).update(status=Status.FAILED, error=message[:300], finished_at=timezone.now())
    job.refresh_from_db()
    _drop_file(job)
    return job


def imports_resume(*, at_worker_start: bool = False) -> list[str]:
    """Re-queue jobs whose runner is gone. On PostgreSQL a running job whose advisory lock is free
    has no runner (the lock dies with the connection); elsewhere a heartbeat older than
    IMPORT_STALE_SECONDS says so. A queued job waits that long for a worker before it is re-sent.
    At a worker's start, running jobs are checked at once."""
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    postgres = connection.vendor == "postgresql"
    candidates = ImportJob.objects.filter(status__in=ImportJob.ACTIVE)
    if not (postgres and at_worker_start):
        candidates = candidates.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))
    queued = []
    for job in candidates.only("pk", "status", "heartbeat_at"):
        if job.status == Status.QUEUED and job.heartbeat_at and job.heartbeat_at >= stale:
            continue
        if postgres and not locks.holder_gone(_lock_name(job.pk)):
            continue
        # One re-queue per stale period, whoever sweeps: the heartbeat moves with it.
        if ImportJob.objects.filter(pk=job.pk, heartbeat_at=job.heartbeat_at, status__in=ImportJob.ACTIVE).update(
            heartbeat_at=timezone.now()
        ):
            _queue(job.pk)
            queued.append(str(job.pk))
    return queued


def imports_cleanup(*, older_than_days: int = 7) -> int:
    """Daily: upload files older than a week go, and so do wizard jobs nobody ran (refused)."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    for job in ImportJob.objects.filter(status=Status.UPLOADED, created_at__lt=cutoff).select_related("created_by"):
        with override(job.created_by.language):  # the importer reads it, in their language
            _refuse(job, ImportRefused(_("Not run within %(n)s days: the file was deleted.") % {"n": older_than_days}))
    folder = Path(settings.MEDIA_ROOT) / "imports"
    removed = 0
    if folder.is_dir():
        keep = {os.path.basename(name) for name in ImportJob.objects.filter(status__in=[Status.UPLOADED, *ImportJob.ACTIVE])
                .exclude(file="").values_list("file", flat=True)}
        for path in folder.iterdir():
            if path.name not in keep and path.stat().st_mtime < cutoff.timestamp():
                path.unlink(missing_ok=True)
                removed += 1
    return removed


# Undo -----------------------------------------------------------------------------------------


@transaction.atomic
def import_undo(*, actor, job: ImportJob) -> None:
    """Created clients (and their deals) are soft-deleted, deals the import added to existing
    clients too, and updated clients get their old values back; the feeds record both."""
    gate.require(actor, gate.IMPORT_CLIENTS)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status == Status.UNDONE:
        raise ImportRefused(_("This import was undone already."))
    if job.status not in (Status.DONE, Status.FAILED):
        raise ImportRefused(_("Only a finished import can be undone."))
    from deals.models import Deal

    now = timezone.now()
    created = list(job.records.filter(outcome=ImportRecord.Outcome.CREATED, client__isnull=False).values_list("client_id", flat=True))
    deal_ids = list(job.records.filter(deal__isnull=False).values_list("deal_id", flat=True))
    alive = Deal.objects.filter(pk__in=deal_ids, deleted_at__isnull=True)
    alive.filter(client_id__in=created).update(deleted_at=now, deleted_by=actor, modified_at=now, deleted_with_client=True)
    alive.update(deleted_at=now, deleted_by=actor, modified_at=now)
    Client.objects.filter(pk__in=created, deleted_at__isnull=True).update(deleted_at=now, deleted_by=actor, modified_at=now)
    entries = [activity.entry(client_id=pk, actor=actor, kind=Activity.Kind.DELETED, new=_("import undone")) for pk in created]
    for record in job.records.filter(outcome=ImportRecord.Outcome.UPDATED).exclude(previous={}).select_related("client"):
        client = record.client
        if client is None or client.pk in created:
            continue
        _restore(client, record.previous, actor)
        entries.append(activity.entry(client_id=client.pk, actor=actor, kind=Activity.Kind.RESTORED, new=_("import undone")))
    activity.record_many(entries)
    ImportJob.objects.filter(pk=job.pk).update(status=Status.UNDONE)
    _drop_file(job)


def _restore(client: Client, previous: dict, actor) -> None:
    previous = dict(previous)
    client.custom = previous.pop("custom", client.custom)
    if "responsible_id" in previous:
        client.responsible_id = previous.pop("responsible_id")
    for name, value in previous.items():
        if name == "registration_date":
            value = date.fromisoformat(value) if value else None
        setattr(client, name, value)
    client.phone_digits = phone_digits(client.all_phones)
    client.modified_by = actor
    client.save()
