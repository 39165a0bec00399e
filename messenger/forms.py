from django import forms
from django.utils.translation import gettext_lazy as _


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
