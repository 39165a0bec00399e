"""The robots' pages (issue 16), for those who configure robots: the Robots view of a funnel's line
(the board's columns, each stage's robots as cards), the robot form, its log and the dry run.

Every view asks the gate first (403), then finds the funnel and the robot in it (404: a robot of
another funnel in the URL is missing). Writes posted by htmx answer with the stage's list of robots;
plain posts redirect to the Robots view, so everything works without JavaScript.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from crm import permissions as gate
from crm.http import hx_redirect
from deals import selectors as deal_selectors

from . import selectors, services, summary
from .forms import RobotForm, action_formset, choices_for, robot_data


def _funnel(request, funnel_pk):
    gate.require(request.user, gate.CONFIGURE_ROBOTS)
    return gate.funnel_or_404(request.user, funnel_pk)


def _cards(robots, names):
    for robot in robots:
        robot.condition_texts = summary.conditions(robot, names)
        robot.action_texts = summary.actions(robot, names)
    return robots


def _board_url(funnel, line_id) -> str:
    return f"{reverse('robots:board', args=[funnel.pk])}?line={line_id}"


def _stage_context(funnel, stages, lines, funnel_stages) -> dict:
    """The columns of stages with their robots as cards, and where a robot may be copied to."""
    by_stage = selectors.robots_of(stages)
    robots = [robot for stage_robots in by_stage.values() for robot in stage_robots]
    names = selectors.names_for(robots, stages=funnel_stages, lines=lines)
    _cards(robots, names)
    return {"columns": [(stage, by_stage[stage.pk]) for stage in stages],
            "copy_targets": [(s.pk, f"{s.line} · {s}") for s in funnel_stages]}


@require_GET
def board(request, funnel_pk):
    gate.require(request.user, gate.CONFIGURE_ROBOTS)
    funnels = deal_selectors.funnels_for(request.user)
    funnel = next((f for f in funnels if f.pk == funnel_pk), None)
    if funnel is None:
        raise Http404
    lines = deal_selectors.lines_of(funnel)
    line = deal_selectors.pick_line(lines, request.GET.get("line"))
    stages = deal_selectors.stages_of(line) if line else []
    funnel_stages = list(deal_selectors.stages_of_funnel(funnel))
    ctx = {"funnel": funnel, "funnels": funnels, "lines": lines, "line": line,
           "line_query": f"line={line.pk}" if line else "", **_stage_context(funnel, stages, lines, funnel_stages)}
    return render(request, "robots/board.html", ctx)


def _column_answer(request, robot, text):
    """After a write on the Robots view: the stage's list (htmx) or the view itself."""
    funnel = robot.stage.line.funnel
    if not request.htmx:
        messages.success(request, text)
        return redirect(_board_url(funnel, robot.stage.line_id))
    stage = robot.stage
    lines = deal_selectors.lines_of(funnel)
    funnel_stages = list(deal_selectors.stages_of_funnel(funnel))
    ctx = {"funnel": funnel, **_stage_context(funnel, [stage], lines, funnel_stages)}
    ctx["stage"], ctx["robots"] = ctx["columns"][0]
    response = render(request, "robots/board.html#stage-robots", ctx)
    trigger_client_event(response, "robots-status", {"text": text})
    return response


@require_POST
def toggle(request, funnel_pk, pk):
    robot = selectors.robot_or_404(_funnel(request, funnel_pk), pk)
    on = request.POST.get("on") == "1"
    services.robot_toggle(actor=request.user, robot=robot, on=on)
    text = (_("Robot “%(name)s” switched on.") if on else _("Robot “%(name)s” switched off.")) % {"name": robot.name}
    return _column_answer(request, robot, text)


@require_POST
def move(request, funnel_pk, pk):
    robot = selectors.robot_or_404(_funnel(request, funnel_pk), pk)
    up = request.POST.get("direction") != "down"
    services.robot_move(actor=request.user, robot=robot, up=up)
    return _column_answer(request, robot, _("Order saved."))


@require_POST
def reorder(request, funnel_pk, stage_pk):
    """The whole order of a stage's robots (posted as `order`, robot ids)."""
    funnel = _funnel(request, funnel_pk)
    stage = selectors.stage_or_404(funnel, stage_pk)
    ids = [int(i) for i in request.POST.getlist("order") if i.isdigit()]
    try:
        services.robots_reorder(actor=request.user, stage=stage, robot_ids=ids)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Order saved."))
    url = _board_url(funnel, stage.line_id)
    return hx_redirect(url) if request.htmx else redirect(url)


@require_POST
def copy(request, funnel_pk, pk):
    funnel = _funnel(request, funnel_pk)
    robot = selectors.robot_or_404(funnel, pk)
    stage_pk = request.POST.get("stage", "")
    if not stage_pk.isdigit():
        messages.error(request, _("Choose the stage to copy the robot to."))
        url = _board_url(funnel, robot.stage.line_id)
        return hx_redirect(url) if request.htmx else redirect(url)
    stage = selectors.stage_or_404(funnel, int(stage_pk))
    services.robot_copy(actor=request.user, robot=robot, stage=stage)
    messages.success(request, _("Robot “%(name)s” copied to “%(stage)s”.") % {"name": robot.name, "stage": stage})
    url = _board_url(funnel, stage.line_id)
    return hx_redirect(url) if request.htmx else redirect(url)


@require_http_methods(["GET", "POST"])
def delete(request, funnel_pk, pk):
    """GET: the confirmation (in the modal for htmx); POST: delete the robot and its log."""
    funnel = _funnel(request, funnel_pk)
    robot = selectors.robot_or_404(funnel, pk)
    if request.method == "GET":
        ctx = {"funnel": funnel, "robot": robot}
        if request.htmx:
            return render(request, "robots/board.html#robot-delete", ctx)
        return render(request, "modal_page.html", {**ctx, "fragment": "robots/board.html#robot-delete", "page": True})
    services.robot_delete(actor=request.user, robot=robot)
    messages.success(request, _("Robot “%(name)s” deleted.") % {"name": robot.name})
    url = _board_url(funnel, robot.stage.line_id)
    return hx_redirect(url) if request.htmx else redirect(url)


# The form ------------------------------------------------------------------------------------


def _form_page(request, *, funnel, stage, robot=None):
    choices = choices_for(funnel, stage)
    creating = robot is None
    posted = request.POST if request.method == "POST" else None
    form = RobotForm(posted, choices=choices, creating=creating, robot=robot)
    formset = action_formset(posted, choices=choices, robot=robot)
    if posted is not None and "add_action" in posted:
        # Without the script, "Add an action" posts the form back with one more (empty) row.
        data = posted.copy()
        data["actions-TOTAL_FORMS"] = str(int(data.get("actions-TOTAL_FORMS") or 0) + 1)
        form = RobotForm(data, choices=choices, creating=creating, robot=robot)
        formset = action_formset(data, choices=choices, robot=robot)
        form.is_valid(), formset.is_valid()
    elif posted is not None:
        if form.is_valid() and formset.is_valid():
            data = robot_data(form, formset)
            if creating:
                robot = services.robot_create(actor=request.user, stage=stage, data=data,
                                              apply_existing=form.cleaned_data.get("apply_existing", False))
                messages.success(request, _("Robot “%(name)s” created.") % {"name": robot.name})
            else:
                services.robot_update(actor=request.user, robot=robot, data=data)
                messages.success(request, _("Robot “%(name)s” saved.") % {"name": robot.name})
            return redirect(_board_url(funnel, stage.line_id))
        messages.error(request, _("The robot was not saved: check the marked fields."))
    ctx = {"funnel": funnel, "stage": stage, "robot": robot, "form": form, "formset": formset, "creating": creating,
           "back": _board_url(funnel, stage.line_id)}
    return render(request, "robots/form.html", ctx)


@require_http_methods(["GET", "POST"])
def create(request, funnel_pk, stage_pk):
    funnel = _funnel(request, funnel_pk)
    stage = selectors.stage_or_404(funnel, stage_pk)
    return _form_page(request, funnel=funnel, stage=stage)


@require_http_methods(["GET", "POST"])
def edit(request, funnel_pk, pk):
    funnel = _funnel(request, funnel_pk)
    robot = selectors.robot_or_404(funnel, pk)
    return _form_page(request, funnel=funnel, stage=robot.stage, robot=robot)


# The log and the dry run ---------------------------------------------------------------------


@require_GET
def log(request, funnel_pk, pk):
    funnel = _funnel(request, funnel_pk)
    robot = selectors.robot_or_404(funnel, pk)
    runs, before = selectors.log_page(robot, before=request.GET.get("before"))
    ctx = {"funnel": funnel, "robot": robot, "runs": runs, "before": before, "older": bool(request.GET.get("before")),
           "suspensions": selectors.suspensions_of(robot), "back": _board_url(funnel, robot.stage.line_id)}
    return render(request, "robots/log.html", ctx)


@require_GET
def dry_run(request, funnel_pk, pk):
    """"Test on deal #N": what the robot would do to the deal now; nothing is written. A deal the
    user may not see reads as not found, like one that does not exist."""
    funnel = _funnel(request, funnel_pk)
    robot = selectors.robot_or_404(funnel, pk)
    number = request.GET.get("deal", "").strip().lstrip("#")
    ctx = {"funnel": funnel, "robot": robot, "number": number}
    if number:
        try:
            if not number.isdigit():
                raise Http404
            deal = gate.deal_or_404(request.user, int(number))
        except Http404:
            ctx["missing"] = True
        else:
            ctx["result"] = services.dry_run(actor=request.user, robot=robot, deal=deal)
    template = "robots/log.html#dry-run" if request.htmx else "robots/log.html"
    if not request.htmx:
        runs, before = selectors.log_page(robot, before=None)
        ctx.update(runs=runs, before=before, suspensions=selectors.suspensions_of(robot),
                   back=_board_url(funnel, robot.stage.line_id))
    return render(request, template, ctx)


@require_POST
def resume(request, funnel_pk, pk, deal_pk):
    funnel = _funnel(request, funnel_pk)
    robot = selectors.robot_or_404(funnel, pk)
    suspension = next((s for s in selectors.suspensions_of(robot) if s.deal_id == deal_pk), None)
    if suspension is None:
        raise Http404
    services.suspension_resume(actor=request.user, robot=robot, deal=suspension.deal)
    messages.success(request, _("Robot “%(name)s” may fire for deal #%(deal)s again.") % {"name": robot.name, "deal": deal_pk})
    url = reverse("robots:log", args=[funnel.pk, robot.pk])
    return hx_redirect(url) if request.htmx else redirect(url)
