"""The import wizard: upload → sheet → columns → preview → run (worker, progress) → report."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import permissions as gate
from crm.xlsx import xlsx_response

from . import import_services as services
from . import imports
from .models import CustomField, ImportJob

PREVIEW_ROWS = 10


def _job(request, pk) -> ImportJob:
    gate.require(request.user, gate.IMPORT_CLIENTS)
    return get_object_or_404(ImportJob, pk=pk, created_by=request.user)


def _file_gone(request):
    return render(request, "clients/import.html", {"step": "upload", "jobs": [],
                                                   "error": _("The uploaded file is no longer available: upload it again.")})


@require_http_methods(["GET", "POST"])
def upload(request):
    gate.require(request.user, gate.IMPORT_CLIENTS)
    error = None
    if request.method == "POST":
        uploaded = request.FILES.get("file")
        if uploaded is None:
            error = _("Choose an .xlsx file.")
        else:
            try:
                job = services.import_upload(actor=request.user, uploaded=uploaded)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                return redirect("clients:import-map" if job.sheet else "clients:import-sheet", pk=job.pk)
    jobs = ImportJob.objects.filter(created_by=request.user).order_by("-created_at")[:10]
    return render(request, "clients/import.html", {"step": "upload", "error": error, "jobs": jobs})


@require_http_methods(["GET", "POST"])
def sheet(request, pk):
    job = _job(request, pk)
    error = None
    if request.method == "POST":
        try:
            services.import_set_sheet(actor=request.user, job=job, sheet=request.POST.get("sheet", ""))
            return redirect("clients:import-map", pk=job.pk)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    try:
        sheets = services.sheet_names(job)
    except OSError:
        return _file_gone(request)
    return render(request, "clients/import.html", {"step": "sheet", "job": job, "sheets": sheets, "error": error})


@require_http_methods(["GET", "POST"])
def mapping(request, pk):
    from deals.selectors import stage_choices_for

    job = _job(request, pk)
    custom = list(CustomField.objects.filter(is_active=True, entity=CustomField.Entity.CLIENT))
    try:
        headers, rows = services.read_rows(job, limit=3)
        samples = [cells for _n, cells in rows]
    except ValidationError as exc:
        return render(request, "clients/import.html", {"step": "upload", "error": " ".join(exc.messages), "jobs": []})
    except (OSError, KeyError):
        return _file_gone(request)
    error = None
    if request.method == "POST":
        chosen = {str(i): request.POST.get(f"col_{i}", "") for i in range(len(headers))}
        stage = request.POST.get("deal_stage", "")
        try:
            stage_obj = None
            if stage.isdigit():
                from deals.selectors import stage_for_user_or_404

                stage_obj = stage_for_user_or_404(request.user, int(stage))
            services.import_set_mapping(actor=request.user, job=job, mapping=chosen, headers=headers,
                                        duplicates=request.POST.get("duplicates", "skip"), deal_stage=stage_obj)
            return redirect("clients:import-preview", pk=job.pk)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    current = job.mapping or services.remembered_mapping(request.user, headers) or imports.guess_mapping(headers, custom)
    columns = [(i, h, [imports._text(s[i]) if i < len(s) else "" for s in samples], current.get(str(i), ""))
               for i, h in enumerate(headers)]
    ctx = {"step": "map", "job": job, "columns": columns, "choices": imports.field_choices(custom), "error": error,
           "duplicates": ImportJob.Duplicates.choices, "stages": stage_choices_for(request.user)}
    return render(request, "clients/import.html", ctx)


@require_http_methods(["GET", "POST"])
def preview(request, pk):
    job = _job(request, pk)
    if request.method == "POST":
        services.import_start(actor=request.user, job=job)
        return redirect("clients:import-job", pk=job.pk)
    custom = {f.key: f for f in CustomField.objects.filter(is_active=True, entity=CustomField.Entity.CLIENT)}
    try:
        headers, rows = services.read_rows(job, limit=PREVIEW_ROWS)
    except (OSError, KeyError, ValidationError):
        return _file_gone(request)
    keys = [job.mapping[k] for k in sorted(job.mapping, key=int)]
    preview_rows = []
    for number, cells in rows:
        data, errors = imports.parse_row(cells, job.mapping, custom)
        preview_rows.append((number, [imports._text(cells[int(k)]) if int(k) < len(cells) else "" for k in sorted(job.mapping, key=int)], errors))
    labels = dict(imports.field_choices(custom.values()))
    return render(request, "clients/import.html", {"step": "preview", "job": job, "rows": preview_rows,
                                                   "fields": [labels.get(k, k) for k in keys]})


@require_GET
def job_view(request, pk):
    job = _job(request, pk)
    template = "clients/import.html#import-progress" if request.htmx else "clients/import.html"
    return render(request, template, {"step": "job", "job": job})


@require_GET
def report(request, pk):
    job = _job(request, pk)
    rows = ((r.row, r.get_outcome_display(), r.reason, r.client_id or "") for r in job.records.order_by("row").iterator())
    return xlsx_response(filename=f"import_report_{job.pk}.xlsx", header=[_("Row"), _("Outcome"), _("Reason"), _("Client ID")], rows=rows)


@require_POST
def undo(request, pk):
    job = _job(request, pk)
    try:
        services.import_undo(actor=request.user, job=job)
        messages.success(request, _("The import was undone."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("clients:import-job", pk=job.pk)
