"""Registration links: one per deal and partner, and the clicks on them (`/go/<token>`)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from crm import permissions as gate

from .models import Click, Link, Partner


@transaction.atomic
def link_create(*, actor, deal, partner: Partner) -> Link:
    """The deal's link to the partner (made once; asked again, the same link). Anyone who may edit
    the deal may make it: the seed's manager sends it to the client."""
    gate.require(actor, gate.CHANGE_DEAL)
    existing = Link.objects.filter(deal=deal, partner=partner).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Link.objects.create(deal=deal, partner=partner, created_by=actor)
    except IntegrityError:  # made meanwhile by another request
        return Link.objects.get(deal=deal, partner=partner)


def target(partner: Partner, click: Click, deal_id: int) -> str:
    """The partner's URL with the click id and the deal filled in (URL-quoted): only what the admin configured."""
    return partner.url_template.replace("{click_id}", quote(click.key, safe="")).replace("{deal_id}", str(deal_id))


def ip_hash(ip: str) -> str:
    return hashlib.sha256(f"voronka-click:{settings.SECRET_KEY}:{ip}".encode()).hexdigest() if ip else ""


@transaction.atomic
def click(token: str, *, user_agent: str, ip: str) -> str | None:
    """Record a click on a link and say where it goes; None (nothing recorded) for an unknown token
    or an inactive partner."""
    link = Link.objects.select_related("partner").filter(token=token, partner__is_active=True).first()
    if link is None:
        return None
    row = Click.objects.create(link=link, user_agent=(user_agent or "")[:300], ip_hash=ip_hash(ip))
    Link.objects.filter(pk=link.pk).update(clicks=F("clicks") + 1)
    return target(link.partner, row, link.deal_id)
