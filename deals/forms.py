from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from clients.forms import CustomFieldsMixin
from clients.models import Channel, Tag
from crm import permissions as gate

from .models import Color, Deal


class QuickDealForm(forms.Form):
    """Seed 002: name, budget, stage; the author becomes responsible."""

    name = forms.CharField(label=_("Name"), max_length=100)
    budget = forms.DecimalField(label=_("Deal budget"), max_digits=14, decimal_places=2, min_value=0, initial=0)
    stage = forms.TypedChoiceField(label=_("Stage"), coerce=int)

    def __init__(self, *args, stage_choices=(), locked=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].choices = list(stage_choices)
        if "budget" in locked:
            del self.fields["budget"]


class DealForm(CustomFieldsMixin, forms.ModelForm):
    tags = forms.ModelMultipleChoiceField(
        label=_("Tags"), queryset=Tag.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Deal
        fields = ["name", "budget", "responsible", "channel", "registration_date", "tags"]
        widgets = {"registration_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, can_change_responsible=True, custom_fields=(), locked=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Fields the deal block's Manager layout hides or makes read-only are not in the form.
        names = {gate.DEAL_ATTRIBUTE.get(key, key) for key in locked}
        self.add_custom_fields([f for f in custom_fields if f.key not in names])
        self.fields["responsible"].queryset = get_user_model().objects.filter(is_active=True)
        self.fields["channel"].choices = [("", "—"), *Channel.choices]
        if not can_change_responsible:
            self.fields["responsible"].disabled = True
        for name in names:
            self.fields.pop(name, None)


class SaleForm(forms.Form):
    player_id = forms.CharField(label=_("Player ID"), max_length=64)
    amount = forms.DecimalField(label=_("Amount"), max_digits=14, decimal_places=2, min_value=0.01)


class MoveForm(forms.Form):
    stage = forms.IntegerField()
    seen_stage = forms.IntegerField()
    seen_version = forms.IntegerField()
    before = forms.IntegerField(required=False)
    after = forms.IntegerField(required=False)


class NameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)


class StageForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)
    color = forms.ChoiceField(label=_("Colour"), choices=Color.choices)


class StageDeleteForm(forms.Form):
    move_to = forms.TypedChoiceField(label=_("Move its deals to"), coerce=int, required=False)

    def __init__(self, *args, targets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["move_to"].choices = [(s.pk, f"{s.line} · {s}") for s in targets]


class FunnelAccessForm(forms.Form):
    users = forms.ModelMultipleChoiceField(
        label=_("Users"), queryset=get_user_model().objects.filter(is_active=True), required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    groups = forms.ModelMultipleChoiceField(
        label=_("Roles"), queryset=Group.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
