"""The partner form and the test console's form (issue 17)."""

import ipaddress
import re
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from .models import DEFAULT_PARAMS, DEFAULT_STATUSES, Partner

EVENTS = Partner.Event.values
PARAM_LABELS = {
    "click": _("Click id parameter"),
    "status": _("Status parameter"),
    "amount": _("Amount parameter"),
    "transaction": _("Transaction id parameter"),
    "player": _("Player id parameter"),
}
PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,40}$")


def _when(at) -> str:
    return formats.date_format(timezone.localtime(at), "SHORT_DATETIME_FORMAT")


def statuses_text(statuses: dict) -> str:
    return "\n".join(f"{value} = {event}" for value, event in (statuses or {}).items())


def defaults_help() -> str:
    return ", ".join(f"{value} = {event}" for value, event in DEFAULT_STATUSES.items())


class PartnerForm(forms.ModelForm):
    """The partner's settings; the signing secret is never shown back (an empty box keeps it)."""

    signing_secret = forms.CharField(
        label=_("Signing secret"), required=False, max_length=200, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("When set, each postback must carry X-Postback-Timestamp and X-Postback-Signature "
                    "(HMAC-SHA256 of “timestamp.body”); a GET may carry them as the timestamp and signature "
                    "parameters instead (signing its query without token and signature). Leave empty to keep "
                    "the saved one."))
    remove_secret = forms.BooleanField(label=_("Remove the signing secret (postbacks are then checked by token only)"),
                                       required=False)
    status_map = forms.CharField(
        label=_("Status values"), required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "approved = purchase"}),
        help_text=_("One per line: the partner's value = registered, purchase or rejected. "
                    "Known without a line: %(defaults)s.") % {"defaults": defaults_help()})

    class Meta:
        model = Partner
        fields = ["name", "slug", "url_template", "ip_allowlist", "currency", "is_active"]
        widgets = {"ip_allowlist": forms.Textarea(attrs={"rows": 3, "placeholder": "203.0.113.0/24"}),
                   "url_template": forms.TextInput(attrs={"placeholder": "https://partner.example/reg?click={click_id}"})}

    def __init__(self, *args, has_secret: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_secret = has_secret
        self.fields["url_template"].help_text = _(
            "http(s) address with {click_id} (the click id the partner sends back); {deal_id} is filled in too.")
        for key, label in PARAM_LABELS.items():
            self.fields[f"param_{key}"] = forms.CharField(
                label=label, max_length=40, required=False, initial=DEFAULT_PARAMS[key],
                help_text=_("Default: %(name)s") % {"name": DEFAULT_PARAMS[key]})
        order = ["name", "slug", "url_template", "signing_secret", "remove_secret", "ip_allowlist", "status_map",
                 *[f"param_{k}" for k in PARAM_LABELS], "currency", "is_active"]
        self.order_fields(order)
        if not has_secret:
            del self.fields["remove_secret"]
        if self.instance.pk:
            self.initial["status_map"] = statuses_text(self.instance.statuses)
            for key in PARAM_LABELS:
                self.initial[f"param_{key}"] = self.instance.param(key)

    def clean_url_template(self) -> str:
        url = (self.cleaned_data.get("url_template") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(_("The address must start with http:// or https:// and name a host."))
        if "{click_id}" not in url:
            raise ValidationError(_("The address must contain {click_id}: that is how the partner learns the click."))
        return url

    def clean_ip_allowlist(self) -> str:
        lines = [line.strip() for line in (self.cleaned_data.get("ip_allowlist") or "").splitlines() if line.strip()]
        bad = []
        for line in lines:
            try:
                ipaddress.ip_network(line, strict=False)
            except ValueError:
                bad.append(line)
        if bad:
            raise ValidationError(_("Not an IP address or network: %(lines)s. Write one per line, e.g. 203.0.113.0/24.")
                                  % {"lines": ", ".join(bad[:5])})
        return "\n".join(lines)

    def clean_status_map(self) -> dict:
        mapping: dict[str, str] = {}
        for number, raw in enumerate((self.cleaned_data.get("status_map") or "").splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            value, sep, event = line.partition("=")
            value, event = value.strip().lower(), event.strip().lower()
            if not sep or not value or event not in EVENTS:
                raise ValidationError(_("Line %(number)s, “%(line)s”: write “the partner's value = registered”, "
                                        "“= purchase” or “= rejected”.") % {"number": number, "line": line[:60]})
            if len(value) > 60:
                raise ValidationError(_("Line %(number)s: the value is longer than 60 characters.") % {"number": number})
            mapping[value] = event
        return mapping

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ValidationError(_("Three latin letters, e.g. RUB, USD, EUR."))
        return currency

    def clean(self):
        data = super().clean()
        for key in PARAM_LABELS:
            name = (data.get(f"param_{key}") or "").strip()
            if name and not PARAM_NAME.match(name):
                self.add_error(f"param_{key}", _("Letters, digits, “_”, “-”, “.” only."))
        return data

    def partner_data(self) -> dict:
        """What the service writes: the model's fields, the mapping, the parameter names, the secret."""
        data = self.cleaned_data
        params = {key: data[f"param_{key}"].strip() for key in PARAM_LABELS
                  if data.get(f"param_{key}", "").strip() and data[f"param_{key}"].strip() != DEFAULT_PARAMS[key]}
        return {"name": data["name"], "slug": data["slug"], "url_template": data["url_template"],
                "ip_allowlist": data["ip_allowlist"], "currency": data["currency"], "is_active": data["is_active"],
                "statuses": data["status_map"], "params": params, "signing_secret": data.get("signing_secret", ""),
                "remove_secret": data.get("remove_secret", False)}


class ConsoleForm(forms.Form):
    """The test console: a sample postback as the partner would send it."""

    click = forms.ChoiceField(label=_("Click"), required=False)
    click_id = forms.CharField(label=_("…or a click id"), required=False, max_length=100)
    event = forms.ChoiceField(label=_("Event"), choices=Partner.Event.choices)
    amount = forms.DecimalField(label=_("Amount"), required=False, min_value=0, max_digits=14, decimal_places=2)
    transaction = forms.CharField(label=_("Transaction id"), required=False, max_length=100)
    player = forms.CharField(label=_("Player id"), required=False, max_length=64)

    def __init__(self, *args, clicks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["click"].choices = [("", "—")] + [
            (c.key, f"#{c.link.deal_id} {c.link.deal.name} · {_when(c.at)}") for c in clicks]

    def clean(self):
        data = super().clean()
        key = (data.get("click_id") or "").strip() or data.get("click") or ""
        if not key:
            raise ValidationError(_("Choose a click or type a click id."))
        data["key"] = key
        if data.get("event") == Partner.Event.PURCHASE and not data.get("amount"):
            self.add_error("amount", _("A purchase needs an amount."))
        return data
