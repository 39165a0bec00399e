"""The robot form: name, trigger, conditions (RobotForm) and its actions (a formset of ActionForm),
turned into and read from the JSON that robots.models documents.

The choices (stages and lines of the funnel, tags, users, task types, custom fields) are read once
by `Choices` and handed to every form of the page, so a form with ten actions costs what one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django import forms
from django.core.validators import MinValueValidator
from django.utils.translation import gettext_lazy as _

from clients.models import Channel, Tag
from clients.selectors import custom_fields_active
from crm.models import User
from deals.models import Funnel, Line, Stage

from .models import Robot
from .summary import WEEKDAYS

WEBHOOK = "webhook"
PLACEHOLDERS_HELP = _("Placeholders: {name} the client's name, {first_name}, {manager} the responsible, {deal} the deal's "
                      "name, {budget}, {link} the registration link.")


@dataclass
class Choices:
    stages: list[tuple[int, str]]
    lines: list[tuple[int, str]]
    tags: list[tuple[int, str]]
    users: list[tuple[int, str]]
    task_types: list[tuple[int, str]]
    fields: list[tuple[str, str]]


def choices_for(funnel: Funnel, stage: Stage) -> Choices:
    """What the robot form offers, for a robot of `stage` in `funnel` (one query per list)."""
    from tasks.models import TaskType

    stages = Stage.objects.filter(line__funnel=funnel).select_related("line").order_by("line__position", "line_id", "position", "pk")
    lines = Line.objects.filter(funnel=funnel).exclude(pk=stage.line_id).order_by("position", "pk")
    return Choices(
        stages=[(s.pk, f"{s.line} · {s}") for s in stages],
        lines=[(line.pk, str(line)) for line in lines],
        tags=list(Tag.objects.order_by("name").values_list("pk", "name")),
        users=[(u.pk, str(u)) for u in User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")],
        task_types=[(t.pk, str(t)) for t in TaskType.objects.order_by("pk")],
        fields=[(f.key, f.label) for f in custom_fields_active()],
    )


def _offer(form: forms.Form, name: str, choices) -> None:
    cast(forms.ChoiceField, form.fields[name]).choices = choices


class KindSelect(forms.Select):
    """The action kinds, with the webhook shown but not choosable (it comes with integrations)."""

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value == WEBHOOK:
            option["attrs"]["disabled"] = True
        return option


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


def _clock(value) -> str:
    return value.strftime("%H:%M") if value else ""


class RobotForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    trigger = forms.ChoiceField(label=_("When"), choices=Robot.Trigger.choices)
    idle_minutes = forms.IntegerField(label=_("Minutes without activity"), required=False, validators=[MinValueValidator(1)],
                                      help_text=_("For “minutes in the stage without activity”: no message in or out, no "
                                                  "comment, no stage change for this long."))
    channels = forms.MultipleChoiceField(label=_("Channel is one of"), choices=Channel.choices, required=False,
                                         widget=forms.CheckboxSelectMultiple)
    tags = forms.TypedMultipleChoiceField(label=_("Has one of the tags"), coerce=int, required=False,
                                          widget=forms.CheckboxSelectMultiple)
    responsibles = forms.TypedMultipleChoiceField(label=_("Responsible is one of"), coerce=int, required=False,
                                                  widget=forms.CheckboxSelectMultiple)
    budget_min = forms.DecimalField(label=_("Budget from"), required=False, min_value=0, max_digits=14, decimal_places=2)
    budget_max = forms.DecimalField(label=_("Budget up to"), required=False, min_value=0, max_digits=14, decimal_places=2)
    field = forms.ChoiceField(label=_("Field"), required=False)
    field_value = forms.CharField(label=_("equals"), required=False, max_length=200)
    hours_from = forms.TimeField(label=_("Working hours from"), required=False, widget=TimeInput())
    hours_to = forms.TimeField(label=_("to"), required=False, widget=TimeInput())
    days = forms.TypedMultipleChoiceField(label=_("On days"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
                                          help_text=_("None chosen: every day. Outside working hours the robot waits for them."))
    apply_existing = forms.BooleanField(label=_("Apply to deals already in the stage"), required=False,
                                        help_text=_("Otherwise the robot acts on deals that enter the stage from now on."))

    def __init__(self, *args, choices: Choices, creating: bool, robot: Robot | None = None, **kwargs):
        if robot is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(robot)
        super().__init__(*args, **kwargs)
        _offer(self, "tags", choices.tags)
        _offer(self, "responsibles", [(0, _("Nobody")), *choices.users])
        _offer(self, "field", [("", _("Any (no condition)")), *choices.fields])
        _offer(self, "days", list(enumerate(WEEKDAYS)))
        if not creating:
            del self.fields["apply_existing"]

    @staticmethod
    def initial_from(robot: Robot) -> dict:
        c = robot.conditions or {}
        return {"name": robot.name, "trigger": robot.trigger, "idle_minutes": robot.idle_minutes,
                "channels": c.get("channels") or [], "tags": c.get("tags") or [], "responsibles": c.get("responsibles") or [],
                "budget_min": c.get("budget_min"), "budget_max": c.get("budget_max"), "field": c.get("field", ""),
                "field_value": c.get("field_value", ""), "hours_from": c.get("hours_from") or None,
                "hours_to": c.get("hours_to") or None, "days": c.get("days") or []}

    def clean(self):
        data = super().clean()
        if data.get("trigger") == Robot.Trigger.IDLE and not data.get("idle_minutes"):
            self.add_error("idle_minutes", _("Say after how many minutes without activity (1 or more)."))
        low, high = data.get("budget_min"), data.get("budget_max")
        if low is not None and high is not None and low > high:
            self.add_error("budget_max", _("The upper bound is below the lower one."))
        if data.get("field") and not data.get("field_value", "").strip():
            self.add_error("field_value", _("Give the value the field must have."))
        if bool(data.get("hours_from")) != bool(data.get("hours_to")):
            self.add_error("hours_to", _("Give both the start and the end of the working hours."))
        elif data.get("hours_from") and data["hours_from"] == data.get("hours_to"):
            self.add_error("hours_to", _("The working hours start and end at the same time."))
        return data

    def conditions(self) -> dict:
        d = self.cleaned_data
        out: dict = {}
        for key in ("channels", "tags", "responsibles", "days"):
            if d.get(key):
                out[key] = sorted(d[key]) if key != "channels" else list(d[key])
        for key in ("budget_min", "budget_max"):
            if d.get(key) is not None:
                out[key] = format(d[key].normalize(), "f")
        if d.get("field"):
            out["field"], out["field_value"] = d["field"], d["field_value"].strip()
        if d.get("hours_from") and d.get("hours_to"):
            out["hours_from"], out["hours_to"] = _clock(d["hours_from"]), _clock(d["hours_to"])
        return out


# Which of ActionForm's fields each kind uses (the script shows only those; without it all show).
KIND_FIELDS = {
    Robot.Action.MOVE: ("stage",),
    Robot.Action.TRANSFER: ("line",),
    Robot.Action.MESSAGE: ("text",),
    Robot.Action.TASK: ("task_type", "text", "deadline_minutes", "task_user"),
    Robot.Action.RESPONSIBLE: ("user",),
    Robot.Action.TAG_ADD: ("tag",),
    Robot.Action.TAG_REMOVE: ("tag",),
    Robot.Action.NOTIFY: ("users", "responsible", "text"),
}


class ActionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Action"), widget=KindSelect(attrs={"data-action-kind": ""}))
    stage = forms.TypedChoiceField(label=_("Stage"), coerce=int, required=False)
    line = forms.TypedChoiceField(label=_("Line"), coerce=int, required=False,
                                  help_text=_("The deal goes to the line's first stage; the line's distribution gives it out."))
    task_type = forms.TypedChoiceField(label=_("Task type"), coerce=int, required=False)
    text = forms.CharField(label=_("Text"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text=PLACEHOLDERS_HELP)
    deadline_minutes = forms.IntegerField(label=_("Deadline, minutes after firing"), required=False, initial=60,
                                          validators=[MinValueValidator(1)])
    task_user = forms.TypedChoiceField(label=_("Task for"), coerce=int, required=False, empty_value=None)
    user = forms.TypedChoiceField(label=_("New responsible"), coerce=int, required=False,
                                  help_text=_("Only if they may receive this line's deals."))
    tag = forms.TypedChoiceField(label=_("Tag"), coerce=int, required=False)
    users = forms.TypedMultipleChoiceField(label=_("Notify"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple)
    responsible = forms.BooleanField(label=_("Notify the deal's responsible"), required=False)

    def __init__(self, *args, choices: Choices, **kwargs):
        super().__init__(*args, **kwargs)
        empty = [("", "—")]
        _offer(self, "kind", [*Robot.Action.choices, (WEBHOOK, _("Call a webhook — with integrations (later)"))])
        _offer(self, "stage", [*empty, *choices.stages])
        _offer(self, "line", [*empty, *choices.lines])
        _offer(self, "task_type", [*empty, *choices.task_types])
        _offer(self, "task_user", [(0, _("The deal's responsible")), *choices.users])
        _offer(self, "user", [*empty, *choices.users])
        _offer(self, "tag", [*empty, *choices.tags])
        _offer(self, "users", choices.users)

    def rows(self):
        """(field, the kinds that use it) for the template: the kind select first."""
        used: dict[str, list[str]] = {}
        for kind, names in KIND_FIELDS.items():
            for name in names:
                used.setdefault(name, []).append(kind)
        return [(self[name], " ".join(used.get(name, []))) for name in self.fields if name != "kind"]

    def clean_kind(self):
        kind = self.cleaned_data["kind"]
        if kind == WEBHOOK:
            raise forms.ValidationError(_("Webhooks arrive with the integrations: choose another action."))
        return kind

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        need = {
            Robot.Action.MOVE: ("stage", _("Choose the stage to move the deal to.")),
            Robot.Action.TRANSFER: ("line", _("Choose the line to transfer the deal to.")),
            Robot.Action.MESSAGE: ("text", _("Write the message.")),
            Robot.Action.TASK: ("task_type", _("Choose the task type.")),
            Robot.Action.RESPONSIBLE: ("user", _("Choose the new responsible.")),
            Robot.Action.TAG_ADD: ("tag", _("Choose the tag.")),
            Robot.Action.TAG_REMOVE: ("tag", _("Choose the tag.")),
            Robot.Action.NOTIFY: ("text", _("Write the notification.")),
        }
        if kind in need:
            name, message = need[kind]
            value = data.get(name)
            if value in (None, "") or (isinstance(value, str) and not value.strip()):
                self.add_error(name, message)
        if kind == Robot.Action.TASK and not data.get("deadline_minutes"):
            self.add_error("deadline_minutes", _("Give the deadline in minutes (1 or more)."))
        if kind == Robot.Action.NOTIFY and not data.get("users") and not data.get("responsible"):
            self.add_error("users", _("Choose whom to notify."))
        return data

    def action(self) -> dict:
        d, kind = self.cleaned_data, self.cleaned_data["kind"]
        if kind == Robot.Action.MOVE:
            return {"kind": kind, "stage": d["stage"]}
        if kind == Robot.Action.TRANSFER:
            return {"kind": kind, "line": d["line"]}
        if kind == Robot.Action.MESSAGE:
            return {"kind": kind, "text": d["text"].strip()}
        if kind == Robot.Action.TASK:
            return {"kind": kind, "task_type": d["task_type"], "text": d["text"].strip(),
                    "deadline_minutes": d["deadline_minutes"], "user": d.get("task_user") or 0}
        if kind == Robot.Action.RESPONSIBLE:
            return {"kind": kind, "user": d["user"]}
        if kind in (Robot.Action.TAG_ADD, Robot.Action.TAG_REMOVE):
            return {"kind": kind, "tag": d["tag"]}
        return {"kind": kind, "text": d["text"].strip(), "users": sorted(d.get("users") or []),
                "responsible": bool(d.get("responsible"))}

    @staticmethod
    def initial_from(action: dict) -> dict:
        kind = action.get("kind", "")
        initial = {"kind": kind, "text": action.get("text", ""), "deadline_minutes": action.get("deadline_minutes") or 60}
        if kind == Robot.Action.TASK:
            initial.update(task_type=action.get("task_type"), task_user=action.get("user") or 0)
        elif kind == Robot.Action.NOTIFY:
            initial.update(users=action.get("users") or [], responsible=bool(action.get("responsible")))
        else:
            initial.update({key: action.get(key) for key in ("stage", "line", "user", "tag") if key in action})
        return initial


class BaseActionFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if not self.actions():
            raise forms.ValidationError(_("Add at least one action."))

    def actions(self) -> list[dict]:
        # An added row left untouched is empty (cleaned_data is {}); a row marked for removal is left out.
        return [form.action() for form in self.forms
                if form.cleaned_data.get("kind") and not (self.can_delete and self._should_delete_form(form))]  # type: ignore[attr-defined]


ActionFormSet = forms.formset_factory(ActionForm, formset=BaseActionFormSet, extra=0, min_num=1, validate_min=True,
                                      can_delete=True)


def action_formset(data=None, *, choices: Choices, robot: Robot | None = None) -> BaseActionFormSet:
    initial = [ActionForm.initial_from(action) for action in (robot.actions or [])] if robot else None
    return cast(BaseActionFormSet, ActionFormSet(data, prefix="actions", initial=initial, form_kwargs={"choices": choices}))


def robot_data(form: RobotForm, formset: BaseActionFormSet) -> dict:
    d = form.cleaned_data
    return {"name": d["name"].strip(), "trigger": d["trigger"], "idle_minutes": d.get("idle_minutes"),
            "conditions": form.conditions(), "actions": formset.actions()}
