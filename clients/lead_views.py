"""Views of leads (seed 004): the steps' settings, the card's progress bar and step history, the
conversion form, the link to an existing customer, its undo, and today's actions."""

import copy

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from crm import permissions as gate
from crm.http import hx_redirect
from crm.models import Role

from . import layout, leads, selectors
from .forms import ClientForm


class ConvertForm(ClientForm):
    """The registration form of seed 004's «Конвертация», prefilled from the lead, plus the
    customer account (login / player ID), which a conversion requires."""

    class Meta(ClientForm.Meta):
        fields = [
            "name", "responsible", "phone", "email", "city", "address", "company", "source", "registration_date",
            "external_id",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.pop("responsible", None)  # a conversion does not hand the client over
        self.fields["name"].widget.attrs.pop("autofocus", None)
        if "external_id" in self.fields:
            self.fields["external_id"].required = True
            self.fields["external_id"].error_messages["required"] = _("Enter the customer account (login / player ID).")
            self.fields["external_id"].label = _("Customer account (login / player ID)")
            self.fields["external_id"].widget.attrs["autofocus"] = True

    def clean_external_id(self):
        value = (self.cleaned_data.get("external_id") or "").strip()
        if not value:
            raise ValidationError(_("Enter the customer account (login / player ID)."))
        return value

    def bound_fields(self):
        names = ["name", "phone", "extra_phones_text", "email", "city", "address", "company", "source",
                 "registration_date", "external_id"]
        return [self[name] for name in names if name in self.fields]


def action_types_for(user) -> list:
    """The action types the comment box offers (the task types), to those who may add tasks."""
    from tasks.selectors import task_types

    return task_types() if gate.can(user, gate.ADD_TASK) else []


def parse_action(user, client, text: str, action_type: str, planned: str):
    """The comment box's post: a note, or an action with its type and planned date (clients.leads)."""
    from datetime import date

    from tasks.models import TaskType

    chosen = None
    if action_type:
        chosen = TaskType.objects.filter(pk=action_type).first() if action_type.isdigit() else None
        if chosen is None:
            raise ValidationError(_("Choose an action type from the list."))
    day = None
    if planned:
        try:
            day = date.fromisoformat(planned)
        except ValueError:
            raise ValidationError(_("Enter the planned date as a date.")) from None
    return leads.note_or_action_add(actor=user, client=client, text=text, action_type=chosen, planned=day)


# The steps' settings (gate.CONFIGURE_FIELDS, beside the client fields) --------------------------


def _steps_page(request, *, error=None, status=200):
    steps = leads.steps_all()
    used = leads.steps_in_use()
    for step in steps:
        step.in_use = used.get(step.pk, 0)
    template = "clients/leads/steps.html#steps" if request.htmx else "clients/leads/steps.html"
    return render(request, template, {"steps": steps, "error": error, "name_max": leads.STEP_NAME_MAX}, status=status)


@require_http_methods(["GET", "POST"])
def steps(request):
    """The list of steps; a POST adds one at the end."""
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    if request.method == "POST":
        try:
            leads.step_add(actor=request.user, name=request.POST.get("name", ""))
        except ValidationError as exc:
            return _steps_page(request, error=" ".join(exc.messages), status=422 if not request.htmx else 200)
        if not request.htmx:
            messages.success(request, _("Step added."))
            return redirect("fields:steps")
    return _steps_page(request)


def _after_write(request, error: str = ""):
    """What a write to the steps answers: the list again (HTMX, with the refusal if any), or a
    redirect to it with the refusal as a message."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("fields:steps")
    return _steps_page(request, error=error or None)


@require_POST
def step_rename(request, pk):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    step = leads.step_or_404(pk)
    try:
        leads.step_rename(actor=request.user, step=step, name=request.POST.get("name", ""))
    except ValidationError as exc:
        return _after_write(request, " ".join(exc.messages))
    return _after_write(request)


@require_POST
def step_move(request, pk):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    step = leads.step_or_404(pk)
    leads.step_move(actor=request.user, step=step, offset=-1 if request.POST.get("direction") == "up" else 1)
    return _after_write(request)


@require_POST
def steps_reorder(request):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    order = [int(i) for i in request.POST.getlist("order") if i.isdigit()]
    leads.steps_reorder(actor=request.user, order=order)
    return _after_write(request)


@require_POST
def step_delete(request, pk):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    step = leads.step_or_404(pk)
    try:
        leads.step_delete(actor=request.user, step=step)
    except ValidationError as exc:
        return _after_write(request, " ".join(exc.messages))
    return _after_write(request)


# The card's lead block ------------------------------------------------------------------------


def _lead_block(request, client, *, error=None):
    ctx = {"client": client, **leads.lead_context(request.user, client), "lead_error": error}
    return render(request, "clients/leads/block.html#lead-block", ctx)


@require_GET
def lead_block(request, pk):
    """The progress bar and the steps' history (refreshed after a note or an action is added)."""
    client = gate.client_or_404(request.user, pk, include_deleted=True)
    return _lead_block(request, client)


@require_POST
def step_set(request, pk):
    """A click on a step of the progress bar."""
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_CLIENT)
    step = leads.step_or_404(request.POST.get("step", "")) if request.POST.get("step", "").isdigit() else None
    if step is None:
        return _lead_block(request, client, error=_("Choose a step."))
    try:
        client = leads.step_set(actor=request.user, client=client, step=step)
    except ValidationError as exc:
        if not request.htmx:
            messages.error(request, " ".join(exc.messages))
            return redirect(client)
        return _lead_block(request, client, error=" ".join(exc.messages))
    if not request.htmx:  # the form without JavaScript: back to the card
        return redirect(client)
    response = _lead_block(request, client)
    trigger_client_event(response, "feed-changed")
    return response


# Conversion -----------------------------------------------------------------------------------


def _convert_response(request, form, client, *, error=None):
    ctx = {"form": form, "client": client, "error": error}
    template = "clients/leads/convert.html#convert-form" if request.htmx else "clients/leads/convert.html"
    return render(request, template, ctx)


@require_http_methods(["GET", "POST"])
def convert(request, pk):
    """«Конвертация»: the registration form prefilled from the lead; saving converts it."""
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_CLIENT)
    custom_fields = selectors.custom_fields_active()
    locked = gate.locked_fields(request.user)
    if request.method == "POST":
        gate.refuse_posted_fields(request, {layout.FORM_FIELD.get(key, key) for key in locked})
        form = ConvertForm(request.POST, instance=copy.copy(client), custom_fields=custom_fields, locked=locked)
        if form.is_valid():
            try:
                leads.convert(actor=request.user, client=client, data=form.service_data(),
                              seen_modified=form.cleaned_data["seen_modified"])
            except leads.services.ClientChanged as changed:
                form.show_conflict(changed.current)
            except ValidationError as exc:
                return _convert_response(request, form, client, error=" ".join(exc.messages))
            else:
                messages.success(request, _("%(name)s is a customer now.") % {"name": form.cleaned_data.get("name") or client.name})
                return hx_redirect(client.get_absolute_url()) if request.htmx else redirect(client)
    else:
        form = ConvertForm(instance=client, custom_fields=custom_fields, locked=locked)
    return _convert_response(request, form, client)


@require_http_methods(["GET", "POST"])
def link_customer(request, pk):
    """«Добавить пользователя»: find an existing customer (GET ?q=) and link the lead to it (POST)."""
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_CLIENT)
    error = None
    if request.method == "POST":
        customer_pk = request.POST.get("customer", "")
        customer = gate.client_or_404(request.user, customer_pk) if customer_pk.isdigit() else None
        if customer is None:
            error = _("Choose a customer.")
        else:
            try:
                leads.link(actor=request.user, client=client, customer=customer)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, _("Linked to %(name)s.") % {"name": customer.name})
                return hx_redirect(client.get_absolute_url()) if request.htmx else redirect(client)
    query = request.GET.get("q", request.POST.get("q", ""))
    ctx = {"client": client, "q": query, "error": error,
           "results": leads.customers_matching(request.user, query, exclude=client)}
    if request.htmx and request.htmx.target == "link-results":
        return render(request, "clients/leads/link.html#link-results", ctx)
    template = "clients/leads/link.html#link-form" if request.htmx else "clients/leads/link.html"
    return render(request, template, ctx)


@require_POST
def conversion_undo(request, pk):
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.RESTORE_CLIENT)
    try:
        leads.conversion_undo(actor=request.user, client=client)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The conversion was undone: %(name)s is a potential client again.") % {"name": client.name})
    return hx_redirect(client.get_absolute_url()) if request.htmx else redirect(client)


# Today's actions ------------------------------------------------------------------------------


@require_GET
def todays_actions(request):
    """Every action planned for today: the user's own, or everyone's the gate lets them see."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    gate.require(request.user, gate.VIEW_TASKS)
    everyone = gate.visibility(request.user) != Role.Visibility.OWN
    mine = not everyone or request.GET.get("who") == "mine"
    if request.GET.get("block"):
        rows, total = leads.todays_actions(request.user, limit=leads.TODAY_BLOCK)
        return render(request, "clients/leads/today.html#today-block", {"actions": rows, "total": total})
    rows, total = leads.todays_actions(request.user, mine=mine)
    ctx = {"actions": rows, "total": total, "mine": mine, "everyone": everyone,
           "here": reverse("clients:today-actions") + ("?who=mine" if mine and everyone else "")}
    return render(request, "clients/leads/today.html", ctx)

