import copy
import functools
from decimal import Decimal
from typing import cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from clients.models import CustomField
from clients.selectors import custom_fields_active
from crm import exports
from crm import permissions as gate
from crm.http import hx_redirect, local_url, table_query
from crm.models import Job, Team

from . import selectors, services
from .cards import CardMaker
from .filters import DealFilter
from .forms import (
    DealForm,
    FunnelAccessForm,
    FunnelTimeZoneForm,
    LineDistributionForm,
    MoveForm,
    NameForm,
    QuickDealForm,
    SaleForm,
    StageDeleteForm,
    StageForm,
)

# The board ------------------------------------------------------------------------------------


@require_GET
def home(request):
    """The first funnel the user may open."""
    gate.require(request.user, gate.VIEW_DEALS)
    funnels = selectors.funnels_for(request.user)
    if not funnels:
        return render(request, "deals/no_funnels.html")
    return redirect(funnels[0])


def _board_context(request, funnel_pk, *, loads: bool = False):
    """What every board page starts from (selectors.board_frame); `loads`: the stages' counters
    too, for a page that shows the column totals."""
    gate.require(request.user, gate.VIEW_DEALS)
    frame = selectors.board_frame(request.user, funnel_pk, request.GET.get("line"), loads=loads)
    funnels, lines, line, stages = frame.funnels, frame.lines, frame.line, frame.stages
    funnel = next((f for f in funnels if f.pk == funnel_pk), None)
    if funnel is None:
        raise Http404
    filters = table_query(request.GET, drop=selectors.BOARD_PARAMS)
    hidden = functools.cache(lambda: gate.hidden_by_block(request.user))
    return {
        "funnel": funnel, "funnels": funnels, "lines": lines, "line": line, "stages": stages,
        "filters": filters, "filters_active": bool(filters),
        "line_query": f"line={line.pk}" if line else "",
        "can_move": gate.can(request.user, gate.MOVE_DEAL),
        # Fields the layouts hide from this user (read only by the pages that show fields).
        "hidden": SimpleLazyObject(lambda: hidden()[gate.DEAL]),
        "hidden_contact": SimpleLazyObject(lambda: hidden()[gate.CONTACT]),
    }


def _card_maker(ctx) -> CardMaker:
    return CardMaker(hidden=ctx["hidden"], hidden_contact=ctx["hidden_contact"], can_move=ctx["can_move"])


@require_GET
def board(request, funnel_pk):
    ctx = _board_context(request, funnel_pk, loads=selectors.board_counted(request.GET))
    totals = selectors.board_columns(request.user, ctx["stages"], request.GET, _card_maker(ctx))
    ctx.update(columns=totals.columns, token=totals.token)
    template = "deals/board.html#board-columns" if request.htmx and request.htmx.target == "board-columns" else "deals/board.html"
    return render(request, template, ctx)


@require_GET
def board_changes(request, funnel_pk):
    """Polled every few seconds by open boards: 204 while nothing changed, else a nudge to reload.

    An unfiltered board's token is read from its line's counters in one query (with the user and
    the permissions, three in all), whatever the number of deals; a filtered board's is recomputed."""
    gate.require(request.user, gate.VIEW_DEALS)
    line_pk = request.GET.get("line", "")
    if request.GET.get("view") == "table":  # the table view: every line of the funnel
        ctx = _board_context(request, funnel_pk)
        token = _table_token(request, ctx["funnel"])
    elif line_pk.isdigit() and selectors.board_counted(request.GET):
        token = selectors.line_token(request.user, funnel_pk, int(line_pk))
        if token is None:
            raise Http404
    else:
        ctx = _board_context(request, funnel_pk, loads=selectors.board_counted(request.GET))
        token = selectors.board_totals(request.user, ctx["stages"], request.GET).token
    if token == request.GET.get("since"):
        return HttpResponse(status=204)
    response = HttpResponse(status=200)
    trigger_client_event(response, "board-stale")
    return response


@require_GET
def board_totals(request, funnel_pk):
    """The column headers alone (after a move): counts and sums from one grouped query."""
    ctx = _board_context(request, funnel_pk, loads=selectors.board_counted(request.GET))
    ctx["columns"] = selectors.board_totals(request.user, ctx["stages"], request.GET).columns
    return render(request, "deals/board.html#column-totals", ctx)


@require_GET
def column_more(request, funnel_pk, stage_pk):
    ctx = _board_context(request, funnel_pk)
    stage = next((s for s in ctx["stages"] if s.pk == stage_pk), None)
    if stage is None:
        raise Http404
    cards, cursor = selectors.column_more(request.user, stage, request.GET, _card_maker(ctx))
    ctx.update(cards=cards, cursor=cursor, stage=stage)
    return render(request, "deals/board.html#more-cards", ctx)


@require_GET
def filter_panel(request, funnel_pk):
    ctx = _board_context(request, funnel_pk)
    hidden = {gate.DEAL: ctx["hidden"], gate.CONTACT: ctx["hidden_contact"]}
    filterset = DealFilter(request.GET, hidden=hidden).with_choices(stages=ctx["stages"])
    ctx["form"] = filterset.form
    return render(request, "deals/board.html#filter-panel", ctx)


@require_GET
def deals_table(request, funnel_pk):
    ctx = _board_context(request, funnel_pk)
    deleted = request.GET.get("view") == "deleted"
    stages = list(selectors.stages_of_funnel(ctx["funnel"]))
    rows, cursor, _filterset = selectors.deals_table(request.user, request.GET, funnel=ctx["funnel"], deleted=deleted,
                                                     stages=stages)
    ctx.update(rows=rows, cursor=cursor, query=table_query(request.GET, drop=("after",)), deleted=deleted)
    if not deleted and not request.GET.get("after"):  # the first page follows changes (issue 14: new deals appear)
        ctx["token"] = _table_token(request, ctx["funnel"], stages)
    template = "deals/table.html#deals-rows" if request.htmx and request.htmx.target == "deals-table" else "deals/table.html"
    return render(request, template, ctx)


def _table_token(request, funnel, stages=None) -> str:
    """The table's change token: the board's, over every stage of the funnel."""
    stages = list(selectors.stages_of_funnel(funnel)) if stages is None else stages
    return selectors.board_totals(request.user, stages, request.GET).token


@require_POST
def deal_move(request, pk):
    """Drag-and-drop or the card's menu. 409 when the board the user saw was out of date."""
    deal = gate.deal_or_404(request.user, pk)
    gate.require(request.user, gate.MOVE_DEAL)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": _("The move could not be read. Reload the board.")}, status=400)
    data = form.cleaned_data
    try:
        version = services.deal_move(
            actor=request.user, deal=deal, to_stage_id=data["stage"], seen_stage_id=data["seen_stage"],
            seen_version=data["seen_version"], before_id=data["before"], after_id=data["after"],
        )
    except services.StaleMove:
        return JsonResponse({"error": _("Someone else changed this deal a moment ago. The board now shows where it is.")}, status=409)
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"version": version, "stage": data["stage"]})


# One deal -------------------------------------------------------------------------------------


@require_GET
def deal_detail(request, pk):
    deal = gate.deal_or_404(request.user, pk, include_deleted=True)
    ctx = _panel_context(request, deal)
    template = "deals/deal.html#deal-panel" if request.htmx else "deals/deal.html"
    return render(request, template, ctx)


@require_http_methods(["GET", "POST"])
def deal_edit(request, pk):
    deal = gate.deal_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_DEAL)
    can_assign = gate.can(request.user, gate.CHANGE_RESPONSIBLE)
    locked = gate.locked_fields(request.user, gate.DEAL)
    if request.method == "POST":
        gate.refuse_posted_fields(request, {gate.DEAL_ATTRIBUTE.get(key, key) for key in locked})
    form = DealForm(
        request.POST if request.method == "POST" else None, instance=copy.copy(deal),
        can_change_responsible=can_assign, custom_fields=custom_fields_active(CustomField.Entity.DEAL), locked=locked,
    )
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k in form.Meta.fields and not form.fields[k].disabled}
        data["custom"] = form.custom_values()
        services.deal_update(actor=request.user, deal=deal, data=data)
        return _deal_changed(request, deal, _("Deal saved."))
    return render(request, "deals/deal.html#deal-form", {"deal": deal, "form": form})


@require_http_methods(["GET", "POST"])
def sale_add(request, pk):
    """Seed 001: "+" beside the sale date asks for the player ID and the amount."""
    deal = gate.deal_or_404(request.user, pk)
    gate.require(request.user, gate.ADD_SALE)
    hidden = gate.hidden_fields(request.user)
    initial = {} if "external_id" in hidden else {"player_id": deal.client.external_id}
    form = SaleForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.sale_add(actor=request.user, deal=deal, **form.cleaned_data)
        return _deal_changed(request, deal, _("Sale added."))
    return render(request, "deals/deal.html#sale-form", {"deal": deal, "form": form})


def _panel_context(request, deal, **extra) -> dict:
    """The deal window: every field the user's layouts let them see, nothing they hide."""
    hidden = gate.hidden_by_block(request.user)
    custom = [(f, deal.custom.get(f.key, "")) for f in custom_fields_active(CustomField.Entity.DEAL)
              if f.key not in hidden[gate.DEAL]]
    return {"deal": deal, "sales": selectors.deal_sales(deal), "tags": list(deal.tags.all()),
            "custom_values": custom, "hidden": hidden[gate.DEAL], "hidden_contact": hidden[gate.CONTACT], **extra}


def _deal_changed(request, deal, text):
    """After a write from the deal panel: show the panel again and tell the page to refresh."""
    messages.success(request, text)
    deal = gate.deal_or_404(request.user, deal.pk)
    ctx = _panel_context(request, deal, notice=text)
    response = render(request, "deals/deal.html#deal-panel", ctx)
    trigger_client_event(response, "deal-changed")
    list(messages.get_messages(request))  # shown in the panel: don't repeat on the next page
    return response


@require_POST
def deal_delete(request, pk):
    deal = gate.deal_or_404(request.user, pk)
    services.deal_soft_delete(actor=request.user, deal=deal)
    messages.success(request, _("Deal #%(n)s deleted. An administrator can restore it.") % {"n": deal.pk})
    return hx_redirect(deal.stage.line.funnel.get_absolute_url() + f"?line={deal.stage.line_id}")


@require_POST
def deal_restore(request, pk):
    deal = gate.deal_or_404(request.user, pk, include_deleted=True)
    services.deal_restore(actor=request.user, deal=deal)
    messages.success(request, _("Deal #%(n)s restored.") % {"n": deal.pk})
    return hx_redirect(deal.get_absolute_url()) if request.htmx else redirect(deal)


# Deals on the clients side --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def quick_deal(request, client_pk):
    client = gate.client_or_404(request.user, client_pk)
    gate.require(request.user, gate.ADD_DEAL)
    choices = selectors.stage_choices_for(request.user)
    locked = gate.locked_fields(request.user, gate.DEAL)
    if request.method == "POST":
        gate.refuse_posted_fields(request, locked & {"budget"})
    form = QuickDealForm(
        request.POST if request.method == "POST" else None, stage_choices=choices, initial={"name": client.name},
        locked=locked, distributes=selectors.any_line_distributes(),
    )
    if request.method == "POST" and form.is_valid():
        stage = selectors.stage_for_user_or_404(request.user, form.cleaned_data["stage"])
        deal = services.deal_create(
            actor=request.user, client=client, stage=stage, name=form.cleaned_data["name"],
            budget=form.cleaned_data.get("budget") or Decimal(0), distribute=form.cleaned_data.get("distribute", False),
        )
        messages.success(request, _("Deal #%(n)s created.") % {"n": deal.pk})
        return hx_redirect(local_url(request, request.POST.get("next"), client.get_absolute_url()))
    ctx = {"client": client, "form": form, "next": request.GET.get("next", request.POST.get("next", ""))}
    if request.htmx:
        return render(request, "deals/quick_deal.html", ctx)
    return render(request, "modal_page.html", {**ctx, "fragment": "deals/quick_deal.html"})


@require_GET
def client_deals_row(request, client_pk):
    """The clients table's expanded row: the client's deals, a stage's title summarising the deal."""
    client = gate.client_or_404(request.user, client_pk)
    hidden = gate.hidden_fields(request.user, gate.DEAL)
    ctx = {"client": client, "deals": selectors.client_deals(request.user, client), "colspan": request.GET.get("colspan", "8"),
           "sees_deal_fields": not ({"budget", "deal_responsible"} & hidden)}
    return render(request, "deals/client_deals.html", ctx)


# Funnel settings ------------------------------------------------------------------------------
#
# The page is a quiet list: names rename in place, a drag handle (or Alt+↑/↓ on it) reorders,
# deletions sit behind a "⋯" menu and say what they take with them. Writes made by htmx answer
# with the piece they changed (when refused: with the error and what was typed, as the deal form
# does); plain form posts still redirect, so the page works without JavaScript as before.

COLORS = cast(forms.ChoiceField, StageForm.base_fields["color"]).choices


@require_http_methods(["GET", "POST"])
def funnel_list(request):
    gate.require(request.user, gate.CONFIGURE_FUNNELS)
    form = NameForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        funnel = services.funnel_create(actor=request.user, name=form.cleaned_data["name"])
        return redirect("deals:settings", funnel_pk=funnel.pk)
    return render(request, "deals/funnels.html", {"funnels": selectors.funnels_for(request.user), "form": form})


@require_GET
def funnel_settings(request, funnel_pk):
    gate.require(request.user, gate.CONFIGURE_FUNNELS)
    funnel = gate.funnel_or_404(request.user, funnel_pk)
    ctx = {"funnel": funnel, "lines": _with_forms(selectors.lines_with_stages(funnel)), "colors": COLORS,
           "zone_form": FunnelTimeZoneForm(initial={"time_zone": funnel.time_zone})}
    return render(request, "deals/settings.html", ctx)


def _settings_redirect(request, funnel_pk, text=None, error=None):
    if text:
        messages.success(request, text)
    if error:
        messages.error(request, error)
    url = reverse("deals:settings", args=[funnel_pk])
    return hx_redirect(url) if request.htmx else redirect(url)


def _settings_write(request, funnel_pk, action, text):
    gate.require(request.user, gate.CONFIGURE_FUNNELS)
    try:
        action()
    except ValidationError as error:
        return _settings_redirect(request, funnel_pk, error=" ".join(error.messages))
    return _settings_redirect(request, funnel_pk, text=text)


def _settings_piece(request, template, ctx, *, text=None, error=None, error_name="error"):
    """An htmx write's answer: the changed piece, with the error or with a status line to announce."""
    response = render(request, template, {**ctx, "colors": COLORS, error_name: error})
    if text:
        trigger_client_event(response, "settings-status", {"text": text})
    return response


def _form_error(form, fallback):
    return " ".join(str(e) for errors in form.errors.values() for e in errors) or str(fallback)


def _confirm_page(request, template, ctx):
    """A confirmation: in the modal for htmx, else as a page of its own (it only reads)."""
    if request.htmx:
        return render(request, template, ctx)
    return render(request, "modal_page.html", {**ctx, "fragment": template, "page": True})


def _unchanged_label(obj, name):
    """The shown name of a default-named object, sent back untouched, keeps its translation."""
    return obj.name if obj.is_default_name and name == str(obj.label) else name


@require_POST
def funnel_rename(request, funnel_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    form = NameForm(request.POST)
    if not request.htmx:
        if not form.is_valid():
            return _settings_redirect(request, funnel_pk, error=_("Give the funnel a name of at most 60 characters."))
        name = form.cleaned_data["name"]
        return _settings_write(request, funnel_pk, lambda: services.funnel_rename(actor=request.user, funnel=funnel, name=name),
                               _("Funnel renamed."))
    template = "deals/settings.html#funnel-name"
    if not form.is_valid():
        return _settings_piece(request, template, {"funnel": funnel, "value": request.POST.get("name", "")},
                               error=_("Give the funnel a name of at most 60 characters."))
    name = _unchanged_label(funnel, form.cleaned_data["name"])
    if name != funnel.name:
        services.funnel_rename(actor=request.user, funnel=funnel, name=name)
        funnel = gate.funnel_or_404(request.user, funnel_pk)
    return _settings_piece(request, template, {"funnel": funnel}, text=_("Funnel renamed."))


@require_http_methods(["GET", "POST"])
def funnel_delete(request, funnel_pk):
    """GET: what deleting the funnel takes with it; POST: delete it (refused while it holds deals)."""
    funnel = _configurable_funnel(request, funnel_pk)
    if request.method == "GET":
        lines = selectors.lines_with_stages(funnel)
        ctx = {"funnel": funnel, "lines": lines, "stage_count": sum(len(line.stages.all()) for line in lines),
               "deals": selectors.deals_held(selectors.stages_of_funnel(funnel))}
        return _confirm_page(request, "deals/settings.html#funnel-delete", ctx)
    try:
        services.funnel_delete(actor=request.user, funnel=funnel)
    except ValidationError as error:
        return _settings_redirect(request, funnel_pk, error=" ".join(error.messages))
    messages.success(request, _("Funnel deleted."))
    url = reverse("deals:funnels")
    return hx_redirect(url) if request.htmx else redirect(url)


@require_http_methods(["GET", "POST"])
def funnel_access(request, funnel_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    current = selectors.funnel_grants(funnel)
    form = FunnelAccessForm(request.POST if request.method == "POST" else None, initial=current)
    if request.method == "POST" and form.is_valid():
        services.funnel_set_access(actor=request.user, funnel=funnel, users=list(form.cleaned_data["users"]),
                                   groups=list(form.cleaned_data["groups"]))
        return _settings_redirect(request, funnel_pk, text=_("Access saved."))
    return render(request, "deals/settings.html#access-form", {"funnel": funnel, "form": form})


@require_POST
def funnel_time_zone(request, funnel_pk):
    """The funnel's time zone (robots' working hours): a plain form post, answered with the page."""
    funnel = _configurable_funnel(request, funnel_pk)
    form = FunnelTimeZoneForm(request.POST)
    return _form_write(request, funnel_pk, form, _("Choose a time zone from the list."),
                       lambda time_zone: services.funnel_set_time_zone(actor=request.user, funnel=funnel, time_zone=time_zone),
                       _("Time zone saved."))


def _configurable_funnel(request, funnel_pk):
    gate.require(request.user, gate.CONFIGURE_FUNNELS)
    return gate.funnel_or_404(request.user, funnel_pk)


def _form_write(request, funnel_pk, form, error, action, text):
    """Validate a settings form, then run the service with its data (or say what is wrong)."""
    if not form.is_valid():
        return _settings_redirect(request, funnel_pk, error=error)
    return _settings_write(request, funnel_pk, lambda: action(**form.cleaned_data), text)


LINE_NAME_ERROR = gettext_lazy("Give the line a name of at most 60 characters.")
STAGE_NAME_ERROR = gettext_lazy("Give the stage a name of at most 60 characters.")


def _line_with_stages(funnel, line_pk):
    line = next((line for line in selectors.lines_with_stages(funnel) if line.pk == line_pk), None)
    if line is None:
        raise Http404
    return _with_forms([line])[0]


@require_POST
def line_create(request, funnel_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    return _form_write(request, funnel_pk, NameForm(request.POST), LINE_NAME_ERROR,
                       lambda name: services.line_create(actor=request.user, funnel=funnel, name=name), _("Line added."))


@require_POST
def line_rename(request, funnel_pk, line_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    line = selectors.line_or_404(funnel, line_pk)
    form = NameForm(request.POST)
    if not request.htmx:
        return _form_write(request, funnel_pk, form, LINE_NAME_ERROR,
                           lambda name: services.line_rename(actor=request.user, line=line, name=name), _("Line renamed."))
    template = "deals/settings.html#line-name"
    if not form.is_valid():
        return _settings_piece(request, template, {"funnel": funnel, "line": line, "value": request.POST.get("name", "")},
                               error=LINE_NAME_ERROR)
    name = _unchanged_label(line, form.cleaned_data["name"])
    if name != line.name:
        services.line_rename(actor=request.user, line=line, name=name)
        line = selectors.line_or_404(funnel, line_pk)
    return _settings_piece(request, template, {"funnel": funnel, "line": line}, text=_("Line renamed."))


@require_POST
def line_distribution(request, funnel_pk, line_pk):
    """Issue 14: the line's distribution settings (the form in the line's card)."""
    funnel = _configurable_funnel(request, funnel_pk)
    line = _line_with_stages(funnel, line_pk)
    teams = list(Team.objects.all())
    form = LineDistributionForm(request.POST, instance=line, teams=teams, prefix=f"line-{line.pk}")
    if form.is_valid():
        data = form.cleaned_data
        services.line_set_distribution(actor=request.user, line=line, mode=data["distribution"], cap=data["cap"],
                                       shift_end=data["shift_end"], team_ids=data["team_ids"], closing=data["closing"])
        if not request.htmx:
            return _settings_redirect(request, funnel_pk, text=_("Distribution saved."))
        line = _line_with_stages(funnel, line_pk)
        return _settings_piece(request, "deals/settings.html#line-card", {"funnel": funnel, "line": line},
                               text=_("Distribution saved."))
    if not request.htmx:
        return _settings_redirect(request, funnel_pk, error=_form_error(form, _("Check the distribution settings.")))
    line.distribution_form = form
    return _settings_piece(request, "deals/settings.html#line-card", {"funnel": funnel, "line": line, "distribution_open": True},
                           error=_form_error(form, _("Check the distribution settings.")), error_name="distribution_error")


def _with_forms(lines: list, teams=None) -> list:
    """Each line with its distribution form (the teams read once for all of them)."""
    teams = list(Team.objects.all()) if teams is None else teams
    prefetch_related_objects(lines, "teams")
    for line in lines:
        line.distribution_form = LineDistributionForm(instance=line, teams=teams, prefix=f"line-{line.pk}")
    return lines


@require_http_methods(["GET", "POST"])
def line_delete(request, funnel_pk, line_pk):
    """GET: what deleting the line takes with it; POST: delete it (refused while it holds deals)."""
    funnel = _configurable_funnel(request, funnel_pk)
    if request.method == "GET":
        lines = selectors.lines_with_stages(funnel)
        line = next((line for line in lines if line.pk == line_pk), None)
        if line is None:
            raise Http404
        ctx = {"funnel": funnel, "line": line, "stage_count": len(line.stages.all()), "only_line": len(lines) == 1,
               "deals": selectors.deals_held(selectors.stages_of_funnel(funnel).filter(line=line))}
        return _confirm_page(request, "deals/settings.html#line-delete", ctx)
    line = selectors.line_or_404(funnel, line_pk)
    return _settings_write(request, funnel_pk, lambda: services.line_delete(actor=request.user, line=line), _("Line deleted."))


def _order_write(request, funnel_pk, action):
    """Drag and drop saves by fetch: JSON, the list stays as dropped (409: it changed meanwhile)."""
    if not request.htmx:
        return _settings_write(request, funnel_pk, action, _("Order saved."))
    try:
        action()
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=409)
    return JsonResponse({"text": _("Order saved.")})


def _posted_ids(request):
    return [int(i) for i in request.POST.getlist("order") if i.isdigit()]


@require_POST
def lines_reorder(request, funnel_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    ids = _posted_ids(request)
    return _order_write(request, funnel_pk, lambda: services.lines_reorder(actor=request.user, funnel=funnel, line_ids=ids))


@require_POST
def stage_create(request, funnel_pk, line_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    line = selectors.line_or_404(funnel, line_pk)
    form = StageForm(request.POST)
    if not request.htmx:
        return _form_write(request, funnel_pk, form, STAGE_NAME_ERROR,
                           lambda **data: services.stage_create(actor=request.user, line=line, **data), _("Stage added."))
    template = "deals/settings.html#line-card"
    if not form.is_valid():
        ctx = {"funnel": funnel, "line": _line_with_stages(funnel, line_pk), "add_value": request.POST.get("name", "")}
        return _settings_piece(request, template, ctx, error=_form_error(form, STAGE_NAME_ERROR), error_name="add_error")
    services.stage_create(actor=request.user, line=line, **form.cleaned_data)
    ctx = {"funnel": funnel, "line": _line_with_stages(funnel, line_pk), "focus_add": True}
    return _settings_piece(request, template, ctx, text=_("Stage added."))


@require_POST
def stage_update(request, funnel_pk, stage_pk):
    """Rename (the name edited in place) or recolour (the swatch); either posts both fields."""
    funnel = _configurable_funnel(request, funnel_pk)
    stage = selectors.stage_or_404(funnel, stage_pk)
    form = StageForm(request.POST)
    if form.is_valid():
        form.cleaned_data["name"] = _unchanged_label(stage, form.cleaned_data["name"])
    if not request.htmx:
        return _form_write(request, funnel_pk, form, STAGE_NAME_ERROR,
                           lambda **data: services.stage_update(actor=request.user, stage=stage, **data), _("Stage saved."))
    template = "deals/settings.html#stage-row"
    if not form.is_valid():
        return _settings_piece(request, template, {"funnel": funnel, "stage": stage, "value": request.POST.get("name", "")},
                               error=_form_error(form, STAGE_NAME_ERROR))
    services.stage_update(actor=request.user, stage=stage, **form.cleaned_data)
    return _settings_piece(request, template, {"funnel": funnel, "stage": selectors.stage_or_404(funnel, stage_pk)},
                           text=_("Stage saved."))


@require_POST
def stages_reorder(request, funnel_pk, line_pk):
    funnel = _configurable_funnel(request, funnel_pk)
    line = selectors.line_or_404(funnel, line_pk)
    ids = _posted_ids(request)
    return _order_write(request, funnel_pk, lambda: services.stages_reorder(actor=request.user, line=line, stage_ids=ids))


@require_http_methods(["GET", "POST"])
def stage_delete(request, funnel_pk, stage_pk):
    """Deleting a stage that holds deals asks where to move them, then does both at once."""
    funnel = _configurable_funnel(request, funnel_pk)
    stage = selectors.stage_or_404(funnel, stage_pk)
    targets = [s for s in selectors.stages_of_funnel(funnel) if s.pk != stage.pk]
    held = selectors.stage_deal_count(stage)
    form = StageDeleteForm(request.POST if request.method == "POST" else None, targets=targets)
    if request.method == "POST" and form.is_valid():
        move_to = next((s for s in targets if s.pk == form.cleaned_data["move_to"]), None)
        try:
            moved = services.stage_delete(actor=request.user, stage=stage, move_to=move_to)
        except ValidationError as error:
            return _settings_redirect(request, funnel_pk, error=" ".join(error.messages))
        return _settings_redirect(request, funnel_pk, text=_("Stage deleted; %(n)s deals moved.") % {"n": moved})
    ctx = {"funnel": funnel, "stage": stage, "held": held, "form": form}
    return render(request, "deals/settings.html#stage-delete", ctx)


@require_GET
def deals_export(request, funnel_pk):
    """The deals table (with the board's filters) to .xlsx (or .csv with format=csv): the file
    itself up to EXPORT_INLINE_MAX_ROWS rows, else a job whose file the worker makes."""
    ctx = _board_context(request, funnel_pk)
    gate.require(request.user, gate.EXPORT_CLIENTS)
    export = selectors.deals_export_rows(request.user, request.GET, funnel=ctx["funnel"], hidden=ctx["hidden"])
    fmt = "csv" if request.GET.get("format") == "csv" else "xlsx"
    filename = f"deals_{funnel_pk}.{fmt}"
    limit = exports.inline_max_rows()
    if export.count_upto(limit) > limit:
        job = exports.start(request, kind=Job.Kind.EXPORT, total=0, params={
            "what": "deals", "funnel": funnel_pk, "query": request.GET.urlencode(), "format": fmt, "filename": filename})
        return exports.job_response(request, job)
    return exports.file_response(fmt=fmt, filename=filename, export=export, language=request.LANGUAGE_CODE)
