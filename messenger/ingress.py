"""Inbound endpoints (/hooks/<kind>/<token>/): verify, store the raw delivery, acknowledge.

One short transaction: INSERT … ON CONFLICT DO NOTHING on (channel, the sender's id), so a replay
or a duplicate arriving at the same moment is the same row, and a new one kicks the worker's
drain (messenger.receive.kick: one queued job per burst, not one per message). Nothing is parsed here: a payload the worker
cannot read is kept, marked failed, retried and shown to admins, never lost. Every refusal is a
4xx with its reason (DESIGN §13), never a 500.
"""

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .channels import Refused, backend_for
from .models import Channel, Inbound

log = logging.getLogger(__name__)

MAX_BODY = 2 * 1024 * 1024  # a Telegram update, a bridge's message: far below; attachments are fetched by the worker


def store(channel: Channel, key: str, payload: str) -> int | None:
    """Store one delivery; its id when it is new, None when it was already there (a replay)."""
    table = Inbound._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (channel_id, dedupe_key, payload, received_at, state, attempts, error) "
                "VALUES (%s, %s, %s, %s, 'new', 0, '') ON CONFLICT (channel_id, dedupe_key) DO NOTHING RETURNING id",
                [channel.pk, key[:200], payload, timezone.now()],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        inbound_id = row[0]
        transaction.on_commit(lambda: _queue(inbound_id))
    return inbound_id


def _queue(inbound_id: int) -> None:
    from .receive import kick

    try:
        kick()
    except Exception:  # the broker is down: the row is stored, and the sweep queues it again
        log.exception("could not queue inbound %s; the sweep will", inbound_id)


@login_not_required
@csrf_exempt
@require_POST
def hook(request: HttpRequest, kind: str, token: str):
    channel = Channel.objects.filter(kind=kind, token=token, is_active=True).first()
    if channel is None:
        return JsonResponse({"ok": False, "error": "unknown channel"}, status=404)
    if len(request.body) > MAX_BODY:
        return JsonResponse({"ok": False, "error": "payload too large"}, status=413)
    try:
        key, payload = backend_for(channel).accept(request)
    except Refused as refusal:
        return JsonResponse({"ok": False, "error": refusal.reason}, status=refusal.status)
    inbound_id = store(channel, key, payload)
    return JsonResponse({"ok": True, "duplicate": inbound_id is None})
