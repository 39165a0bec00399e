"""Views of the client card (page and right-hand panel): its feed, comments, mentions, note and the card-layout editor."""

import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from crm import permissions as gate
from crm import selectors as crm_selectors
from crm.http import hx_redirect, local_url
from deals.selectors import client_deals, client_sales
from tasks.selectors import client_tasks

from . import layout, services
from .labels import label
from .models import CardField, ClientNote, CustomField
from .phones import format_phone

KIND_FILTERS = [
    ("", gettext_lazy("All")), ("comments", gettext_lazy("Comments")), ("changes", gettext_lazy("Changes")),
    ("notes", gettext_lazy("Note")), ("deals", gettext_lazy("Deals and sales")), ("tasks", gettext_lazy("Tasks")),
    ("messages", gettext_lazy("Messages")),
]


def _value(client, row, deal):
    """What a card field shows for this client (and its current deal, for the deal block)."""
    key = row.key
    if row.custom_field_id:
        source = deal.custom if (row.block == CardField.Block.DEAL and deal) else client.custom
        return source.get(key, "") if source is not None else ""
    if row.block == CardField.Block.DEAL:
        if deal is None:
            return ""
        return {
            "funnel": lambda: deal.stage.line.funnel, "line": lambda: deal.stage.line, "stage": lambda: deal.stage,
            "channel": lambda: label("channel", deal.channel), "budget": lambda: deal.budget,
            "deal_responsible": lambda: deal.responsible or "",
        }.get(key, lambda: "")()
    if key == "phone":
        return format_phone(client.phone)
    if key == "extra_phones":
        return ", ".join(format_phone(p) for p in client.extra_phones)
    if key == "extra_emails":
        return ", ".join(client.extra_emails)
    if key in ("country", "channel", "priority", "lifecycle"):
        return label(key, getattr(client, key))
    value = getattr(client, key, "")
    return value if value is not None else ""


def card_context(request, client, *, deal_pk=None) -> dict:
    """Everything the card shows; a fixed number of queries whatever the deals, sales or feed."""
    user = request.user
    deals = client_deals(user, client)
    deal = next((d for d in deals if str(d.pk) == str(deal_pk)), None) or next(iter(deals), None)
    rows = layout.all_rows()
    contact = layout.visible_rows(user, CardField.Block.CONTACT, rows=[r for r in rows if r.block == "contact"])
    deal_rows = layout.visible_rows(user, CardField.Block.DEAL, rows=[r for r in rows if r.block == "deal"])
    hidden = {block: gate.hidden_fields(user, block, [r for r in rows if r.block == block])
              for block in (gate.CONTACT, gate.DEAL)}
    for row in contact:
        row.value = _value(client, row, deal)
    for row in deal_rows:
        row.value = _value(client, row, deal)
    note = ClientNote.objects.filter(client=client).first()
    feed, more = crm_selectors.feed_page(client, hidden=hidden)
    last = crm_selectors.last_contact(client)
    from clients.models import DuplicateSuggestion
    from messenger.inbox import hidden_address
    from messenger.models import Conversation

    conversations = list(Conversation.objects.filter(client=client).select_related("channel").order_by("-last_message_at", "-pk"))
    for conversation in conversations:
        conversation.address_hidden = hidden_address(conversation.channel.kind, hidden[gate.CONTACT])  # type: ignore[attr-defined]
    # Pairs with this client on either side (clients.duplicates stores the newer one as `client`), the
    # other one live and visible to the reader; `person` is that other one.
    visible = gate.visible_clients(user).values("pk")
    duplicates = list(DuplicateSuggestion.objects.filter(Q(client=client, other__in=visible) | Q(other=client, client__in=visible),
                                                         dismissed_at__isnull=True)
                      .select_related("client", "other").order_by("-created_at", "-pk")[:5])
    for suggestion in duplicates:
        suggestion.person = suggestion.other if suggestion.client_id == client.pk else suggestion.client  # type: ignore[attr-defined]
    from partners.views import registration_context

    from .models import Merge

    # merges into this client an admin may still undo; and, on a merged client's card, the merge
    merges_in = list(Merge.objects.filter(kept=client, undone_at__isnull=True).select_related("merged", "by")[:5])
    merged_in = (Merge.objects.select_related("kept", "by").filter(pk=client.merged_in_id).first()
                 if client.merged_in_id else None)

    from . import leads
    from .lead_views import action_types_for

    lead = leads.lead_context(user, client)
    return {
        **lead,
        "action_types": action_types_for(user),
        "registration": registration_context(request, deal) if deal is not None else None,
        "conversations": conversations,
        "duplicates": duplicates,
        "merges_in": merges_in,
        "merged_in": merged_in,
        "client": client,
        "tags": list(client.tags.all()),
        "contact_rows": contact,
        "deal_rows": deal_rows,
        "deals": deals,
        "deal": deal,
        "sales": client_sales(user, client),
        "tasks": client_tasks(user, client),
        "note": note,
        "feed": feed,
        "feed_more": more,
        "feed_kind": "",
        "kind_filters": KIND_FILTERS,
        "open_deals": sum(1 for d in deals),
        "days_since_contact": (timezone.now() - last).days if last else None,
        "can_configure": gate.sees_every_field(user),
        "hidden": hidden,
        "comment_max": 999,
    }


@require_GET
def client_card(request, pk):
    client = gate.client_or_404(request.user, pk, include_deleted=True)
    ctx = card_context(request, client, deal_pk=request.GET.get("deal"))
    return render(request, "clients/card.html", ctx)


@require_GET
def client_panel(request, pk):
    """The card as the messenger's right-hand panel: the same blocks, no page around them."""
    client = gate.client_or_404(request.user, pk)
    ctx = card_context(request, client, deal_pk=request.GET.get("deal"))
    return render(request, "clients/card.html#card-panel", ctx)


@require_GET
def feed(request, pk):
    client = gate.client_or_404(request.user, pk, include_deleted=True)
    kind = request.GET.get("kind", "")
    rows, more = crm_selectors.feed_page(
        client, kind=kind, before=request.GET.get("before", ""), hidden=gate.hidden_by_block(request.user)
    )
    ctx = {"client": client, "feed": rows, "feed_more": more, "feed_kind": kind, "kind_filters": KIND_FILTERS}
    partial = "feed-entries" if request.GET.get("before") else "feed"
    return render(request, f"clients/card.html#{partial}", ctx)


@require_POST
def comment_add(request, pk):
    client = gate.client_or_404(request.user, pk)
    text = request.POST.get("text", "")
    error = None
    not_notified = []
    # Seed 004: with an action type and a planned date the comment is an action at the lead's step
    from .lead_views import action_types_for, parse_action

    action_type, planned = request.POST.get("action_type", ""), request.POST.get("planned", "")
    try:
        entry = parse_action(request.user, client, text, action_type, planned)
        text, action_type, planned = "", "", ""
        not_notified = [_("%(name)s cannot see this client and was not notified.") % {"name": user}
                        for user in getattr(entry, "not_notified", [])]
    except ValidationError as exc:
        error = " ".join(exc.messages)
    rows, more = crm_selectors.feed_page(client, hidden=gate.hidden_by_block(request.user))
    ctx = {"client": client, "feed": rows, "feed_more": more, "feed_kind": "", "kind_filters": KIND_FILTERS,
           "comment_text": text, "comment_error": error, "comment_not_notified": not_notified, "comment_max": 999,
           "action_types": action_types_for(request.user), "comment_action_type": action_type, "comment_planned": planned}
    response = render(request, "clients/card.html#feed-with-form", ctx, status=200)
    if error is None:
        trigger_client_event(response, "lead-changed")
    return response


TYPED_MENTION = re.compile(r"(?<![\w@])@([\w.+-]{0,150})$")


@require_GET
def mention_options(request, pk):
    """The comment box's @mention autocomplete: for the @word being typed at the end of the
    text, the colleagues who may see this client (nobody else is offered)."""
    client = gate.client_or_404(request.user, pk)
    typed = TYPED_MENTION.search(request.GET.get("text", ""))
    users = crm_selectors.mention_candidates(client=client, query=typed.group(1), exclude=request.user) if typed else []
    return render(request, "clients/card.html#mention-options", {"client": client, "mention_options": users})


@require_http_methods(["GET", "POST"])
def note_edit(request, pk):
    client = gate.client_or_404(request.user, pk)
    gate.require(request.user, gate.CHANGE_CLIENT)
    note = ClientNote.objects.filter(client=client).first()
    if request.method == "POST":
        try:
            note = services.note_save(actor=request.user, client=client, text=request.POST.get("text", ""))
        except ValidationError as exc:
            ctx = {"client": client, "note": note, "note_text": request.POST.get("text", ""), "note_error": " ".join(exc.messages)}
            return render(request, "clients/card.html#note-form", ctx)
        response = render(request, "clients/card.html#note", {"client": client, "note": note})
        trigger_client_event(response, "feed-changed")
        return response
    if request.GET.get("cancel"):
        return render(request, "clients/card.html#note", {"client": client, "note": note})
    return render(request, "clients/card.html#note-form", {"client": client, "note": note, "note_text": note.text if note else ""})



# The card-layout editor (seed 001: "Display settings", tabs Admin / Manager) -------------------


def _block_or_404(block: str) -> str:
    if block not in CardField.Block.values:
        raise Http404
    return block


def _editor(request, block, *, status=200, error=None):
    rows = layout.block_rows(block)
    for row in rows:
        row.title = layout.label_of(row)
        row.default_title = row.custom_field.label if row.custom_field_id else str(layout.SYSTEM_LABELS.get(row.system_key, row.system_key))
    hidden_system = [(r.system_key, r.title) for r in rows if r.system_key and r.hidden]
    ctx = {
        "block": block, "block_label": CardField.Block(block).label, "rows": rows, "hidden_system": hidden_system,
        "kinds": [(k, v) for k, v in CustomField.Kind.choices], "error": error,
    }
    return render(request, "clients/layout.html", ctx, status=status)


@require_GET
def layout_editor(request, block):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    return _editor(request, _block_or_404(block))


@require_POST
def layout_save(request, block):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    block = _block_or_404(block)
    order = [int(i) for i in request.POST.getlist("order") if i.isdigit()]
    rows = []
    for pk in order:
        rows.append({
            "pk": pk,
            "label": request.POST.get(f"label_{pk}", "").strip()[:40],
            "hidden": request.POST.get(f"shown_{pk}") != "1",
            "manager_visible": request.POST.get(f"mv_{pk}") == "1",
            "manager_editable": request.POST.get(f"me_{pk}") == "1",
            "delete": request.POST.get(f"delete_{pk}") == "1",
        })
    try:
        services.layout_save(actor=request.user, block=block, rows=rows)
    except ValidationError as exc:
        return _editor(request, block, error=" ".join(exc.messages))
    messages.success(request, _("Display settings saved."))
    return hx_redirect(local_url(request, request.htmx.current_url_abs_path, reverse("clients:list")))


@require_POST
def layout_add(request, block):
    gate.require(request.user, gate.CONFIGURE_FIELDS)
    block = _block_or_404(block)
    kind = request.POST.get("kind", "")
    try:
        if kind == "system":
            services.layout_show_system(actor=request.user, block=block, key=request.POST.get("system_key", ""))
        else:
            values = [v.strip() for v in request.POST.get("choices", "").splitlines() if v.strip()]
            services.layout_add_field(actor=request.user, block=block, kind=kind,
                                      label=request.POST.get("label", ""), choices=values)
    except ValidationError as exc:
        return _editor(request, block, error=" ".join(exc.messages))
    return _editor(request, block)
