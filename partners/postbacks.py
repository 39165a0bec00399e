"""The postback endpoint's logic (`/postback/<slug>/`): who may call it, what it means, what it does.

In order, each refusal a 4xx with its reason code, and every request kept in the log (`Postback`):
1. the partner exists and is active (404 `unknown_partner`);
2. its token, from `?token=` or the `X-Postback-Token` header, compared in constant time (403
   `bad_token`); the caller's address in its allowlist when it has one (403 `refused_ip`). Then no
   more than POSTBACK_RATE_PER_MINUTE requests this minute (429 `rate_limited`), counted apart for
   the partner and for each address that fails to authenticate (a stranger who knows the address
   cannot use up the partner's allowance);
3. when the partner has a signing secret: `X-Postback-Timestamp` (Unix seconds) within WINDOW of
   now (401 `expired`) and `X-Postback-Signature` = hex HMAC-SHA256(secret, "<timestamp>.<payload>"),
   the payload being the raw body of a POST or the raw query string of a GET without its
   `token`/`signature` parameters, compared in constant time (401 `bad_signature`);
4. the parameters (names per partner, DEFAULT_PARAMS otherwise): a click id we gave out (404
   `unknown_click`), a status the partner's mapping knows (422 `unknown_status`: it can be replayed
   once the mapping is fixed), an amount for a purchase (400 `invalid`);
5. then, in one transaction with the link's row locked (concurrent postbacks for one deal queue
   up): a `Conversion` unique per (partner, click, event, transaction id) — one already there
   answers 200 `duplicate` and changes nothing — and the state machine: registered → purchase;
   purchase → rejected reverses that sale; a registration after a purchase is `ignored` (no
   downgrade). Registered sets the registration dates and the Player ID; purchase adds a sale as
   the manual "+" does; both write the feed, tell the responsible manager (in their language) and
   emit the event robots listen to.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from clients.models import Client
from crm import activity, queueing
from crm.models import Notification, User
from deals import services as deal_services
from deals.models import Deal
from messenger import secrets

from .models import Click, Conversion, Link, Partner, Postback

WINDOW = 300
# Refusals for what the request said (not for who sent it): an admin may replay them once fixed.
REPLAYABLE = ("unknown_status", "unknown_click", "invalid")
MASKED = ("token", "signature", "key", "secret")
Verdict = Postback.Verdict


@dataclass
class Answer:
    status: int
    verdict: str
    detail: str = ""
    postback: Postback | None = None

    def json(self) -> dict:
        return {"result": self.verdict, "detail": self.detail, "duplicate": self.verdict == Verdict.DUPLICATE}


class Refusal(Exception):
    def __init__(self, status: int, verdict: str, detail: str = ""):
        super().__init__(detail or verdict)
        self.status, self.verdict, self.detail = status, verdict, detail


def masked(params: dict) -> dict:
    return {k: ("***" if k.lower() in MASKED else str(v)[:500]) for k, v in list(params.items())[:50]}


def signing_secret(partner: Partner) -> str:
    return secrets.read(partner).get("signing_secret", "")


def signature(secret: str, timestamp: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()


def signed_payload(method: str, query: str, body: str) -> str:
    """What the signature covers: a POST's body; a GET's query string without its token and its
    signature (a tracker that can only call a URL signs the rest, `timestamp` included)."""
    if method == "POST":
        return body
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in ("token", "signature")])


def _signed_by(method: str, params: dict, headers) -> tuple[str, str]:
    """The request's timestamp and signature: from the X-Postback-* headers, or, for a GET (a
    tracker that can only call a URL), from its `timestamp` and `signature` parameters."""
    stamp = str(headers.get("X-Postback-Timestamp") or "")
    given = str(headers.get("X-Postback-Signature") or "")
    if method == "GET":
        stamp = stamp or str(params.get("timestamp") or "")
        given = given or str(params.get("signature") or "")
    return stamp, given


def _allowed(partner: Partner, ip: str) -> bool:
    networks = [line.strip() for line in (partner.ip_allowlist or "").splitlines() if line.strip()]
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for network in networks:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def _rate_limited(who: str) -> bool:
    """More than POSTBACK_RATE_PER_MINUTE this minute (counted in the cache: Redis in production,
    shared by every web process; the embedded default's memory cache counts per process)."""
    return queueing.count(f"postback-rate:{who}:{int(time.time() // 60)}", seconds=120) > settings.POSTBACK_RATE_PER_MINUTE


def _clean(text: str) -> str:
    """What PostgreSQL can store: no NUL character (text and JSON refuse it)."""
    return str(text).replace("\x00", "\ufffd")


def receive(slug: str, *, method: str, params: dict, query: str, body: str, headers, ip: str, console: bool = False) -> Answer:
    """Handle one request; the answer says what to reply. Never raises for bad input. `console`:
    sent by an admin from the partner's test console (partners.services.console_send) — the
    token and the signature are checked as ever, the address allowlist is not (it is our own)."""
    params = {_clean(k): _clean(v) for k, v in params.items()}
    body = _clean(body)
    partner = Partner.objects.filter(slug=slug[:40], is_active=True).first() if slug else None
    if partner is None:
        return Answer(404, "unknown_partner")
    log = {"partner": partner, "method": method[:6], "params": masked(params), "body": body[:5000], "ip": ip or None}
    try:
        _authenticate(partner, params, headers, ip, method, query, body, console=console)
    except Refusal as refusal:
        # Strangers are counted apart (per address): they cannot use up the partner's allowance,
        # and past it they are not even logged.
        if _rate_limited(f"stranger:{partner.pk}:{ip}"):
            return Answer(429, Verdict.RATE_LIMITED)
        postback = Postback.objects.create(**log, verdict=refusal.verdict, detail=refusal.detail[:300])
        return Answer(refusal.status, refusal.verdict, refusal.detail, postback)
    if _rate_limited(f"partner:{partner.pk}"):
        return Answer(429, Verdict.RATE_LIMITED)  # not logged: a flood would fill the log
    try:
        return _apply(partner, params, log)
    except Refusal as refusal:
        postback = Postback.objects.create(**log, verdict=refusal.verdict, detail=refusal.detail[:300])
        return Answer(refusal.status, refusal.verdict, refusal.detail, postback)


def _authenticate(partner: Partner, params: dict, headers, ip: str, method: str, query: str, body: str, *,
                  console: bool = False) -> None:
    given = str(params.get("token") or headers.get("X-Postback-Token") or "")
    if not hmac.compare_digest(given.encode(), partner.token.encode()):
        raise Refusal(403, Verdict.BAD_TOKEN)
    if not console and not _allowed(partner, ip):
        raise Refusal(403, Verdict.REFUSED_IP, ip or "")
    secret = signing_secret(partner)
    if not secret:
        return
    stamp, signed = _signed_by(method, params, headers)
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > WINDOW:
        raise Refusal(401, Verdict.EXPIRED, stamp[:40])
    expected = signature(secret, stamp, signed_payload(method, query, body))
    if not hmac.compare_digest(signed.lower().encode(), expected.encode()):
        raise Refusal(401, Verdict.BAD_SIGNATURE)


def _value(params: dict, name: str) -> str:
    return str(params.get(name) or "").strip()[:200]


def _apply(partner: Partner, params: dict, log: dict) -> Answer:
    key = _value(params, partner.param("click"))
    status = _value(params, partner.param("status"))
    transaction_id = _value(params, partner.param("transaction"))[:100]
    player_id = _value(params, partner.param("player"))[:64]
    if not key:
        raise Refusal(400, Verdict.INVALID, f"{partner.param('click')} is missing")
    event = partner.event_for(status)
    if event is None:
        raise Refusal(422, Verdict.UNKNOWN_STATUS, status[:100])
    amount = None
    raw_amount = _value(params, partner.param("amount"))
    if raw_amount:
        try:
            amount = Decimal(raw_amount.replace(",", ".")).quantize(Decimal("0.01"))
        except InvalidOperation:
            raise Refusal(400, Verdict.INVALID, f"{partner.param('amount')}: not a number") from None
        if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
            raise Refusal(400, Verdict.INVALID, f"{partner.param('amount')}: out of range")
    if event == Partner.Event.PURCHASE and not amount:
        raise Refusal(400, Verdict.INVALID, f"{partner.param('amount')} is missing for a purchase")
    found = (Click.objects.filter(key=key, link__partner=partner)
             .values_list("pk", "link_id", Subquery(_done(partner, OuterRef("pk"), event, transaction_id)[:1])).first())
    if found is None:
        raise Refusal(404, Verdict.UNKNOWN_CLICK, key[:100])
    click_id, link_id, done = found
    if done is not None:  # a replay of a conversion already committed: no lock needed
        return _duplicate(log, done)
    with transaction.atomic():
        deal, responsible = _locked_deal(link_id)
        # Looked up again under the link's lock: a concurrent twin that held it has committed by now.
        done = _done(partner, click_id, event, transaction_id).first()
        if done is not None:
            return _duplicate(log, done)
        history = Conversion.objects.filter(deal=deal, partner=partner)
        conversion = Conversion(partner=partner, click_id=click_id, deal=deal, event=event, transaction=transaction_id,
                                amount=amount, currency=partner.currency, player_id=player_id)
        if event == Partner.Event.REGISTERED and history.filter(event=Partner.Event.PURCHASE, reversed_at__isnull=True).exists():
            postback = Postback.objects.create(**log, verdict=Verdict.IGNORED, detail="purchase already")
            return Answer(200, Verdict.IGNORED, "purchase already", postback)
        if event == Partner.Event.REGISTERED or (event == Partner.Event.PURCHASE and deal.registration_date is None):
            # a purchase without a registration before it registers the deal too
            deal_services.deal_registered(deal=deal, player_id=player_id, when=timezone.localdate(), text=partner.name)
        if event == Partner.Event.PURCHASE:
            assert amount is not None  # a purchase without one was refused above
            conversion.sale = deal_services.sale_record(deal=deal, player_id=player_id or deal.client.external_id,
                                                        amount=amount, currency=conversion.currency,
                                                        text=f"{player_id} · {partner.name}".strip(" ·"))
        if event == Partner.Event.REJECTED:
            bought = history.filter(event=Partner.Event.PURCHASE, reversed_at__isnull=True, sale__isnull=False)
            if transaction_id:
                bought = bought.filter(transaction=transaction_id)
            purchase = bought.select_related("sale").order_by("-pk").first()
            if purchase is None or purchase.sale is None:
                # nothing of theirs to take back (never bought, or already reversed): said so, and
                # the manager is not told of a reversal that did not happen
                postback = Postback.objects.create(**log, verdict=Verdict.IGNORED, detail="no purchase to reverse")
                return Answer(200, Verdict.IGNORED, "no purchase to reverse", postback)
            deal_services.sale_reverse(sale=purchase.sale, reason=partner.name)
            Conversion.objects.filter(pk=purchase.pk).update(reversed_at=timezone.now())
        conversion.save()
        _tell(deal, responsible, partner, conversion)
        postback = Postback.objects.create(**log, verdict=Verdict.ACCEPTED, conversion=conversion)
    return Answer(200, Verdict.ACCEPTED, postback=postback)


def _done(partner: Partner, click, event: str, transaction_id: str):
    """The conversion this event already made (ids), if any."""
    return Conversion.objects.filter(partner=partner, click=click, event=event, transaction=transaction_id).values_list(
        "pk", flat=True)


def _duplicate(log: dict, conversion_id: int) -> Answer:
    postback = Postback.objects.create(**log, verdict=Verdict.DUPLICATE, conversion_id=conversion_id)
    return Answer(200, Verdict.DUPLICATE, postback=postback)


def _locked_deal(link_id: int) -> tuple[Deal, User | None]:
    """The link's row locked (the deal's postbacks queue up behind each other) and what the effects
    need of its deal, client and responsible, read in the same statement as plain values."""
    (deal_id, name, registration_date, client_id, client_name, external_id, responsible_id,
     responsible_active) = Link.objects.select_for_update(of=("self",)).filter(pk=link_id).values_list(
        "deal_id", "deal__name", "deal__registration_date", "deal__client_id", "deal__client__name",
        "deal__client__external_id", "deal__responsible_id", "deal__responsible__is_active").get()
    deal = Deal(pk=deal_id, name=name, registration_date=registration_date, client_id=client_id,
                responsible_id=responsible_id)
    deal.client = Client(pk=client_id, name=client_name, external_id=external_id)
    responsible = User(pk=responsible_id, is_active=responsible_active) if responsible_id else None
    return deal, responsible


def _tell(deal: Deal, responsible: User | None, partner: Partner, conversion: Conversion) -> None:
    """The responsible manager hears of it, worded when read (crm.activity.notification_text)."""
    if responsible is None:
        return
    activity.notify(user=responsible, kind=Notification.Kind.PARTNER, actor=None, url=deal.get_absolute_url(),
                    params={"about": conversion.event, "partner": partner.name, "deal_id": deal.pk, "deal": deal.name,
                            "amount": format(conversion.amount, "f") if conversion.amount else "",
                            "currency": conversion.currency, **activity.client_params(deal.client)})


def replay(*, actor, postback: Postback) -> Answer:
    """Run a refused postback again as it came (after the mapping was fixed); a new log line."""
    from crm import permissions as gate

    gate.require(actor, gate.CONFIGURE_PARTNERS)
    if postback.partner is None or postback.verdict not in REPLAYABLE:
        # (a request that failed authentication is a stranger's: replaying it would apply it)
        return Answer(400, Verdict.INVALID, "only a postback refused for its content can be replayed")
    partner = postback.partner
    log = {"partner": partner, "method": postback.method, "params": postback.params, "body": postback.body,
           "ip": postback.ip, "replayed_from": postback}
    params = {**postback.params, "token": partner.token}
    try:
        answer = _apply(partner, params, log)
    except Refusal as refusal:
        created = Postback.objects.create(**log, verdict=refusal.verdict, detail=refusal.detail[:300])
        return Answer(refusal.status, refusal.verdict, refusal.detail, created)
    return answer
