import copy

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import Team
from deals.models import Line

from .models import Channel, IgnoreRule, QuickReply


class MassSendForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=150, required=False)
    body = forms.CharField(label=_("Message"), max_length=5000, widget=forms.Textarea(attrs={"rows": 5}))
    action_type = forms.CharField(label=_("Action type"), max_length=60, required=False,
                                  help_text=_("Recorded on each client's feed at their current step."))

    def __init__(self, *args, channel="email", **kwargs):
        super().__init__(*args, **kwargs)
        if channel == "sms":
            del self.fields["subject"]
        else:
            self.fields["subject"].required = True


# The messenger's settings (issue 15) ----------------------------------------------------------



# Per kind: (settings key, label, field); keys in SECRET_KEYS are kept encrypted (messenger.secrets)
# and never shown back: an empty box keeps the stored secret.
SECRET_KEYS = {"bot_token", "webhook_secret", "imap_password", "smtp_password", "signing_secret", "gateway_token"}


def _text(label, **kw):
    return forms.CharField(label=label, required=False, **kw)


KIND_FIELDS = {
    "telegram": [
        ("bot_token", _text(_("Bot token"), widget=forms.PasswordInput(render_value=False),
                            help_text=_("From @BotFather. Leave empty to keep the saved one."))),
        ("api_base", _text(_("Bot API address"), help_text=_("Empty: Telegram's own."))),
    ],
    "email": [
        ("from_email", forms.EmailField(label=_("Address clients write to"), required=False)),
        ("imap_host", _text(_("IMAP server"))),
        ("imap_port", forms.IntegerField(label=_("IMAP port"), required=False, min_value=1, max_value=65535)),
        ("imap_user", _text(_("IMAP user"))),
        ("imap_password", _text(_("IMAP password"), widget=forms.PasswordInput(render_value=False))),
        ("imap_ssl", forms.BooleanField(label=_("IMAP over SSL"), required=False)),
        ("mailbox", _text(_("Folder"), help_text=_("Empty: INBOX."))),
        ("smtp_host", _text(_("SMTP server"), help_text=_("Empty: the system's mail server."))),
        ("smtp_port", forms.IntegerField(label=_("SMTP port"), required=False, min_value=1, max_value=65535)),
        ("smtp_user", _text(_("SMTP user"))),
        ("smtp_password", _text(_("SMTP password"), widget=forms.PasswordInput(render_value=False))),
        ("smtp_tls", forms.BooleanField(label=_("SMTP with STARTTLS"), required=False)),
    ],
    "sms": [
        ("gateway_url", forms.URLField(label=_("Gateway address"), required=False)),
        ("gateway_token", _text(_("Gateway token"), widget=forms.PasswordInput(render_value=False))),
    ],
    "webhook": [
        ("outbound_url", forms.URLField(label=_("Bridge address for replies"), required=False)),
    ],
    "console": [],
}


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ["name", "is_active", "line", "teams"]
        widgets = {"teams": forms.CheckboxSelectMultiple}

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        line = self.fields["line"]
        assert isinstance(line, forms.ModelChoiceField)
        line.queryset = Line.objects.select_related("funnel").order_by("funnel__position", "funnel_id", "position")
        line.label_from_instance = lambda obj: f"{obj.funnel} · {obj}"  # type: ignore[method-assign]
        line.empty_label = _("The first line of the first funnel")
        teams = self.fields["teams"]
        assert isinstance(teams, forms.ModelMultipleChoiceField)
        teams.queryset = Team.objects.all()
        self.fields["teams"].help_text = _("None ticked: everyone who may chat.")
        self.setting_keys = []
        for key, field in KIND_FIELDS[kind]:
            field = copy.deepcopy(field)  # the form class's field is shared by every form
            self.fields[key] = field
            self.setting_keys.append(key)
            if key not in SECRET_KEYS and self.instance.pk:
                self.initial.setdefault(key, self.instance.settings.get(key, ""))

    def settings_values(self) -> tuple[dict, dict]:
        plain = {k: self.cleaned_data.get(k) for k in self.setting_keys if k not in SECRET_KEYS}
        secret = {k: self.cleaned_data.get(k) or "" for k in self.setting_keys if k in SECRET_KEYS}
        return {k: v for k, v in plain.items() if v not in (None, "")}, secret


class IgnorePatternForm(forms.Form):
    kind = forms.ChoiceField(label=_("What"), choices=[(k, label) for k, label in IgnoreRule.Kind.choices if k != IgnoreRule.Kind.CLIENT])
    pattern = forms.CharField(label=_("Pattern"), max_length=200, help_text=_("A sender id, a phone, or an e-mail such as *@spam.example"))
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
    until = forms.DateTimeField(label=_("Until"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    back_on_message = forms.BooleanField(label=_("Back on a new message"), required=False)


class QuickReplyForm(forms.ModelForm):
    class Meta:
        model = QuickReply
        fields = ["title", "text"]
        widgets = {"text": forms.Textarea(attrs={"rows": 3})}


class SimulateForm(forms.Form):
    sender = forms.CharField(label=_("Sender id"), max_length=100, initial="demo-1")
    name = forms.CharField(label=_("Sender's name"), max_length=100, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=30, required=False)
    text = forms.CharField(label=_("Message"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
