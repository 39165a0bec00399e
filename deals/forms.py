from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.utils.translation import gettext_lazy as _

from clients.forms import CustomFieldsMixin
from clients.models import Channel, Tag
from crm import permissions as gate
from crm.timezones import time_zone_choices

from .models import Color, Deal, Line


class QuickDealForm(forms.Form):
    """Seed 002: name, budget, stage; the author becomes responsible."""

    name = forms.CharField(label=_("Name"), max_length=100)
    budget = forms.DecimalField(label=_("Deal budget"), max_digits=14, decimal_places=2, min_value=0, initial=0)
    stage = forms.TypedChoiceField(label=_("Stage"), coerce=int)

    def __init__(self, *args, stage_choices=(), locked=(), distributes=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].choices = list(stage_choices)
        if "budget" in locked:
            del self.fields["budget"]
        if distributes:  # issue 14: the line's distribution finds the manager (or the deal waits in its queue)
            self.fields["distribute"] = forms.BooleanField(
                label=_("Give it to the next manager on shift (the line's distribution)"), required=False)


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


class FunnelTimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices,
                                  help_text=_("Robots' working hours follow this clock."))


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


class LineDistributionForm(forms.ModelForm):
    """Issue 14: how the line's new deals find a manager, the cap, the end of a shift, who may
    receive them, and which stages close a deal (not counted towards the cap). The teams are read
    once for every line's form (`teams`); the stages are the line's own (prefetched)."""

    team_ids = forms.TypedMultipleChoiceField(
        label=_("Only members of these teams receive deals"), coerce=int, required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("None chosen: everyone who may open the funnel."),
    )
    closing = forms.TypedMultipleChoiceField(
        label=_("Stages that close a deal"), coerce=int, required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("Deals there are not counted among a manager's open deals."),
    )

    class Meta:
        model = Line
        fields = ["distribution", "cap", "shift_end"]
        widgets = {"cap": forms.NumberInput(attrs={"min": 1, "placeholder": "—"})}

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cap"].validators.append(MinValueValidator(1))
        self.fields["cap"].widget.attrs["min"] = 1
        self.fields["team_ids"].choices = [(team.pk, team.name) for team in teams]
        stages = list(self.instance.stages.all())
        self.fields["closing"].choices = [(stage.pk, str(stage)) for stage in stages]
        if not self.is_bound:
            self.initial["team_ids"] = [team.pk for team in self.instance.teams.all()]
            self.initial["closing"] = [stage.pk for stage in stages if stage.closes]
