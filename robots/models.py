"""Robots (DESIGN §8, seed 000 «Роботы»): automatic actions per stage, and their runs.

A robot belongs to a stage: a trigger, optional conditions, one or more actions, on / off and an
order. What a robot does to one deal's stay in its stage is one `Run`, unique per (robot, deal,
entry): the robot fires at most once per entry however many times the event is handed over.

Conditions (`Robot.conditions`, every key optional):
    {"channels": ["telegram", ...], "tags": [tag id, ...], "responsibles": [user id, ... | 0 for nobody],
     "budget_min": "1000", "budget_max": "5000", "field": "cf_3", "field_value": "gold",
     "hours_from": "09:00", "hours_to": "18:00", "days": [0, ..., 6]  (Monday is 0)}
Actions (`Robot.actions`, in order), each {"kind": ..., and its parameters}:
    move         {"stage": id}                          a stage of the same line
    transfer     {"line": id}                           the line's first stage; its distribution gives it out
    message      {"text": "Hello, {name}!"}             through the client's newest conversation
    task         {"task_type": id, "text": ..., "deadline_minutes": 60, "user": id | 0 (the responsible)}
    responsible  {"user": id}                           only if the user may receive the line's deals
    tag_add      {"tag": id}
    tag_remove   {"tag": id}
    notify       {"text": ..., "users": [id, ...], "responsible": true}
    webhook      reserved for the integrations issue: not offered yet
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from deals.models import Deal, Stage


class Robot(models.Model):
    class Trigger(models.TextChoices):
        ENTERED = "entered", _("The deal enters the stage")
        IDLE = "idle", _("Minutes in the stage without activity")
        MESSAGE_IN = "message_in", _("An inbound message")
        SALE = "sale", _("A sale")
        REGISTRATION = "registration", _("A registration")

    class Action(models.TextChoices):
        MOVE = "move", _("Move to a stage")
        TRANSFER = "transfer", _("Transfer to another line")
        MESSAGE = "message", _("Send a message")
        TASK = "task", _("Create a task")
        RESPONSIBLE = "responsible", _("Change the responsible")
        TAG_ADD = "tag_add", _("Add a tag")
        TAG_REMOVE = "tag_remove", _("Remove a tag")
        NOTIFY = "notify", _("Notify users")

    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.CASCADE, related_name="robots")
    name = models.CharField(_("name"), max_length=80)
    trigger = models.CharField(_("when"), max_length=12, choices=Trigger, default=Trigger.ENTERED)
    idle_minutes = models.PositiveIntegerField(_("minutes without activity"), null=True, blank=True)
    conditions = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list)
    is_active = models.BooleanField(_("on"), default=True)
    position = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("robot")
        verbose_name_plural = _("robots")
        permissions = [("configure_robots", _("Can configure robots"))]
        indexes = [models.Index(fields=["stage", "trigger"], name="robot_stage_idx", condition=Q(is_active=True))]
        constraints = [
            models.CheckConstraint(condition=~Q(trigger="idle") | Q(idle_minutes__gte=1), name="robot_idle_minutes"),
        ]

    def __str__(self):
        return self.name


class Run(models.Model):
    """One firing of a robot for one entry of a deal into the robot's stage."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")  # a timed robot, or outside its working hours: due at due_at
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Fired")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        SUSPENDED = "suspended", _("Suspended")
        LOOP = "loop", _("Stopped: loop")

    FINAL = (State.DONE, State.SKIPPED, State.FAILED, State.CANCELLED, State.SUSPENDED, State.LOOP)

    id = models.BigAutoField(primary_key=True)
    robot = models.ForeignKey(Robot, on_delete=models.CASCADE, related_name="runs")
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="robot_runs", db_index=False)
    entry = models.DateTimeField()  # when the deal entered the stage: the run's identity with robot and deal
    state = models.CharField(max_length=10, choices=State)
    depth = models.PositiveSmallIntegerField(default=0)  # robots in a row that led here (crm.events)
    due_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    step = models.PositiveSmallIntegerField(default=0)  # actions done: a resumed run goes on from here
    attempts = models.PositiveSmallIntegerField(default=0)
    # Why it was skipped, failed or stopped, and what each action did: codes and values, worded
    # when read (robots.texts) so each reader gets their language.
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["due_at"], name="run_due_idx", condition=Q(state="waiting")),
            models.Index(fields=["id"], name="run_queued_idx", condition=Q(state="queued")),
            models.Index(fields=["claimed_at"], name="run_running_idx", condition=Q(state="running")),
            models.Index(fields=["deal", "state"], name="run_deal_idx"),
            models.Index(fields=["robot", "-id"], name="run_log_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["robot", "deal", "entry"], name="run_once_per_entry")]

    def __str__(self):
        return f"run {self.pk} of robot {self.robot_id} on deal {self.deal_id}: {self.state}"


class Suspension(models.Model):
    """A robot that fired too often for one deal stays off for it until an admin resumes it."""

    robot = models.ForeignKey(Robot, on_delete=models.CASCADE, related_name="suspensions")
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["robot", "deal"], name="suspension_once")]

    def __str__(self):
        return f"robot {self.robot_id} suspended for deal {self.deal_id}"
