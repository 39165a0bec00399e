"""Reads for the partners' pages and the card's registration links (the views ask the gate first)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .models import Click, Conversion, Link, Partner, Postback

LOG_PAGE = 50
CONSOLE_CLICKS = 20


def partners_with_counts() -> list[Partner]:
    """Every partner with its accepted and refused postbacks of the last 24 hours (one grouped query)."""
    since = timezone.now() - timedelta(hours=24)
    refused = ~Q(postbacks__verdict__in=[Postback.Verdict.ACCEPTED, Postback.Verdict.DUPLICATE, Postback.Verdict.IGNORED])
    return list(Partner.objects.annotate(
        accepted=Count("postbacks", filter=Q(postbacks__received_at__gte=since, postbacks__verdict=Postback.Verdict.ACCEPTED)),
        refused=Count("postbacks", filter=Q(postbacks__received_at__gte=since) & refused),
    ).defer("secrets"))


def log_page(*, partner_id: int | None, verdict: str, before: str | None) -> tuple[list[Postback], str | None]:
    """The postback log, newest first, LOG_PAGE at a time (keyset on the id), with each row's
    partner and conversion's deal; and the cursor of the next page, or None."""
    qs = Postback.objects.select_related("partner", "conversion__deal").defer("body", "partner__secrets").order_by("-id")
    if partner_id:
        qs = qs.filter(partner_id=partner_id)
    if verdict:
        qs = qs.filter(verdict=verdict)
    if before and before.isdigit():
        qs = qs.filter(id__lt=int(before))
    rows = list(qs[:LOG_PAGE + 1])
    more = len(rows) > LOG_PAGE
    rows = rows[:LOG_PAGE]
    return rows, (str(rows[-1].pk) if more and rows else None)


def recent_clicks(partner: Partner) -> list[Click]:
    """The partner's latest clicks, for the test console."""
    return list(Click.objects.filter(link__partner=partner).select_related("link__deal").only(
        "key", "at", "link__deal_id", "link__deal__name").order_by("-id")[:CONSOLE_CLICKS])


def active_partners() -> list[Partner]:
    return list(Partner.objects.filter(is_active=True).only("pk", "name", "currency"))


def deal_links(deal) -> dict[int, Link]:
    """The deal's links by partner id."""
    return {link.partner_id: link for link in Link.objects.filter(deal=deal).only("pk", "partner_id", "token", "clicks")}


def deal_conversions(deal) -> list[Conversion]:
    return list(Conversion.objects.filter(deal=deal).select_related("partner").only(
        "event", "amount", "currency", "created_at", "reversed_at", "transaction", "partner__name").order_by("-created_at", "-pk")[:50])


def registration_block(deal) -> dict:
    """What the card's «Registration link» block shows for one deal: each active partner with the
    deal's link to it (or None), and the deal's conversions. Three queries, whatever the sizes."""
    if deal is None:
        return {"deal": None, "rows": [], "conversions": []}
    partners = active_partners()
    links = deal_links(deal)
    return {"deal": deal, "rows": [(partner, links.get(partner.pk)) for partner in partners],
            "conversions": deal_conversions(deal)}
