from django.core.exceptions import BadRequest, ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from clients.selectors import bulk_selection
from clients.services import SelectionChanged
from crm import permissions as gate
from crm.selectors import job_status

from . import selectors, services
from .forms import MassSendForm
from .models import MassSend


@require_POST
def mass_send(request):
    """The clients table's "Send email" / "Send SMS" on ticked clients or the whole filter."""
    gate.require(request.user, gate.SEND_MESSAGES)
    channel = request.POST.get("channel", "")
    if channel not in MassSend.Channel.values:
        raise BadRequest("unknown channel")
    selection = bulk_selection(request.user, request.POST)
    bound = request.POST.get("confirm") == "1"
    form = MassSendForm(request.POST if bound else None, channel=channel)
    ctx = {"selection": selection, "form": form, "channel": channel, "channel_label": MassSend.Channel(channel).label}
    if bound and form.is_valid():
        try:
            send = services.mass_send_start(
                actor=request.user, channel=channel, clients=selection.queryset, digest=request.POST.get("digest"),
                subject=form.cleaned_data.get("subject", ""), body=form.cleaned_data["body"],
                action_type=form.cleaned_data.get("action_type", ""),
            )
        except ValidationError as error:
            form.add_error(None, error)
        except SelectionChanged:  # the clients matching changed since the form opened: nothing sent
            ctx["changed"] = True
        else:
            return render(request, "messenger/send.html#send-progress", _progress(send))
    return render(request, "messenger/send.html#send-form", ctx)


def _progress(send: MassSend) -> dict:
    ctx = {"send": send, "summary": selectors.mass_send_summary(send)}
    if send.job is not None:
        ctx.update(job_status(send.job))
    return ctx


@require_GET
def send_progress(request, pk):
    """The send's progress: the job's bar (it polls the job itself) and the send's own numbers
    (sent, failed, waiting for a retry), which poll here while the job runs."""
    send = selectors.mass_send_of(request.user, pk)
    page = "messenger/send.html#send-summary" if request.htmx else "messenger/send.html#send-progress"
    return render(request, page, _progress(send))
