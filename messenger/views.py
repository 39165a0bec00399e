from django.core.exceptions import BadRequest, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from clients.selectors import bulk_selection
from clients.services import SelectionChanged
from crm import permissions as gate

from . import services
from .forms import MassSendForm
from .models import Delivery, MassSend


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
            return render(request, "messenger/send.html#send-progress", {"send": send, **_progress(send)})
    return render(request, "messenger/send.html#send-form", ctx)


def _progress(send):
    counts = {row["status"]: row["n"] for row in Delivery.objects.filter(mass_send=send).values("status").annotate(n=Count("pk"))}
    return {"sent": counts.get("sent", 0), "failed": counts.get("failed", 0)}


@require_GET
def send_progress(request, pk):
    send = get_object_or_404(MassSend, pk=pk, created_by=request.user)
    return render(request, "messenger/send.html#send-progress", {"send": send, **_progress(send)})
