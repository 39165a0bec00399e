"""The "Possible duplicates" page (issue 18 point 5): pairs clients.duplicates found, newest first,
where the reader may see both clients; "Not a duplicate" dismisses a pair for good."""

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from crm import permissions as gate

from . import services
from .models import DuplicateSuggestion

PER_PAGE = 25


def visible_pairs(user):
    """Undismissed pairs of two live clients the user may both see (the gate's visible queryset)."""
    visible = gate.visible_clients(user).values("pk")
    return DuplicateSuggestion.objects.filter(dismissed_at__isnull=True, client__in=visible, other__in=visible)


@require_GET
def duplicate_list(request):
    gate.require(request.user, gate.VIEW_CLIENTS)
    pairs = visible_pairs(request.user).select_related("client", "other").order_by("-created_at", "-pk")
    page = Paginator(pairs, PER_PAGE).get_page(request.GET.get("page"))
    for pair in page:
        pair.people = (pair.client, pair.other)
    return render(request, "clients/duplicates.html", {"page": page, "hidden": gate.hidden_fields(request.user, gate.CONTACT)})


@require_POST
def duplicate_dismiss(request, pk):
    if not gate.can(request.user, gate.VIEW_CLIENTS):
        raise Http404
    suggestion = visible_pairs(request.user).filter(pk=pk).first()
    if suggestion is None:
        raise Http404
    services.duplicate_dismiss(actor=request.user, suggestion=suggestion)  # 403 without "edit clients"
    if request.htmx:
        return HttpResponse("")  # the row goes away (hx-swap="delete")
    return redirect("clients:duplicates")
