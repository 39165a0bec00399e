"""Writes of the partners' admin pages (issue 17): a partner's settings, its token, on / off, and the
test console. Each asks the gate first (403, nothing written)."""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlencode

from django.db import transaction

from crm import permissions as gate
from messenger import secrets

from . import postbacks
from .models import Partner, new_token


@transaction.atomic
def partner_save(*, actor, partner: Partner | None = None, data: dict) -> Partner:
    """Create or update a partner from PartnerForm.partner_data(). The signing secret is written
    encrypted (messenger.secrets); an empty one keeps the stored secret, `remove_secret` clears it."""
    gate.require(actor, gate.CONFIGURE_PARTNERS)
    partner = partner or Partner()
    for field in ("name", "slug", "url_template", "ip_allowlist", "currency", "is_active", "statuses", "params"):
        setattr(partner, field, data[field])
    if data.get("remove_secret"):
        partner.secrets = ""
    secret = (data.get("signing_secret") or "").strip()
    if secret:
        secrets.write(partner, {"signing_secret": secret})
    partner.save()
    return partner


@transaction.atomic
def partner_rotate_token(*, actor, partner: Partner) -> Partner:
    """A new postback token: the old one stops working at once (the partner must be given the new URL)."""
    gate.require(actor, gate.CONFIGURE_PARTNERS)
    partner.token = new_token()
    Partner.objects.filter(pk=partner.pk).update(token=partner.token)
    return partner


@transaction.atomic
def partner_toggle(*, actor, partner: Partner, on: bool) -> Partner:
    """Switch the partner on or off: off, its links stop redirecting and its postbacks answer 404."""
    gate.require(actor, gate.CONFIGURE_PARTNERS)
    partner.is_active = on
    Partner.objects.filter(pk=partner.pk).update(is_active=on)
    return partner


def console_send(*, actor, partner: Partner, key: str, event: str, amount: Decimal | None = None,
                 transaction_id: str = "", player_id: str = "") -> postbacks.Answer:
    """The test console: a postback as the partner would POST it (its parameter names, its token, a
    correct signature when it has a secret), handed to the endpoint's own view as an HTTP request
    to `/postback/<slug>/` (its parsing included), and logged like any. From 127.0.0.1 as the
    console's: the partner's address allowlist is for the outside world, not for its admin."""
    from django.test import RequestFactory  # a WSGI request built as the server builds one
    from django.urls import reverse

    from .endpoint_views import postback

    gate.require(actor, gate.CONFIGURE_PARTNERS)
    status = next((value for value, mapped in (partner.statuses or {}).items() if mapped == event), event)
    values = {partner.param("click"): key, partner.param("status"): status}
    if amount is not None:
        values[partner.param("amount")] = format(amount, "f")
    if transaction_id:
        values[partner.param("transaction")] = transaction_id
    if player_id:
        values[partner.param("player")] = player_id
    body = urlencode(values)
    headers = {"X-Postback-Token": partner.token}
    secret = postbacks.signing_secret(partner)
    if secret:
        stamp = str(int(time.time()))
        headers.update({"X-Postback-Timestamp": stamp,
                        "X-Postback-Signature": postbacks.signature(secret, stamp, postbacks.signed_payload("POST", "", body))})
    request = RequestFactory().post(reverse("partner-postback", args=[partner.slug]), data=body,
                                    content_type="application/x-www-form-urlencoded", headers=headers, REMOTE_ADDR="127.0.0.1")
    request.postback_console = True  # type: ignore[attr-defined]  # an attribute no request from outside can carry
    return postback(request, partner.slug).postback_answer
