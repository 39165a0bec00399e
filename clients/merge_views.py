"""The merge page (two clients side by side, seed 004's «Копировать»), the merge itself and its undo."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm import permissions as gate
from crm.http import hx_redirect

from . import merge as merging
from .models import Merge
from .phones import format_phone


def _page(request, kept, other, *, error: str = "", chosen: dict | None = None):
    rows = merging.rows(kept, other)
    if chosen is not None:  # a refused form comes back with the user's choices
        for row in rows:
            row.take_other = chosen.get(row.key) == "other"
    phone, extra = merging.phones_union(kept, other)
    ctx = {
        "kept": kept, "other": other, "rows": rows, "error": error,
        "preview": merging.preview(kept, other),
        "phones": [format_phone(p) for p in [phone, *extra] if p],
        "emails": merging.emails_union("", kept, other),
        "tags": sorted({t.name for t in [*kept.tags.all(), *other.tags.all()]}),
    }
    return render(request, "clients/merge.html", ctx, status=400 if error else 200)


@require_http_methods(["GET", "POST"])
def merge_page(request, pk):
    """GET: pick the other client (a search), then both side by side; POST: merge into this one."""
    kept = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.MERGE_CLIENTS)
    other_pk = request.POST.get("other") or request.GET.get("other")
    if not other_pk:
        query = request.GET.get("q", "")
        ctx = {"kept": kept, "query": query, "found": merging.candidates(request.user, kept, query)}
        template = "clients/merge.html#merge-candidates" if request.htmx else "clients/merge.html"
        return render(request, template, ctx)
    other = gate.client_or_404(request.user, other_pk)
    if request.method == "GET":
        return _page(request, kept, other)
    chosen = {key: request.POST.get(f"keep_{key}", "kept") for key, _label in merging.field_keys()}
    try:
        merging.merge(actor=request.user, kept=kept, other=other, take={k for k, v in chosen.items() if v == "other"})
    except merging.MergeRefused as refusal:
        return _page(request, kept, other, error=str(refusal), chosen=chosen)
    kept.refresh_from_db(fields=["name"])
    messages.success(request, _("“%(other)s” (#%(other_id)s) was merged into “%(kept)s” (#%(kept_id)s). An administrator "
                                "can undo it from either card.") % {"other": other.name, "other_id": other.pk,
                                                                    "kept": kept.name, "kept_id": kept.pk})
    return redirect(kept)


@require_POST
def merge_undo(request, pk):
    record = get_object_or_404(Merge.objects.select_related("kept", "merged"), pk=pk)
    # both clients must be ones the user may see (the merged one is deleted until this undo)
    gate.client_or_404(request.user, record.kept_id, include_deleted=True)
    gate.client_or_404(request.user, record.merged_id, include_deleted=True)
    gate.require(request.user, gate.MERGE_CLIENTS)
    try:
        left = merging.undo(actor=request.user, record=record)
    except merging.MergeRefused as refusal:
        messages.error(request, str(refusal))
        return hx_redirect(record.kept.get_absolute_url()) if request.htmx else redirect(record.kept)
    text = _("The merge was undone: “%(other)s” is back with what it had.") % {"other": record.merged.name}
    if left:
        labels = {**dict(merging.field_keys()), "phone": _("Phone"), "extra_phones": _("Other phones"),
                  "extra_emails": _("Other e-mails")}
        text += " " + _("Changed since the merge, so left as they are: %(fields)s.") % {
            "fields": ", ".join(str(labels.get(k, k)) for k in left)}
    messages.success(request, text)
    return hx_redirect(record.kept.get_absolute_url()) if request.htmx else redirect(record.kept)
