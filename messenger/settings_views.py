"""The messenger's settings pages (issue 15): channels (for those who configure them), the ignore
list (menu «Игнор»), quick replies, and the development form that simulates an inbound message."""

import json
import secrets as token_maker
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm import permissions as gate

from . import ignore, ingress, secrets
from .forms import SECRET_KEYS, ChannelForm, IgnorePatternForm, QuickReplyForm, SimulateForm
from .models import Channel, IgnoreRule, Inbound, QuickReply

AUTO_SECRETS = {"telegram": "webhook_secret", "webhook": "signing_secret", "sms": "signing_secret"}


def _configure(request) -> None:
    gate.require(request.user, gate.CONFIGURE_CHANNELS)


def new_secret(kind: str) -> str:
    import base64

    if kind == "telegram":
        return token_maker.token_urlsafe(32)  # Telegram allows A-Z a-z 0-9 _ -
    return "whsec_" + base64.b64encode(token_maker.token_bytes(32)).decode()


def hook_url(request, channel: Channel) -> str:
    return request.build_absolute_uri(reverse("hooks:hook", kwargs={"kind": channel.kind, "token": channel.token}))


@require_http_methods(["GET"])
def channels(request):
    _configure(request)
    rows = list(Channel.objects.select_related("line", "line__funnel").annotate(
        waiting=Count("inbound", filter=Q(inbound__state=Inbound.State.NEW)),
        failed=Count("inbound", filter=Q(inbound__state=Inbound.State.FAILED)),
        last_in=Max("inbound__received_at"),
    ))
    failures = list(Inbound.objects.filter(state=Inbound.State.FAILED).select_related("channel").order_by("-pk")[:20])
    return render(request, "messenger/channels.html", {"channels": rows, "failures": failures, "kinds": Channel.Kind.choices,
                                                        "debug": settings.DEBUG})


@require_http_methods(["GET", "POST"])
def channel_edit(request, pk=None):
    _configure(request)
    channel = get_object_or_404(Channel, pk=pk) if pk else None
    kind = channel.kind if channel else request.GET.get("kind", request.POST.get("kind", ""))
    if kind not in Channel.Kind.values:
        return redirect("messenger:channels")
    form = ChannelForm(request.POST or None, instance=channel, kind=kind)
    if request.method == "POST" and form.is_valid():
        item = form.save(commit=False)
        item.kind = kind
        plain, secret = form.settings_values()
        item.settings = {**(item.settings or {}), **plain}
        for key in [k for k in form.setting_keys if k not in SECRET_KEYS and k not in plain]:
            item.settings.pop(key, None)
        if kind in AUTO_SECRETS and not secrets.read(item).get(AUTO_SECRETS[kind]):
            secret[AUTO_SECRETS[kind]] = new_secret(kind)
        secrets.write(item, secret)
        item.save()
        form.save_m2m()
        if kind == "telegram" and request.POST.get("register") == "1":
            _register(request, item)
        messages.success(request, _("Channel saved."))
        return redirect("messenger:channel-edit", pk=item.pk)
    stored = secrets.read(channel) if channel else {}
    ctx = {"form": form, "channel": channel, "kind": kind, "kind_label": Channel.Kind(kind).label,
           "hook_url": hook_url(request, channel) if channel and kind != "console" and kind != "email" else "",
           "signing_secret": stored.get("signing_secret", "") if kind in ("webhook", "sms") else "",
           "simulate": SimulateForm() if channel and (settings.DEBUG or kind == "console") else None}
    return render(request, "messenger/channel_form.html", ctx)


def _register(request, channel: Channel) -> None:
    from .channels.telegram import register_webhook

    ok, description = register_webhook(channel, hook_url(request, channel))
    if ok:
        messages.success(request, _("Telegram will send this bot's messages here."))
    else:
        messages.error(request, _("Telegram refused the webhook: %(why)s") % {"why": description})


@require_POST
def simulate(request, pk):
    """Development: an inbound message as if the channel had received it (the console channel, or any channel with DEBUG on)."""
    _configure(request)
    channel = get_object_or_404(Channel, pk=pk)
    if not (settings.DEBUG or channel.kind == Channel.Kind.CONSOLE):
        raise PermissionDenied
    form = SimulateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write the sender and the message."))
        return redirect("messenger:channel-edit", pk=pk)
    data = form.cleaned_data
    payload = {"id": uuid.uuid4().hex, "from": data["sender"], "name": data["name"], "phone": data["phone"], "text": data["text"]}
    if channel.kind == Channel.Kind.CONSOLE:
        ingress.store(channel, payload["id"], json.dumps(payload, ensure_ascii=False))
    else:  # any other channel in development: through the console's reader, stored on this channel
        from .channels.console import ConsoleBackend
        from .receive import receive

        for item in ConsoleBackend(channel).parse(json.dumps(payload)):
            receive(channel, item)
    messages.success(request, _("The message was received: it is in the inbox."))
    return redirect("messenger:channel-edit", pk=pk)


@require_POST
def inbound_retry(request, pk):
    _configure(request)
    row = get_object_or_404(Inbound, pk=pk, state=Inbound.State.FAILED)
    Inbound.objects.filter(pk=row.pk).update(attempts=0, next_attempt_at=None)
    from .tasks import inbound_process

    inbound_process.delay(row.pk)
    messages.success(request, _("The delivery is being processed again."))
    return redirect("messenger:channels")


@require_http_methods(["GET", "POST"])
def ignore_list(request):
    """«Игнор»: who is on the ignore list (clients the user may see; patterns for those who configure channels)."""
    if not (gate.can(request.user, gate.MANAGE_IGNORE) or gate.can(request.user, gate.CONFIGURE_CHANNELS)):
        raise PermissionDenied
    may_patterns = gate.can(request.user, gate.CONFIGURE_CHANNELS)
    form = IgnorePatternForm(request.POST or None) if may_patterns else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                ignore.ignore_pattern(actor=request.user, kind=data["kind"], pattern=data["pattern"], reason=data["reason"],
                                      until=data["until"], back_on_message=data["back_on_message"])
            except ValidationError as error:
                form.add_error("pattern", error)
            else:
                messages.success(request, _("Added to the ignore list."))
                return redirect("messenger:ignore-list")
    query = request.GET.get("q", "")
    ended = request.GET.get("ended") == "1"
    rules = list(ignore.visible_rules(request.user, query=query, ended=ended)[:200])
    return render(request, "messenger/ignore.html", {"rules": rules, "query": query, "ended": ended, "form": form})


@require_POST
def ignore_end(request, pk):
    rule = IgnoreRule.objects.filter(pk=pk).select_related("client").first()
    if rule is None or (rule.client_id and not gate.may_see_client(request.user, rule.client)):
        raise Http404
    ignore.unignore(actor=request.user, rule=rule)
    messages.success(request, _("Taken off the ignore list."))
    return redirect("messenger:ignore-list")


@require_http_methods(["GET", "POST"])
def quick_replies(request):
    _configure(request)
    form = QuickReplyForm(request.POST or None)
    if request.method == "POST":
        delete = request.POST.get("delete", "")
        if delete.isdigit():
            QuickReply.objects.filter(pk=int(delete)).delete()
            messages.success(request, _("Quick reply deleted."))
            return redirect("messenger:quick-replies")
        if form.is_valid():
            form.save()
            messages.success(request, _("Quick reply saved."))
            return redirect("messenger:quick-replies")
    return render(request, "messenger/quick_replies.html", {"form": form, "replies": QuickReply.objects.all()})
