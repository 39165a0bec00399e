import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    """A line or team of users; a role with *team* visibility sees its members' records."""

    name = models.CharField(_("name"), max_length=60, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name


BUILTIN_LABELS = {"Admin": _("Administrator"), "Manager": _("Manager")}


class Role(models.Model):
    """A named set of permissions (backed by a Group) plus a record visibility scope."""

    class Visibility(models.TextChoices):
        OWN = "own", _("Own records")
        TEAM = "team", _("Team records")
        ALL = "all", _("All records")

    ADMIN = "Admin"
    MANAGER = "Manager"

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="role")
    visibility = models.CharField(
        _("record visibility"), max_length=8, choices=Visibility, default=Visibility.OWN
    )
    is_builtin = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["group__name"]
        verbose_name = _("role")
        verbose_name_plural = _("roles")

    def __str__(self):
        return str(self.label)

    @property
    def name(self):
        """The stored name (the group's): what the role form edits."""
        return self.group.name

    @property
    def label(self):
        """The name to show: built-in roles in the user's language."""
        if self.is_builtin and self.group.name in BUILTIN_LABELS:
            return BUILTIN_LABELS[self.group.name]
        return self.group.name


class User(AbstractUser):
    """A person who signs in. Permissions come from the role; language is per user."""

    email = models.EmailField(_("email"), blank=True)
    language = models.CharField(
        _("interface language"), max_length=8, choices=settings.LANGUAGES, default="ru"
    )
    role = models.ForeignKey(
        Role, verbose_name=_("role"), null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    time_zone = models.CharField(_("time zone"), max_length=60, default=settings.TIME_ZONE)
    email_reminders = models.BooleanField(_("task reminders by email"), default=False)
    notification_sound = models.BooleanField(_("a sound for new notifications"), default=True)

    class Meta:
        ordering = ["first_name", "last_name", "username"]
        verbose_name = _("user")
        verbose_name_plural = _("users")
        permissions = [("manage_users", _("Can manage users and roles"))]
        constraints = [
            models.UniqueConstraint(
                Lower("email"), name="user_email_ci_unique", condition=~models.Q(email="")
            )
        ]

    def __str__(self):
        return self.get_full_name() or self.username


class TableSettings(models.Model):
    """One user's column choice and order for one table, e.g. the clients table."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="table_settings")
    table = models.CharField(max_length=40)
    columns = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "table"], name="table_settings_unique")]

    def __str__(self):
        return f"{self.table} of user {self.user_id}"


class Activity(models.Model):
    """One entry of a client's activity feed: a change, a comment, a note edit, a sale, a move."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        CHANGE = "change", _("Change")
        COMMENT = "comment", _("Comment")
        NOTE = "note", _("Note")
        SALE = "sale", _("Sale")
        DEAL = "deal", _("Deal")
        STAGE = "stage", _("Stage move")
        DELETED = "deleted", _("Deleted")
        RESTORED = "restored", _("Restored")
        TASK = "task", _("Task")
        MESSAGE = "message", _("Message")
        ASSIGNED = "assigned", _("Assignment")
        IGNORE = "ignore", _("Ignore list")
        ROBOT = "robot", _("Robot")
        STEP = "step", _("Lead step")
        CONVERSION = "conversion", _("Conversion")
        MERGE = "merge", _("Merge")

    # no index of its own: activity_feed_idx (client, id) and activity_kind_idx lead with it
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="activities", db_index=False)
    deal = models.ForeignKey("deals.Deal", null=True, blank=True, on_delete=models.SET_NULL, related_name="activities")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind)
    field = models.CharField(max_length=40, blank=True)  # a field key ("name", "cf_3", "stage")
    field_label = models.CharField(max_length=60, blank=True)  # its label when it was written
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    text = models.TextField(blank=True)  # a comment's body
    # A comment written at a lead's step is that step's note (seed 004); the step's id, no constraint.
    step_id = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)

    # Not stored: a stage move's stage names, set by crm.selectors.feed_page for the feed's template,
    # and the mentioned users a new comment did not notify (clients.services.comment_add).
    old_label: str
    new_label: str
    not_notified: list[User]

    class Meta:
        indexes = [
            models.Index(fields=["client", "-id"], name="activity_feed_idx"),
            models.Index(fields=["client", "kind", "-id"], name="activity_kind_idx"),
        ]

    def __str__(self):
        return f"{self.kind} on client {self.client_id}"


class Notification(models.Model):
    """Something a user is told about (the bell): stored as a kind and its parameters, worded
    when read."""

    class Kind(models.TextChoices):
        MENTION = "mention", _("Mention")
        ASSIGNED = "assigned", _("Made responsible")
        REMINDER = "reminder", _("Reminder")
        JOB = "job", _("Job finished")
        SHIFT = "shift", _("Shift")
        MESSAGE = "message", _("Message")
        ROBOT = "robot", _("Robot")
        PARTNER = "partner", _("Partner")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The words the notification quotes (a comment's excerpt, a task's description): never
    # translated. Rows written before `params` hold their whole sentence here, in the language of
    # the day, and are shown as they are.
    text = models.CharField(max_length=300, blank=True)
    # What the sentence is made of, rendered when it is read, in the reader's language and time
    # zone (crm.activity.notification_text): names as they were, ids, datetimes as ISO UTC.
    params = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_idx"),
            models.Index(fields=["user"], name="notification_unread_idx", condition=models.Q(read_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.kind} for user {self.user_id}"


class Job(models.Model):
    """One long piece of work the worker does for a user (issue 12): an import, a mass send, a bulk
    task, a bulk change of responsible or delete, an export, documents. The row is what the
    progress bar and the Jobs list read, and what the resume sweep looks at: a job whose
    heartbeat stopped (its worker died) is queued again and continues where it left off."""

    class Kind(models.TextChoices):
        IMPORT = "import", _("Import")
        MASS_SEND = "mass_send", _("Mass send")
        BULK_TASK = "bulk_task", _("Tasks for many clients")
        BULK_RESPONSIBLE = "bulk_responsible", _("Change of responsible")
        BULK_DELETE = "bulk_delete", _("Deleting clients")
        EXPORT = "export", _("Export")
        DOCUMENTS = "documents", _("Documents")
        DUPLICATES = "duplicates", _("Possible duplicates")

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    FINAL = (State.DONE, State.FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind)
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)  # what the handler needs; never shown raw
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)  # runs started (a resumed job counts again)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # last sign of life (or of being queued)
    error = models.CharField(max_length=500, blank=True)  # what the user is told when it failed
    result = models.FileField(upload_to="jobs/", blank=True)
    result_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_idx"),
            models.Index(fields=["heartbeat_at"], name="job_unfinished_idx", condition=models.Q(state__in=["queued", "running"])),
        ]

    def __str__(self):
        return f"{self.kind} job {self.pk}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("crm:job", args=[self.pk])

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return 0 if not self.total else min(100, int(self.done * 100 / self.total))


class Event(models.Model):
    """Something happened to a deal or a client that automations listen to (crm.events): written
    in the same transaction as the change, dispatched once it commits, swept if that was missed."""

    class Kind(models.TextChoices):
        STAGE = "stage", _("Entered a stage")
        MESSAGE_IN = "message_in", _("Inbound message")
        MESSAGE_OUT = "message_out", _("Outbound message")
        COMMENT = "comment", _("Comment")
        SALE = "sale", _("Sale")
        REGISTRATION = "registration", _("Registration")

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=12, choices=Kind)
    # No foreign key constraints: an event is a log line, written by set-based statements too.
    client = models.ForeignKey("clients.Client", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                               related_name="+")
    deal = models.ForeignKey("deals.Deal", null=True, on_delete=models.DO_NOTHING, db_constraint=False,
                             db_index=False, related_name="+")
    stage_id = models.IntegerField(null=True)  # STAGE: the stage entered
    # How many automations in a row led to it: 0 for a person's doing (crm.events.caused_by).
    depth = models.PositiveSmallIntegerField(default=0)
    at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="event_new_idx", condition=models.Q(processed_at__isnull=True)),
            models.Index(fields=["client"], name="event_new_client_idx", condition=models.Q(processed_at__isnull=True)),
            models.Index(fields=["processed_at"], name="event_done_idx", condition=models.Q(processed_at__isnull=False)),
        ]

    def __str__(self):
        return f"{self.kind} of client {self.client_id} at {self.at:%Y-%m-%d %H:%M:%S}"
