import copy

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.http import FileResponse, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import exports
from crm import permissions as gate
from crm.http import PAGING_PARAMS, hx_redirect, table_query
from crm.models import Job
from crm.selectors import job_status

from . import documents, layout, selectors, services
from .filters import ClientFilter
from .forms import BulkResponsibleForm, ClientForm, CustomFieldForm, SavedFilterForm
from .models import DocumentTemplate


@require_GET
def client_list(request):
    gate.require(request.user, gate.VIEW_CLIENTS)
    page = selectors.clients_table(request.user, request.GET, return_to=request.get_full_path())
    query = table_query(request.GET)
    filter_query = table_query(request.GET, drop=PAGING_PARAMS + ("q", "view", "tab"))
    ctx = {
        "page": page,
        "view": request.GET.get("view", "all"),
        "tab": request.GET.get("tab", ""),
        "q": request.GET.get("q", ""),
        "query": query,
        "keep_params": [(k, v) for k, v in QueryDict(query).lists() if k != "q" for v in v],
        "filters_active": bool(filter_query),
        "view_links": _view_links(request.GET),
    }
    template = "clients/list.html#clients-table" if request.htmx and not request.htmx.boosted else "clients/list.html"
    return render(request, template, ctx)


def _view_links(params: QueryDict) -> dict[str, str]:
    """Links for the system filters and tabs that keep every other filter."""
    links = {}
    for key, values in (("view", selectors.VIEWS), ("tab", ("", "potential", "converted"))):
        for value in values:
            kept = params.copy()
            for drop in PAGING_PARAMS + (key,):
                kept.pop(drop, None)
            if value and value != "all":
                kept[key] = value
            links[f"{key}_{value or 'any'}"] = "?" + kept.urlencode() if kept else "?"
    return links


@require_GET
def client_count(request):
    """The table's total, fetched after the page so a big count never slows the rows down."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    total, capped = selectors.clients_count(request.user, request.GET)
    return render(request, "clients/list.html#clients-count", {"total": total, "capped": capped})


@require_GET
def client_export(request):
    """The clients table as filtered, in the user's columns, to .xlsx (or .csv with format=csv):
    the file itself up to EXPORT_INLINE_MAX_ROWS rows, else a job whose file the worker makes."""
    gate.require(request.user, gate.EXPORT_CLIENTS)
    export = selectors.export_rows(request.user, request.GET)
    fmt = "csv" if request.GET.get("format") == "csv" else "xlsx"
    filename = f"clients_{timezone.localtime().strftime('%Y-%m-%d_%H%M')}.{fmt}"
    limit = exports.inline_max_rows()
    if export.count_upto(limit) > limit:
        job = exports.start(request, kind=Job.Kind.EXPORT, total=0, params={
            "what": "clients", "query": request.GET.urlencode(), "format": fmt, "filename": filename})
        return exports.job_response(request, job)
    return exports.file_response(fmt=fmt, filename=filename, export=export, language=request.LANGUAGE_CODE)


@require_GET
def filter_panel(request):
    """The custom filters form (lazy: its selects cost queries the table itself does not)."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    filterset = ClientFilter(
        request.GET, custom_fields=selectors.custom_fields_active(), hidden=gate.hidden_fields(request.user)
    ).with_choices(request.user)
    ctx = {
        "form": filterset.form,
        "saved_filters": selectors.saved_filters_of(request.user),
        "query": table_query(request.GET),
        "save_form": SavedFilterForm(),
    }
    return render(request, "clients/list.html#filter-panel", ctx)


@require_GET
def advanced_search(request):
    """A form over every field; a single match opens that client's card directly."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    custom_fields = selectors.custom_fields_active()
    params = request.GET.copy()
    searched = params.pop("go", None)
    if searched:
        qs, filterset = selectors.filtered_clients(request.user, params, custom_fields)
        if filterset.is_valid():
            matches = list(qs.values_list("pk", flat=True)[:2])
            if len(matches) == 1:
                return redirect("clients:detail", pk=matches[0])
            return redirect(reverse("clients:list") + "?" + table_query(params))
    else:
        filterset = ClientFilter(None, custom_fields=custom_fields, hidden=gate.hidden_fields(request.user))
    return render(request, "clients/search.html", {"form": filterset.with_choices(request.user).form})


def _form_response(request, form, *, client=None, status=200):
    ctx = {"form": form, "client": client}
    template = "clients/form.html#client-form" if request.htmx else "clients/form.html"
    return render(request, template, ctx, status=status)


@require_http_methods(["GET", "POST"])
def client_create(request):
    gate.require(request.user, gate.ADD_CLIENT)
    custom_fields = selectors.custom_fields_active()
    can_assign = gate.can(request.user, gate.CHANGE_RESPONSIBLE)
    locked = gate.locked_fields(request.user)
    if request.method == "POST":
        gate.refuse_crafted_reassignment(request, current=request.user.pk)
        gate.refuse_posted_fields(request, {layout.FORM_FIELD.get(key, key) for key in locked})
        form = ClientForm(request.POST, custom_fields=custom_fields, can_change_responsible=can_assign, locked=locked)
        if form.is_valid():
            client = services.client_create(actor=request.user, data=form.service_data())
            messages.success(request, _("Client “%(name)s” created.") % {"name": client.name})
            return hx_redirect(client.get_absolute_url()) if request.htmx else redirect(client)
    else:
        form = ClientForm(
            initial={"responsible": request.user}, custom_fields=custom_fields, can_change_responsible=can_assign,
            locked=locked,
        )
    return _form_response(request, form)


@require_http_methods(["GET", "POST"])
def client_edit(request, pk):
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_CLIENT)
    custom_fields = selectors.custom_fields_active()
    can_assign = gate.can(request.user, gate.CHANGE_RESPONSIBLE)
    locked = gate.locked_fields(request.user)
    if request.method == "POST":
        gate.refuse_crafted_reassignment(request, current=client.responsible_id)
        gate.refuse_posted_fields(request, {layout.FORM_FIELD.get(key, key) for key in locked})
        # The form works on a copy: the service compares against the stored client.
        form = ClientForm(
            request.POST, instance=copy.copy(client), custom_fields=custom_fields, can_change_responsible=can_assign,
            locked=locked,
        )
        if form.is_valid():
            try:
                services.client_update(
                    actor=request.user, client=client, data=form.service_data(),
                    seen_modified=form.cleaned_data["seen_modified"],
                )
            except services.ClientChanged as changed:
                form.show_conflict(changed.current)
                return _form_response(request, form, client=client)
            messages.success(request, _("Changes saved."))
            if request.htmx:
                # Edited from the messenger's panel: back to that chat, else to the card.
                here = request.htmx.current_url_abs_path or ""
                inbox = reverse("messenger:inbox")
                return hx_redirect(here if here.startswith(inbox) else client.get_absolute_url())
            return redirect(client)
    else:
        form = ClientForm(instance=client, custom_fields=custom_fields, can_change_responsible=can_assign, locked=locked)
    return _form_response(request, form, client=client)


@require_http_methods(["GET", "POST"])
def client_delete(request, pk):
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.DELETE_CLIENT)
    if request.method == "POST":
        with_deals = request.POST.get("with_deals") == "1"
        services.clients_soft_delete(
            actor=request.user, clients=selectors.client_as_queryset(client), with_deals=with_deals
        )
        text = (_("Client “%(name)s” and their deals deleted. An administrator can restore them.") if with_deals
                else _("Client “%(name)s” deleted. An administrator can restore it."))
        messages.success(request, text % {"name": client.name})
        url = reverse("clients:list")
        return hx_redirect(url) if request.htmx else redirect(url)
    template = "clients/delete.html#delete-confirm" if request.htmx else "clients/delete.html"
    return render(request, template, {"client": client})


@require_POST
def client_restore(request, pk):
    client = gate.client_or_404(request.user, pk, include_deleted=True)
    gate.require(request.user, gate.RESTORE_CLIENT)
    with_deals = request.POST.get("with_deals") == "1"
    services.clients_restore(actor=request.user, clients=selectors.client_as_queryset(client), with_deals=with_deals)
    text = _("Client “%(name)s” restored with their deals.") if with_deals else _("Client “%(name)s” restored.")
    messages.success(request, text % {"name": client.name})
    return hx_redirect(client.get_absolute_url()) if request.htmx else redirect(client)


@require_http_methods(["GET", "POST"])
def table_columns(request):
    """Per-user column settings: show, hide and order the table's columns."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    custom_fields = selectors.custom_fields_active()
    chosen, available = selectors.table_columns_for(request.user, custom_fields)
    if request.method == "POST":
        shown = set(request.POST.getlist("shown"))
        order = [k for k in request.POST.getlist("order") if k in available]
        columns = [k for k in dict.fromkeys(order) if k in shown]
        services.table_settings_save(actor=request.user, table=selectors.CLIENTS_TABLE, columns=columns)
        messages.success(request, _("Table settings saved."))
        url = reverse("clients:list")
        return hx_redirect(url) if request.htmx else redirect(url)
    chosen_keys = [c.key for c in chosen]
    rest = [c for key, c in available.items() if key not in chosen_keys]
    rows = [(c, True) for c in chosen] + [(c, False) for c in rest]
    template = "clients/columns.html#columns-form" if request.htmx else "clients/columns.html"
    return render(request, template, {"rows": rows})


@require_POST
def saved_filter_create(request):
    gate.require(request.user, gate.VIEW_CLIENTS)
    form = SavedFilterForm(request.POST)
    query = table_query(QueryDict(request.POST.get("query", "")))
    if form.is_valid():
        services.saved_filter_save(actor=request.user, name=form.cleaned_data["name"], query=query)
        messages.success(request, _("Filter “%(name)s” saved.") % {"name": form.cleaned_data["name"]})
    else:
        messages.error(request, _("Give the filter a name of at most 60 characters."))
    return redirect(reverse("clients:list") + ("?" + query if query else ""))


@require_POST
def saved_filter_delete(request, pk):
    gate.require(request.user, gate.VIEW_CLIENTS)
    saved = get_object_or_404(selectors.saved_filters_of(request.user), pk=pk)  # someone else's: 404
    services.saved_filter_delete(actor=request.user, saved=saved)
    messages.success(request, _("Filter “%(name)s” deleted.") % {"name": saved.name})
    url = reverse("clients:list")
    return hx_redirect(url) if request.htmx else redirect(url)


BULK_ACTIONS = {
    "responsible": gate.CHANGE_RESPONSIBLE,
    "delete": gate.DELETE_CLIENT,
}


def _bulk_action(request) -> str:
    action = request.POST.get("action", "")
    if action not in BULK_ACTIONS:
        raise BadRequest("unknown action")
    gate.require(request.user, BULK_ACTIONS[action])
    return action


@require_POST
def bulk_confirm(request):
    """Step one of a mass action: say exactly how many clients it will touch."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    action = _bulk_action(request)
    selection = selectors.bulk_selection(request.user, request.POST)
    ctx = {
        "action": action,
        "selection": selection,
        "form": BulkResponsibleForm() if action == "responsible" else None,
        "return_query": request.POST.get("return_query", ""),
    }
    return render(request, "clients/bulk.html#bulk-confirm", ctx)


@require_POST
def bulk_run(request):
    """Step two: run the action on the same selection, refusing if it changed since step one."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    action = _bulk_action(request)
    selection = selectors.bulk_selection(request.user, request.POST)
    form = BulkResponsibleForm(request.POST) if action == "responsible" else None
    ctx = {"action": action, "selection": selection, "form": form, "return_query": request.POST.get("return_query", "")}
    if form is not None and not form.is_valid():
        return render(request, "clients/bulk.html#bulk-confirm", ctx)
    confirmed = request.POST.get("digest", "")
    try:
        if action == "responsible":
            done = services.clients_change_responsible(
                actor=request.user, clients=selection.queryset, digest=confirmed,
                responsible=form.cleaned_data["responsible"],
            )
        else:
            done = services.clients_soft_delete(
                actor=request.user, clients=selection.queryset, digest=confirmed,
                with_deals=request.POST.get("with_deals") == "1",
            )
    except services.SelectionChanged:
        # Show the new selection to confirm; nothing was written.
        ctx["changed"] = True
        return render(request, "clients/bulk.html#bulk-confirm", ctx)
    if isinstance(done, Job):  # over BULK_INLINE_MAX clients: the worker does it, the modal follows it
        return render(request, "clients/bulk.html#bulk-job", {**ctx, "job": done, **job_status(done)})
    if action == "responsible":
        text = ngettext("Responsible changed for %(n)s client.", "Responsible changed for %(n)s clients.", done)
    else:
        text = ngettext("%(n)s client deleted.", "%(n)s clients deleted.", done)
    messages.success(request, text % {"n": done})
    query = request.POST.get("return_query", "")
    return hx_redirect(reverse("clients:list") + ("?" + query if query else ""))


@require_GET
def field_list(request):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    return render(request, "clients/fields.html", {"fields": selectors.custom_fields_all()})


@require_http_methods(["GET", "POST"])
def field_edit(request, pk=None):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    field = selectors.custom_field_or_404(pk) if pk else None
    form = CustomFieldForm(request.POST if request.method == "POST" else None, instance=field)
    if request.method == "POST" and form.is_valid():
        services.custom_field_save(actor=request.user, form=form)
        messages.success(request, _("Field saved."))
        return redirect("fields:list")
    return render(request, "clients/field_form.html", {"form": form, "field": field})


@require_POST
def field_toggle(request, pk):
    """Delete (hide, values kept) or bring back a custom field."""
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    field = selectors.custom_field_or_404(pk)
    services.custom_field_set_active(actor=request.user, field=field, active=not field.is_active)
    return redirect("fields:list")


@require_http_methods(["GET", "POST"])
def document_templates(request):
    """Admins upload .docx templates with placeholders like {{ name }} for the Documents action."""
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    error = None
    if request.method == "POST":
        uploaded = request.FILES.get("file")
        try:
            if uploaded is None:
                raise ValidationError(_("Choose a .docx file."))
            documents.template_upload(actor=request.user, name=request.POST.get("name", ""), uploaded=uploaded)
            messages.success(request, _("Template uploaded."))
            return redirect("clients:templates")
        except ValidationError as exc:
            error = " ".join(exc.messages)
    ctx = {"templates": DocumentTemplate.objects.all(), "placeholders": documents.PLACEHOLDERS, "error": error,
           "custom_fields": selectors.custom_fields_active()}
    return render(request, "clients/templates.html", ctx)


@require_POST
def documents_download(request):
    """The Documents mass action: choose a template (step one), get a zip of filled documents."""
    gate.require(request.user, gate.EXPORT_CLIENTS)
    selection = selectors.bulk_selection(request.user, request.POST)
    template_id = request.POST.get("template", "")
    if not template_id.isdigit():
        ctx = {"selection": selection, "templates": DocumentTemplate.objects.all(),
               "in_background": selection.count > exports.documents_inline_max()}
        return render(request, "clients/bulk.html#documents-form", ctx)
    template = get_object_or_404(DocumentTemplate, pk=int(template_id))
    try:
        documents.check_count(selection.count)
        if selection.count > exports.documents_inline_max():  # the worker fills them; the owner is told
            job = exports.start(request, kind=Job.Kind.DOCUMENTS, total=selection.count, params={
                "template": template.pk, "selection": documents.selection_query(selection), "filename": f"documents_{selection.count}.zip"})
            return exports.job_response(request, job)
        spool, count = documents.documents_zip(actor=request.user, template=template, clients=selection.queryset)
    except ValidationError as exc:
        return HttpResponse(" ".join(exc.messages), status=400)
    return FileResponse(spool, as_attachment=True, filename=f"documents_{count}.zip", content_type="application/zip")
