from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients.selectors import bulk_selection
from crm import permissions as gate
from crm.http import hx_redirect, local_url, table_query
from crm.selectors import job_status

from . import selectors, services
from .forms import CompleteForm, TaskForm, TaskTypeForm


@require_GET
def task_list(request):
    gate.require(request.user, gate.VIEW_TASKS)
    page = selectors.tasks_section(request.user, request.GET)
    from clients.filters import users

    ctx = {"tasks": page.rows, "page": page, "view": page.view, "types": selectors.task_types(), "people": list(users()),
           "params": request.GET, "query": table_query(request.GET)}
    template = "tasks/list.html#task-rows" if request.htmx and request.htmx.target == "task-rows" else "tasks/list.html"
    return render(request, template, ctx)


@require_GET
def task_counts(request):
    """The navigation's open / overdue counts, fetched after the page and polled."""
    return render(request, "tasks/list.html#nav-counts", {"counts": selectors.task_counts(request.user)})


@require_http_methods(["GET", "POST"])
def task_create(request, client_pk):
    """"+ New task" in the card's Tasks block."""
    client = gate.client_or_404(request.user, client_pk)
    gate.require(request.user, gate.ADD_TASK)
    deals = gate.visible_deals(request.user).filter(client=client) if gate.can(request.user, gate.VIEW_DEALS) else None
    form = TaskForm(request.POST if request.method == "POST" else None, deals=deals,
                    initial={"responsible": request.user, "type": selectors.task_types()[0] if selectors.task_types() else None})
    if request.method == "POST" and form.is_valid():
        try:
            services.task_create(actor=request.user, client=client, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error("description", exc)
        else:
            messages.success(request, _("Task added."))
            return hx_redirect(client.get_absolute_url())
    return render(request, "tasks/list.html#task-form", {"form": form, "client": client})


@require_http_methods(["GET", "POST"])
def task_complete(request, pk):
    task = gate.task_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_TASK)
    form = CompleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.task_complete(actor=request.user, task=task, result=form.cleaned_data["result"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Task done."))
            return hx_redirect(local_url(request, request.POST.get("next"), reverse("tasks:list")))
    return render(request, "tasks/list.html#complete-form", {"form": form, "task": task, "next": request.GET.get("next", request.POST.get("next", ""))})


@require_POST
def bulk_add(request):
    """The clients table's "Add task" on ticked clients or every client matching the filter."""
    gate.require(request.user, gate.ADD_TASKS_BULK)
    selection = bulk_selection(request.user, request.POST)
    types = selectors.task_types()
    form = TaskForm(request.POST if request.POST.get("description") is not None else None, with_deal=False,
                    initial={"responsible": request.user, "type": types[0] if types else None})
    ctx = {"selection": selection, "form": form, "return_query": request.POST.get("return_query", "")}
    if request.POST.get("confirm") and form.is_valid():
        if request.POST.get("digest") != selection.digest:
            ctx["changed"] = True
            return render(request, "tasks/list.html#bulk-form", ctx)
        ids = list(selection.queryset.order_by("pk").values_list("pk", flat=True))
        job = services.tasks_bulk_start(actor=request.user, client_ids=ids, **form.cleaned_data)
        return render(request, "tasks/list.html#bulk-progress", {"job": job, **job_status(job), **ctx})
    if form.is_bound:
        form.full_clean()
    return render(request, "tasks/list.html#bulk-form", ctx)


@require_http_methods(["GET", "POST"])
def task_types(request):
    gate.require(request.user, gate.CONFIGURE_TASK_TYPES)
    if request.method == "POST":
        form = TaskTypeForm(request.POST)
        pk = request.POST.get("pk", "")
        if form.is_valid():
            try:
                services.task_type_save(actor=request.user, type=selectors.type_or_404(pk) if pk.isdigit() else None,
                                        name=form.cleaned_data["name"])
                messages.success(request, _("Task type saved."))
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
        else:
            messages.error(request, _("Give the type a name of at most 60 characters."))
        return redirect("tasks:types")
    return render(request, "tasks/types.html", {"types": selectors.task_types()})
