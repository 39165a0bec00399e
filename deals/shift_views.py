"""Shifts (issue 14): the widget in the top bar and the board's panel, its buttons, the "on shift"
page with the queues, and the shift log."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from crm import permissions as gate
from crm.http import local_url

from . import shifts

ACTIONS = {"start": shifts.start, "pause": shifts.pause, "resume": shifts.resume, "end": shifts.end}
DONE = {
    "start": gettext_lazy("Shift started: new deals can come to you."),
    "pause": gettext_lazy("You are on a break: no new deals come to you."),
    "resume": gettext_lazy("Back from the break."),
}


def _widget(request):
    page = request.htmx.current_url_abs_path if request.htmx else ""
    # the top bar's compact widget (?place=bar) or the board's and table's panel
    compact = (request.GET.get("place") or request.POST.get("place")) == "bar"
    ctx = {"shift": shifts.current(request.user), "next": page or "", "compact": compact}
    return render(request, "deals/shifts.html#shift-widget", ctx)


@require_GET
def shift_widget(request):
    """Loaded after every page (it costs pages nothing) and after every shift button."""
    if not shifts.may_work_shifts(request.user):
        raise PermissionDenied
    return _widget(request)


@require_POST
def shift_action(request, action):
    if action not in ACTIONS:
        raise Http404
    if not shifts.may_work_shifts(request.user):
        raise PermissionDenied
    try:
        result = ACTIONS[action](user=request.user)
    except ValidationError as error:
        text, ok = " ".join(error.messages), False
    else:
        ok = True
        if action == "end":
            handed = result[1]
            text = _("Shift ended.")
            if handed:
                text += " " + _("Deals not yet worked handed back: %(n)s.") % {"n": handed}
        else:
            text = str(DONE[action])
    if request.htmx:
        response = _widget(request)
        trigger_client_event(response, "shift-changed", {"text": text, "ok": ok})
        return response
    (messages.success if ok else messages.error)(request, text)
    return redirect(local_url(request, request.POST.get("next"), reverse("deals:shifts")))


@require_GET
def shifts_now(request):
    """Who is on shift now, since when, with open deals each; for those who configure funnels,
    the lines' queues with their waiting times."""
    gate.require(request.user, gate.VIEW_DEALS)
    lines, waiting = shifts.queues(request.user)
    ctx = {"shifts": shifts.on_shift_now(request.user), "lines": lines, "waiting": waiting, "now": timezone.now(),
           "may_end": gate.can(request.user, gate.MANAGE_USERS)}
    return render(request, "deals/shifts.html", ctx)


@require_POST
def shift_end_for(request, user_pk):
    """An administrator ends a shift someone left open."""
    gate.require(request.user, gate.MANAGE_USERS)
    user = gate.visible_users(request.user).filter(pk=user_pk).first()
    if user is None:
        raise Http404
    try:
        _shift, handed = shifts.end_for(actor=request.user, user=user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The shift of %(name)s is ended; deals handed back: %(n)s.") % {"name": user, "n": handed})
    return redirect("deals:shifts")


def _day(value, default):
    parsed = parse_date(value or "")
    return parsed or default


@require_GET
def shift_log(request):
    gate.require(request.user, gate.VIEW_DEALS)
    today = timezone.localdate()
    since = _day(request.GET.get("since"), today - timedelta(days=30))
    until = _day(request.GET.get("until"), today)
    if until < since:
        since, until = until, since
    zone = timezone.get_current_timezone()
    users = list(gate.visible_users(request.user).filter(is_active=True).order_by("first_name", "last_name", "username"))
    user_id = request.GET.get("user", "")
    user_id = int(user_id) if user_id.isdigit() and any(u.pk == int(user_id) for u in users) else None
    page, totals = shifts.shift_log(
        request.user, user_id=user_id, page=request.GET.get("page") or 1,
        since=datetime.combine(since, time.min, zone), until=datetime.combine(until + timedelta(days=1), time.min, zone),
    )
    ctx = {"page": page, "totals": totals, "users": users, "user_id": user_id, "since": since, "until": until,
           "query": f"user={user_id or ''}&since={since.isoformat()}&until={until.isoformat()}"}
    return render(request, "deals/shift_log.html", ctx)
