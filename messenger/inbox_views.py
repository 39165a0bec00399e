"""The inbox (issue 15; seeds 000, 001): conversations on the left, the chat in the middle, the
client card as the right-hand panel. New messages appear by polling a change token (O(1): the
newest message id for the list, the conversation's version for the chat); an unchanged token is
answered 204 with three queries (session, user, token)."""

import json

from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import permissions as gate
from crm.models import Role

from . import conversations, ignore, inbox, outbox
from .models import Attachment, Conversation, Message, QuickReply


def _which(request) -> str:
    """The list's filter; by default, those who see every client start from all, the others from theirs."""
    which = request.GET.get("f", "")
    if which in inbox.FILTERS:
        return which
    return "all" if gate.visibility(request.user) == Role.Visibility.ALL else "mine"


def _list_context(request) -> dict:
    which, query = _which(request), request.GET.get("q", "")
    page = inbox.conversation_page(request.user, which=which, query=query, after=request.GET.get("after", ""))
    return {"conversations": page.rows, "more": page.more, "which": which, "query": query, "token": inbox.inbox_token(),
            "filters": [("mine", _("Mine")), ("unassigned", _("Unassigned")), ("all", _("All"))],
            "current": request.GET.get("c", ""), "now_ymd": timezone.localdate().strftime("%Y%m%d")}


def _chat_context(request, conversation: Conversation, *, error: str = "", draft: str = "") -> dict:
    messages, older = inbox.chat_messages(conversation)
    rule = ignore.active_rule(conversation.client)
    return {"conversation": conversation, "chat": messages, "older": older, "may_reply": outbox.may_reply(request.user, conversation.channel),
            "ignored": rule, "may_ignore": gate.can(request.user, gate.MANAGE_IGNORE), "error": error, "draft": draft,
            "max_text": outbox.MAX_TEXT, "address_hidden": inbox.hidden_address(conversation.channel.kind, gate.hidden_fields(request.user))}


@require_GET
def inbox_page(request):
    gate.require(request.user, gate.VIEW_CLIENTS)
    ctx = _list_context(request)
    conversation = None
    if ctx["current"].isdigit():
        conversation = inbox.conversation_or_404(request.user, int(ctx["current"]))
        ctx.update(_chat_context(request, conversation))
    quick = [{"title": q.title, "text": q.text} for q in QuickReply.objects.all()[:200]]
    ctx.update(conversation=conversation, quick_replies=json.dumps(quick, ensure_ascii=False))
    return render(request, "messenger/inbox.html", ctx)


@require_GET
def conversation_list(request):
    """The left column (and its poll: 204 while the newest message is the same)."""
    gate.require(request.user, gate.VIEW_CLIENTS)
    since = request.GET.get("since")
    if since is not None and since == inbox.inbox_token():
        return HttpResponse(status=204)
    ctx = _list_context(request)
    partial = "conversation-rows" if request.GET.get("after") else "conversation-list"
    return render(request, f"messenger/inbox.html#{partial}", ctx)


@require_GET
def chat(request, pk):
    conversation = inbox.conversation_or_404(request.user, pk)
    return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation))


@require_GET
def chat_poll(request, pk):
    """The chat's messages when its version moved on; 204 while it has not."""
    token = inbox.chat_token(request.user, pk)
    if token is None:
        raise Http404
    if token == request.GET.get("since"):
        return HttpResponse(status=204)
    conversation = inbox.conversation_or_404(request.user, pk)
    return render(request, "messenger/inbox.html#chat-messages", _chat_context(request, conversation))


@require_GET
def chat_older(request, pk):
    conversation = inbox.conversation_or_404(request.user, pk)
    before = request.GET.get("before", "")
    rows, older = inbox.chat_messages(conversation, before=int(before) if before.isdigit() else None)
    return render(request, "messenger/inbox.html#chat-older", {"conversation": conversation, "chat": rows, "older": older})


@require_POST
def mark_read(request, pk):
    conversations.read(user=request.user, conversation=inbox.conversation_or_404(request.user, pk))
    return HttpResponse(status=204)


@require_POST
def send(request, pk):
    conversation = inbox.conversation_or_404(request.user, pk)
    text = request.POST.get("text", "")
    try:
        outbox.reply(actor=request.user, conversation=conversation, text=text, files=request.FILES.getlist("files"))
    except ValidationError as error:
        return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation, error=" ".join(error.messages),
                                                                           draft=text), status=422)
    conversation.refresh_from_db()
    return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation))


@require_POST
def retry(request, pk):
    message = Message.objects.filter(pk=pk, direction=Message.Direction.OUT).select_related("channel").first()
    if message is None:
        raise Http404
    conversation = inbox.conversation_or_404(request.user, message.conversation_id)
    outbox.retry(actor=request.user, message=message)
    return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation))


@require_POST
def take(request, pk):
    conversation = inbox.conversation_or_404(request.user, pk)
    conversations.take(user=request.user, conversation=conversation)
    conversation.refresh_from_db()
    return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation))


@require_POST
def close_toggle(request, pk):
    conversation = inbox.conversation_or_404(request.user, pk)
    conversations.toggle_closed(user=request.user, conversation=conversation)
    conversation.refresh_from_db()
    return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation))


@require_POST
def ignore_toggle(request, pk):
    conversation = inbox.conversation_or_404(request.user, pk)
    rule = ignore.active_rule(conversation.client)
    if rule is not None:
        ignore.unignore(actor=request.user, rule=rule)
    else:
        ignore.ignore_client(actor=request.user, client=conversation.client, reason=request.POST.get("reason", ""),
                             back_on_message=request.POST.get("back_on_message") == "1")
    conversation.refresh_from_db()
    return render(request, "messenger/inbox.html#chat", _chat_context(request, conversation))


@require_GET
def attachment(request, pk):
    """A file of a message the user may see: always a download, except raster images asked
    `?inline=1` (shown in the chat), which go out with their sniffed type and nosniff."""
    item = Attachment.objects.filter(pk=pk).select_related("message").first()
    if item is None:
        raise Http404
    inbox.conversation_or_404(request.user, item.message.conversation_id)
    inline = request.GET.get("inline") == "1" and item.is_image
    response = FileResponse(item.file.open("rb"), as_attachment=not inline, filename=item.name,
                            content_type=item.content_type if inline else "application/octet-stream")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response

