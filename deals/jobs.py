"""Job handlers of exports and documents (crm.exports): the clients and deals exports above
EXPORT_INLINE_MAX_ROWS rows, and the documents zip above DOCUMENTS_INLINE_MAX clients.

Each reads its rows again as the job's owner, through the same selectors and gate as the request
(filters, visibility, columns, hidden fields), with the query string the request had. A resumed
run writes its file from the start: the file is stored only once complete.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import QueryDict
from django.utils.translation import gettext as _

from clients import documents
from clients import selectors as clients_selectors
from clients.models import DocumentTemplate
from crm import exports, jobs
from crm import permissions as gate
from crm.exports import ExportRows
from crm.models import Job

from . import selectors


def _may_export(job: Job) -> None:
    if not job.owner.is_active or not gate.can(job.owner, gate.EXPORT_CLIENTS):
        raise jobs.JobFailed(_("You may no longer export clients."))


def _export_rows(job: Job) -> ExportRows:
    owner, params = job.owner, QueryDict(job.params.get("query", ""))
    if job.params.get("what") == "deals":
        if not gate.can(owner, gate.VIEW_DEALS):
            raise jobs.JobFailed(_("You may no longer export clients."))
        funnel = next((f for f in selectors.funnels_for(owner) if f.pk == job.params.get("funnel")), None)
        if funnel is None:
            raise jobs.JobFailed(_("The funnel is no longer open to you."))
        hidden = gate.hidden_by_block(owner)[gate.DEAL]
        return selectors.deals_export_rows(owner, params, funnel=funnel, hidden=hidden)
    return clients_selectors.export_rows(owner, params)


@jobs.handler(Job.Kind.EXPORT)
def export_run(job: Job, progress: jobs.Progress) -> None:
    """A clients or deals export, to .xlsx or .csv, as its owner would have had it in the request."""
    with exports.as_owner(job):
        _may_export(job)
        try:
            export = _export_rows(job)
        except PermissionDenied:
            raise jobs.JobFailed(_("You may no longer export clients.")) from None
        exports.export_run(job, progress, export)


@jobs.handler(Job.Kind.DOCUMENTS)
def documents_run(job: Job, progress: jobs.Progress) -> None:
    """The documents zip for the clients the owner chose (chosen again as them)."""
    with exports.as_owner(job):
        _may_export(job)
        template = DocumentTemplate.objects.filter(pk=job.params.get("template")).first()
        if template is None:
            raise jobs.JobFailed(_("The document template was deleted."))
        selection = clients_selectors.bulk_selection(job.owner, QueryDict(job.params.get("selection", "")))

        def write(out):
            documents.documents_write(out, actor=job.owner, template=template, clients=selection.queryset,
                                      progress=progress)

        try:
            exports.save_result(job, filename=job.params["filename"], write=write)
        except ValidationError as error:
            raise jobs.JobFailed(" ".join(error.messages)) from None
        except PermissionDenied:
            raise jobs.JobFailed(_("You may no longer export clients.")) from None
