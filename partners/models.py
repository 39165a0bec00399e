"""Partners, registration links and postbacks (DESIGN §3 "Registration link", seed 001).

A partner (an affiliate network or a tracker) has a target URL template with {click_id}; each deal
gets a tracking link per partner (`Link`, an unguessable token); `/go/<token>` records a `Click`
(its own id is the click id the partner receives) and redirects. The partner's server calls
`/postback/<slug>/` back with the click id, a status, an amount and a transaction id; every call
is a `Postback` in the log with its verdict, and an accepted one is a `Conversion`, unique per
(partner, click, event, transaction id): a replay changes nothing.
"""

import secrets as random_secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from deals.models import Deal, Sale


def new_token() -> str:
    return random_secrets.token_urlsafe(24)


def new_link_token() -> str:
    return random_secrets.token_urlsafe(12)


def new_click_key() -> str:
    return uuid.uuid4().hex


# What each event is called in the partner's parameters unless the partner maps it otherwise.
DEFAULT_STATUSES = {"lead": "registered", "reg": "registered", "registration": "registered", "registered": "registered",
                    "sale": "purchase", "purchase": "purchase", "deposit": "purchase", "rebill": "purchase",
                    "rejected": "rejected", "reject": "rejected", "refund": "rejected", "chargeback": "rejected"}
# Where each value is in the partner's request (Keitaro: subid, status, payout, tid; Binom: cnv_id,
# cnv_status, payout; Voluum: cid, payout, txid).
DEFAULT_PARAMS = {"click": "click_id", "status": "status", "amount": "payout", "transaction": "tid", "player": "player_id"}


class Partner(models.Model):
    class Event(models.TextChoices):
        REGISTERED = "registered", _("Registered")
        PURCHASE = "purchase", _("Purchase")
        REJECTED = "rejected", _("Rejected")

    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("address name"), max_length=40, unique=True,
                            help_text=_("The postback address is /postback/<this name>/."))
    url_template = models.URLField(_("target URL"), max_length=500,
                                   help_text=_("Where a click goes: {click_id} and {deal_id} are filled in."))
    # The postback's key: in the URL (?token=…) or the X-Postback-Token header.
    token = models.CharField(_("postback token"), max_length=64, default=new_token, unique=True)
    # Encrypted like a channel's (messenger.secrets): {"signing_secret": …}; empty: no signature asked.
    secrets = models.TextField(blank=True, editable=False)
    ip_allowlist = models.TextField(_("allowed IP addresses"), blank=True,
                                    help_text=_("One address or network per line (203.0.113.0/24). Empty: any."))
    statuses = models.JSONField(_("status values"), default=dict, blank=True)  # the partner's value → Event
    params = models.JSONField(_("parameter names"), default=dict, blank=True)  # DEFAULT_PARAMS keys → their names
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        permissions = [("configure_partners", _("Can configure partners"))]

    def __str__(self):
        return self.name

    def param(self, key: str) -> str:
        return (self.params or {}).get(key) or DEFAULT_PARAMS[key]

    def event_for(self, status: str) -> str | None:
        mapping = {**DEFAULT_STATUSES, **{k.lower(): v for k, v in (self.statuses or {}).items()}}
        return mapping.get((status or "").strip().lower())


class Link(models.Model):
    """A deal's registration link to one partner."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="partner_links")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="links")
    token = models.CharField(max_length=32, default=new_link_token, unique=True)
    clicks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deal", "partner"], name="link_once_per_partner")]

    def __str__(self):
        return f"link of deal {self.deal_id} to {self.partner_id}"


class Click(models.Model):
    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="click_rows")
    key = models.CharField(max_length=32, default=new_click_key, unique=True)  # the click id the partner gets
    at = models.DateTimeField(auto_now_add=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)  # sha256 of the address with a secret: counted, not kept

    def __str__(self):
        return self.key


class Conversion(models.Model):
    """An accepted event: what it did, once."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="conversions")
    click = models.ForeignKey(Click, on_delete=models.PROTECT, related_name="conversions")
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="conversions")
    event = models.CharField(max_length=12, choices=Partner.Event)
    transaction = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    player_id = models.CharField(max_length=64, blank=True)
    sale = models.ForeignKey(Sale, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reversed_at = models.DateTimeField(null=True, blank=True)  # a purchase later rejected
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "click", "event", "transaction"], name="conversion_once")]
        indexes = [models.Index(fields=["deal", "-created_at"], name="conversion_deal_idx")]

    def __str__(self):
        return f"{self.event} of click {self.click_id}"


class Postback(models.Model):
    """One request to the postback endpoint, whatever became of it (the admins' log)."""

    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        DUPLICATE = "duplicate", _("Duplicate")
        IGNORED = "ignored", _("Ignored: no downgrade")
        BAD_TOKEN = "bad_token", _("Wrong token")
        BAD_SIGNATURE = "bad_signature", _("Bad signature")
        EXPIRED = "expired", _("Outside the time window")
        REFUSED_IP = "refused_ip", _("Address not allowed")
        UNKNOWN_CLICK = "unknown_click", _("Unknown click")
        UNKNOWN_STATUS = "unknown_status", _("Unknown status")
        INVALID = "invalid", _("Invalid parameters")
        RATE_LIMITED = "rate_limited", _("Too many requests")

    id = models.BigAutoField(primary_key=True)
    partner = models.ForeignKey(Partner, null=True, on_delete=models.SET_NULL, related_name="postbacks")
    received_at = models.DateTimeField(auto_now_add=True)
    method = models.CharField(max_length=6)
    params = models.JSONField(default=dict)  # secrets masked
    body = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    verdict = models.CharField(max_length=14, choices=Verdict)
    detail = models.CharField(max_length=300, blank=True)
    conversion = models.ForeignKey(Conversion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    replayed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["partner", "-id"], name="postback_log_idx"),
            models.Index(fields=["verdict", "-id"], name="postback_verdict_idx", condition=~Q(verdict="accepted")),
        ]

    def __str__(self):
        return f"postback {self.pk}: {self.verdict}"
