from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .models import DESCRIPTION_MAX, TaskType

if TYPE_CHECKING:
    from deals.models import Deal


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class TaskForm(forms.Form):
    """Seed 002: description (200), type, responsible, deadline — in the user's time zone."""

    description = forms.CharField(label=_("Task description"), max_length=DESCRIPTION_MAX,
                                  widget=forms.Textarea(attrs={"rows": 2, "maxlength": DESCRIPTION_MAX}))
    type = forms.ModelChoiceField(label=_("Task type"), queryset=TaskType.objects.all(), empty_label=None)
    responsible = forms.ModelChoiceField(label=_("Responsible"), queryset=get_user_model().objects.filter(is_active=True))
    deadline = forms.DateTimeField(label=_("Deadline"), widget=DateTimeInput, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    deal: "forms.ModelChoiceField[Deal]" = forms.ModelChoiceField(label=_("Deal"), queryset=None, required=False)

    def __init__(self, *args, deals=None, with_deal=True, **kwargs):
        super().__init__(*args, **kwargs)
        if with_deal and deals is not None:
            self.fields["deal"].queryset = deals
        else:
            del self.fields["deal"]


class CompleteForm(forms.Form):
    result = forms.CharField(label=_("Result"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class TaskTypeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)
