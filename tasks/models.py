from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

DESCRIPTION_MAX = 200  # seed 002

DEFAULT_TYPE_LABELS = {
    "Contact the client": _("Contact the client"),
    "Birthday greeting": _("Birthday greeting"),
    "Meeting": _("Meeting"),
}


class TaskType(models.Model):
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveIntegerField(default=0)
    is_default_name = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("task type")
        verbose_name_plural = _("task types")

    def __str__(self):
        return str(DEFAULT_TYPE_LABELS.get(self.name, self.name) if self.is_default_name else self.name)


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("task status", "Open")
        DONE = "done", pgettext_lazy("task status", "Done")

    client = models.ForeignKey("clients.Client", verbose_name=_("client"), on_delete=models.CASCADE, related_name="tasks")
    deal = models.ForeignKey("deals.Deal", verbose_name=_("deal"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    type = models.ForeignKey(TaskType, verbose_name=_("task type"), on_delete=models.PROTECT, related_name="tasks")
    description = models.CharField(_("description"), max_length=DESCRIPTION_MAX)
    # An action at a lead's step (seed 004: a comment with an action type and a planned date).
    step = models.ForeignKey("clients.LeadStep", verbose_name=_("step"), null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("responsible"), null=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    deadline = models.DateTimeField(_("deadline"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.OPEN)
    result = models.TextField(_("result"), max_length=2000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The bulk "Add task" job's id (crm.Job): one task per client per job, whatever the retries.
    batch = models.UUIDField(null=True, blank=True, editable=False)
    # When each reminder went out: set in the same transaction as its notification (sent once).
    reminded_before_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminded_overdue_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["deadline", "pk"]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        permissions = [("add_task_bulk", _("Can add tasks in bulk"))]
        indexes = [
            models.Index(fields=["responsible", "status", "deadline"], name="task_mine_idx"),
            models.Index(fields=["client", "status", "deadline"], name="task_client_idx"),
            models.Index(fields=["deadline"], name="task_open_deadline_idx", condition=Q(status="open")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["batch", "client"], name="task_once_per_batch"),
            models.CheckConstraint(condition=~Q(description=""), name="task_description_not_empty"),
        ]

    def __str__(self):
        return self.description

    def get_absolute_url(self):
        return reverse("tasks:list") + f"?task={self.pk}"

