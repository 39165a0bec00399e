"""Import services: upload, sheet, mapping, run (in the worker, resumable), undo."""

import hashlib
import json
from contextlib import contextmanager
from itertools import islice

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from crm import activity
from crm import permissions as gate
from crm.models import Activity

from . import imports
from .models import Client, CustomField, ImportJob, ImportMappingMemory, ImportRecord, Tag
from .phones import phone_digits

CHUNK = 2000
UPDATABLE = ["name", "phone", "email", "company", "country", "city", "address", "channel", "priority",
             "external_id", "registration_date"]


@contextmanager
def single_runner(name: str):
    """A PostgreSQL advisory lock for the length of a run: yields False if another process holds it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield True
        return
    key = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def import_upload(*, actor, uploaded) -> ImportJob:
    gate.require(actor, gate.IMPORT_CLIENTS)
    imports.check_file(uploaded)
    job = ImportJob(created_by=actor, filename=uploaded.name[:255])
    job.file.save(f"{job.id}.xlsx", uploaded, save=False)
    try:
        book = imports.open_book(job.file.path)
    except Exception:  # noqa: BLE001 — whatever openpyxl trips on, the user gets a clear refusal
        job.file.delete(save=False)
        raise imports.HostileFile(_("The file could not be read as an Excel workbook."))
    sheets = book.sheetnames
    book.close()
    job.sheet = sheets[0] if len(sheets) == 1 else ""
    job.save()
    return job


def sheet_names(job) -> list[str]:
    book = imports.open_book(job.file.path)
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def read_rows(job, *, start: int = 0, limit: int | None = None):
    """(headers, iterator of (row number, cells)) of the job's sheet, data rows from `start`."""
    book = imports.open_book(job.file.path)
    sheet = book[job.sheet]
    imports.check_sheet(sheet)
    rows = sheet.iter_rows(values_only=True)
    headers = [imports._text(h) for h in next(rows, ())][: imports.MAX_COLUMNS]

    def body():
        try:
            numbered = enumerate(rows, start=2)  # Excel's row numbers: the header is row 1
            for number, cells in islice(numbered, start, None if limit is None else start + limit):
                if number - 1 > imports.MAX_ROWS:
                    raise imports.HostileFile(_("The sheet has more than %(max)s rows.") % {"max": imports.MAX_ROWS})
                yield number, list(cells[: imports.MAX_COLUMNS])
        finally:
            book.close()

    return headers, body()


def import_set_sheet(*, actor, job, sheet: str) -> None:
    gate.require(actor, gate.IMPORT_CLIENTS)
    if sheet not in sheet_names(job):
        raise imports.HostileFile(_("Choose a sheet of the file."))
    book = imports.open_book(job.file.path)
    try:
        imports.check_sheet(book[sheet])
    finally:
        book.close()
    ImportJob.objects.filter(pk=job.pk).update(sheet=sheet)


def import_set_mapping(*, actor, job, mapping: dict, duplicates: str, headers: list[str], deal_stage=None) -> None:
    gate.require(actor, gate.IMPORT_CLIENTS)
    mapping = {k: v for k, v in mapping.items() if v}
    if "name" not in mapping.values():
        raise imports.HostileFile(_("Map a column to Full name: a client needs one."))
    if len(set(mapping.values())) != len(mapping):
        raise imports.HostileFile(_("Each field can take one column only."))
    ImportJob.objects.filter(pk=job.pk).update(mapping=mapping, duplicates=duplicates, deal_stage=deal_stage)
    ImportMappingMemory.objects.update_or_create(user=actor, headers_key=imports.headers_key(headers),
                                                 defaults={"mapping": mapping})


def remembered_mapping(user, headers) -> dict | None:
    row = ImportMappingMemory.objects.filter(user=user, headers_key=imports.headers_key(headers)).first()
    return row.mapping if row else None


def import_start(*, actor, job) -> None:
    gate.require(actor, gate.IMPORT_CLIENTS)
    if not ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.UPLOADED).update(status=ImportJob.Status.QUEUED):
        return  # already started: a second click does not start a second run
    from .tasks import import_run as queued

    transaction.on_commit(lambda: queued.delay(str(job.pk)))


def _custom_fields():
    return {f.key: f for f in CustomField.objects.filter(is_active=True, entity=CustomField.Entity.CLIENT)}


def import_run(*, job_id, stop_after_chunks: int | None = None) -> ImportJob:
    """The row reasons are written in the language of the person who started the import."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    with single_runner(f"import:{job_id}") as alone:
        if not alone:  # another worker has this job (a redelivered message): leave it to that one
            return job
        with override(job.created_by.language):
            return _import_run(job_id=job_id, stop_after_chunks=stop_after_chunks)


def _import_run(*, job_id, stop_after_chunks: int | None = None) -> ImportJob:
    """Import the rows from where the last run stopped. Each chunk (rows, their records, the feed,
    the job's counters) commits together: a crash loses at most an uncommitted chunk, which the
    next run redoes; the unique (job, row) record makes a row count once."""
    job = ImportJob.objects.select_related("created_by", "deal_stage").get(pk=job_id)
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.UNDONE):
        return job
    custom = _custom_fields()
    headers, rows = read_rows(job, start=job.processed)
    if not job.total:
        book = imports.open_book(job.file.path)
        total = max((book[job.sheet].max_row or 1) - 1, 0)
        book.close()
        ImportJob.objects.filter(pk=job.pk).update(total=total)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    chunks = 0
    try:
        while True:
            chunk = list(islice(rows, CHUNK))
            if not chunk:
                break
            with transaction.atomic():
                _import_chunk(job, chunk, custom)
            chunks += 1
            if stop_after_chunks is not None and chunks >= stop_after_chunks:
                raise RuntimeError("worker died")  # for the test of a run that dies half way
    except imports.HostileFile as error:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, error=" ".join(error.messages)[:300])
        return ImportJob.objects.get(pk=job.pk)
    done = ImportJob.objects.get(pk=job.pk).processed
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE, finished_at=timezone.now(), total=done)
    # (a sheet without a declared size shows "N of 0" while it runs: its total is known at the end)
    return ImportJob.objects.get(pk=job.pk)


def _import_chunk(job, chunk, custom) -> None:
    actor = job.created_by
    parsed = []
    for number, cells in chunk:
        if not any(c not in (None, "") for c in cells):
            parsed.append((number, None, [_("An empty row.")], True))
            continue
        data, errors = imports.parse_row(cells, job.mapping, custom)
        parsed.append((number, data, errors, False))
    phones = {d["phone"] for _n, d, e, _s in parsed if d and not e and d.get("phone")}
    emails = {d["email"] for _n, d, e, _s in parsed if d and not e and d.get("email")}
    existing = {}
    if job.duplicates != ImportJob.Duplicates.CREATE and (phones or emails):
        # only clients the importer may see: an import never reaches (or reveals) anyone else's
        for client in gate.scope_to_user(actor, Client.objects.alive()).filter(Q(phone__in=phones) | Q(email__in=emails)):
            existing.setdefault(("phone", client.phone), client)
            if client.email:
                existing.setdefault(("email", client.email.lower()), client)
    records, entries, fresh = [], [], []
    counts = {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
    for number, data, errors, empty in parsed:
        if errors:
            outcome = ImportRecord.Outcome.SKIPPED if empty else ImportRecord.Outcome.FAILED
            records.append(ImportRecord(job=job, row=number, outcome=outcome, reason="; ".join(errors)[:500]))
            counts["skipped" if empty else "failed"] += 1
            continue
        twin = None
        if job.duplicates != ImportJob.Duplicates.CREATE:
            twin = existing.get(("phone", data.get("phone"))) or existing.get(("email", (data.get("email") or "").lower()))
        if twin and job.duplicates == ImportJob.Duplicates.SKIP:
            records.append(ImportRecord(job=job, row=number, outcome=ImportRecord.Outcome.SKIPPED, client=twin,
                                        reason=_("A client with this phone or email exists.")))
            counts["skipped"] += 1
            continue
        if twin and twin.pk is None:  # a row earlier in this chunk: merge into the pending insert
            _fill(twin, data)
            records.append(ImportRecord(job=job, row=number, outcome=ImportRecord.Outcome.UPDATED, client=twin))
            counts["updated"] += 1
            continue
        if twin:
            previous = {f: imports._text(getattr(twin, f)) for f in UPDATABLE if f in data}
            previous["custom"] = dict(twin.custom)
            _fill(twin, data)
            twin.modified_by = actor
            twin.save()
            records.append(ImportRecord(job=job, row=number, outcome=ImportRecord.Outcome.UPDATED, client=twin, previous=previous))
            entries.append(activity.entry(client_id=twin.pk, actor=actor, kind=Activity.Kind.CHANGE, field="import",
                                          field_label=_("Import"), new=job.filename))
            counts["updated"] += 1
            continue
        client = Client(created_by=actor, modified_by=actor, responsible=actor)
        _fill(client, data)
        fresh.append((number, client, data))
        counts["created"] += 1
        if data.get("phone"):
            existing[("phone", data["phone"])] = client
        if data.get("email"):
            existing[("email", data["email"].lower())] = client
    # New clients in one INSERT per chunk (PostgreSQL returns their ids), then what hangs on them.
    Client.objects.bulk_create([client for _n, client, _d in fresh], batch_size=1000)
    _attach(job, actor, fresh)
    for number, client, _data in fresh:
        records.append(ImportRecord(job=job, row=number, outcome=ImportRecord.Outcome.CREATED, client=client))
        entries.append(activity.entry(client_id=client.pk, actor=actor, kind=Activity.Kind.CREATED, new=job.filename))
    _write_rows(records, entries)
    from django.db.models import F

    ImportJob.objects.filter(pk=job.pk).update(
        processed=F("processed") + len(chunk), created=F("created") + counts["created"],
        updated=F("updated") + counts["updated"], skipped=F("skipped") + counts["skipped"],
        failed=F("failed") + counts["failed"],
    )
    job.processed += len(chunk)


def _write_rows(records, entries) -> None:
    """The chunk's row records (unique (job, row): a row never counts twice) and feed entries.
    On PostgreSQL with COPY: a hundred thousand of each would otherwise cost as many model
    instances and an UNNEST insert per batch."""
    from django.db import connection

    if connection.vendor != "postgresql":
        ImportRecord.objects.bulk_create(records)
        activity.record_many(entries)
        return
    now = timezone.now()
    with connection.cursor() as cursor:
        with cursor.copy("COPY clients_importrecord (job_id, row, outcome, reason, client_id, previous) FROM STDIN") as copy:
            for r in records:
                copy.write_row((r.job_id, r.row, r.outcome, r.reason, r.client.pk if r.client else None,
                                json.dumps(r.previous or {})))
        columns = "client_id, deal_id, actor_id, kind, field, field_label, old_value, new_value, text, created_at"
        with cursor.copy(f"COPY crm_activity ({columns}) FROM STDIN") as copy:
            for e in entries:
                copy.write_row((e.client_id, e.deal_id, e.actor_id, e.kind, e.field, e.field_label, e.old_value,
                                e.new_value, e.text, now))


def _attach(job, actor, fresh) -> None:
    """Tags and (when asked) a deal per row for the clients a chunk created."""
    through = Client.tags.through
    names = {name for _n, _c, data in fresh for name in data.get("tags", [])}
    tags = {}
    for name in names:
        tags[name] = Tag.objects.get_or_create(name=name)[0]
    links = [through(client_id=c.pk, tag_id=tags[name].pk) for _n, c, data in fresh for name in data.get("tags", [])]
    through.objects.bulk_create(links, ignore_conflicts=True)
    if job.deal_stage_id:
        from deals.models import Deal
        from deals.services import new_position

        Deal.objects.bulk_create([
            Deal(client=c, stage_id=job.deal_stage_id, name=data.get("deal_name") or c.name, budget=data.get("deal_budget") or 0,
                 responsible=actor, created_by=actor, position=new_position())
            for _n, c, data in fresh if data.get("deal_name") or data.get("deal_budget") is not None
        ])


def _fill(client, data) -> None:
    for field in UPDATABLE:
        if field in data:
            setattr(client, field, data[field])
    if "custom" in data:
        client.custom = {**client.custom, **data["custom"]}
    client.phone_digits = phone_digits(client.all_phones)


@transaction.atomic
def import_undo(*, actor, job) -> None:
    """Created clients are soft-deleted, updated ones get their old values back (feeds record both)."""
    gate.require(actor, gate.IMPORT_CLIENTS)
    if job.status not in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        raise imports.HostileFile(_("Only a finished import can be undone."))
    now = timezone.now()
    created = list(job.records.filter(outcome="created", client__isnull=False).values_list("client_id", flat=True))
    Client.objects.filter(pk__in=created, deleted_at__isnull=True).update(deleted_at=now, deleted_by=actor, modified_at=now)
    entries = [activity.entry(client_id=pk, actor=actor, kind=Activity.Kind.DELETED, new=_("import undone")) for pk in created]
    # Latest row first: a client updated by several rows ends with the values it had before the first.
    for record in job.records.filter(outcome="updated").select_related("client").order_by("-row"):
        client = record.client
        if client is None or not record.previous or client.pk in created:
            continue
        previous = dict(record.previous)
        client.custom = previous.pop("custom", client.custom)
        for field, value in previous.items():
            if field == "registration_date":
                from datetime import date

                value = date.fromisoformat(value) if value else None
            setattr(client, field, value)
        client.phone_digits = phone_digits(client.all_phones)
        client.modified_by = actor
        client.save()
        entries.append(activity.entry(client_id=client.pk, actor=actor, kind=Activity.Kind.RESTORED, new=_("import undone")))
    activity.record_many(entries)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.UNDONE)
