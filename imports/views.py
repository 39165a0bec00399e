"""The import wizard: upload → sheet → columns → preview → run (worker, progress) → report."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import permissions as gate
from crm.xlsx import xlsx_response

from . import fields, readers, services
from .models import ImportJob, ImportRecord

Outcome = ImportRecord.Outcome

PREVIEW_ROWS = 10
TEMPLATE = "imports/import.html"
PROBLEMS_SHOWN = 50  # rows failed or skipped listed on the finished import's page; the report has all


def _job(request, pk) -> ImportJob:
    """The user's own import (anyone else's is a 404)."""
    gate.require(request.user, gate.IMPORT_CLIENTS)
    job = get_object_or_404(ImportJob.objects.select_related("deal_line__funnel"), pk=pk, created_by=request.user)
    job.created_by = request.user  # the same user, its role already read with it
    return job


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


def _start_over(request, error: ValidationError):
    jobs = ImportJob.objects.filter(created_by=request.user).order_by("-created_at")[:10]
    return render(request, TEMPLATE, {"step": "upload", "jobs": jobs, "error": _message(error)})


@require_http_methods(["GET", "POST"])
def upload(request):
    gate.require(request.user, gate.IMPORT_CLIENTS)
    error = None
    if request.method == "POST":
        uploaded = request.FILES.get("file")
        if uploaded is None:
            error = _("Choose an .xlsx or .csv file.")
        else:
            try:
                job = services.import_upload(actor=request.user, uploaded=uploaded)
            except ValidationError as exc:
                error = _("“%(file)s”: %(problem)s") % {"file": uploaded.name, "problem": _message(exc)}
            else:
                return redirect("imports:map" if job.sheet else "imports:sheet", pk=job.pk)
    jobs = ImportJob.objects.filter(created_by=request.user).order_by("-created_at")[:10]
    return render(request, TEMPLATE, {"step": "upload", "error": error, "jobs": jobs})


@require_http_methods(["GET", "POST"])
def sheet(request, pk):
    job = _job(request, pk)
    if job.status != ImportJob.Status.UPLOADED:
        return redirect("imports:job", pk=job.pk)
    error = None
    if request.method == "POST":
        try:
            services.import_set_sheet(actor=request.user, job=job, sheet=request.POST.get("sheet", ""))
            return redirect("imports:map", pk=job.pk)
        except ValidationError as exc:
            error = _message(exc)
    try:
        sheets = services.sheet_names(job)
    except ValidationError as exc:
        return _start_over(request, exc)
    return render(request, TEMPLATE, {"step": "sheet", "job": job, "sheets": sheets, "error": error})


@require_http_methods(["GET", "POST"])
def mapping(request, pk):
    from deals.selectors import line_choices_for, line_for_user_or_404

    job = _job(request, pk)
    if job.status != ImportJob.Status.UPLOADED or not job.sheet:
        return redirect("imports:job" if job.status != ImportJob.Status.UPLOADED else "imports:sheet", pk=job.pk)
    custom = services.client_custom_fields()
    try:
        headers, samples = services.sample(job, 3)
    except ValidationError as exc:
        return _start_over(request, exc)
    error = None
    if request.method == "POST":
        chosen = {str(i): request.POST.get(f"col_{i}", "") for i in range(len(headers))}
        line = request.POST.get("deal_line", "")
        try:
            services.import_set_mapping(
                actor=request.user, job=job, mapping=chosen, headers=headers, duplicates=request.POST.get("duplicates", "skip"),
                deal_line=line_for_user_or_404(request.user, int(line)) if line.isdigit() else None,
                require_all=request.POST.get("require_all") == "on",
            )
            return redirect("imports:preview", pk=job.pk)
        except ValidationError as exc:
            error = _message(exc)
            job.mapping = chosen
    current = job.mapping or services.remembered_mapping(request.user, headers) or fields.guess_mapping(headers, custom)
    columns = [
        (i, h, [readers.cell_text(cells[i]) if i < len(cells) else "" for _n, cells in samples], current.get(str(i), ""))
        for i, h in enumerate(headers)
    ]
    ctx = {
        "step": "map", "job": job, "columns": columns, "error": error, "duplicates": ImportJob.Duplicates.choices,
        "choices": fields.field_choices(custom, can_create_fields=gate.can(request.user, gate.CONFIGURE_FIELDS)),
        "lines": line_choices_for(request.user) if gate.can(request.user, gate.ADD_DEAL) else [],
    }
    return render(request, TEMPLATE, ctx)


@require_http_methods(["GET", "POST"])
def preview(request, pk):
    job = _job(request, pk)
    if job.status != ImportJob.Status.UPLOADED:
        return redirect("imports:job", pk=job.pk)
    if not job.mapping:
        return redirect("imports:map", pk=job.pk)
    if request.method == "POST":
        try:
            services.import_start(actor=request.user, job=job)
        except ValidationError as exc:
            messages.error(request, _message(exc))
            return redirect("imports:map", pk=job.pk)
        return redirect("imports:job", pk=job.pk)
    try:
        headers, samples = services.sample(job, PREVIEW_ROWS)
    except ValidationError as exc:
        return _start_over(request, exc)
    decided, labels = services.preview_rows(job, headers, samples)
    rows = [(number, values, outcome, Outcome(outcome).label, reason) for number, values, outcome, reason in decided]
    ignored = [h or f"#{i + 1}" for i, h in enumerate(headers) if str(i) not in job.mapping]
    ctx = {"step": "preview", "job": job, "rows": rows, "fields": labels, "ignored": ignored}
    return render(request, TEMPLATE, ctx)


@require_GET
def job_view(request, pk):
    job = _job(request, pk)
    stalled = (job.status == ImportJob.Status.RUNNING and job.heartbeat_at is not None
               and timezone.now() - job.heartbeat_at > timedelta(seconds=10))
    template = f"{TEMPLATE}#import-progress" if request.htmx else TEMPLATE
    problems = [(r.row, r.get_outcome_display(), r.reason) for r in services.rows_not_imported(job, PROBLEMS_SHOWN)]
    ctx = {"step": "job", "job": job, "stalled": stalled, "problems": problems, "problems_shown": PROBLEMS_SHOWN}
    return render(request, template, ctx)


@require_GET
def report(request, pk):
    """Every row's outcome, the column and the reason; a failed row carries its cells, so the
    report is also the file to fix and import again."""
    job = _job(request, pk)
    headers = list(job.headers or [])
    rows = (
        [r.row, str(r.get_outcome_display()), r.column, r.reason, r.client_id or "", *r.values]
        for r in job.records.order_by("row").iterator(chunk_size=5000)
    )
    header = [_("Row"), _("Outcome"), _("Column"), _("Reason"), _("Client ID"), *headers]
    stem = job.filename.rsplit(".", 1)[0] or "import"
    return xlsx_response(filename=_("%(file)s — import report.xlsx") % {"file": stem}, header=header, rows=rows,
                         sheet_name=_("Import report"))


@require_POST
def undo(request, pk):
    job = _job(request, pk)
    try:
        services.import_undo(actor=request.user, job=job)
        messages.success(request, _("The import was undone."))
    except ValidationError as exc:
        messages.error(request, _message(exc))
    return redirect("imports:job", pk=job.pk)
