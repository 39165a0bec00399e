"""An import of a client list: the uploaded file, how its columns map to fields, how far the
worker got, and what happened to each row (for the report and for undo)."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ImportJob(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        UNDONE = "undone", _("Undone")
        REFUSED = "refused", _("Refused")

    class Duplicates(models.TextChoices):
        SKIP = "skip", _("Skip the row")
        UPDATE = "update", _("Update the client")
        CREATE = "create", _("Create a new client")

    class Format(models.TextChoices):
        XLSX = "xlsx", "Excel (.xlsx)"
        CSV = "csv", "CSV"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to="imports/", blank=True)  # emptied when the file is deleted
    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=4, choices=Format, default=Format.XLSX)
    sheet = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=list, blank=True)  # the header row's texts, for the report
    mapping = models.JSONField(default=dict, blank=True)  # {"column index": "field key"}
    duplicates = models.CharField(max_length=10, choices=Duplicates, default=Duplicates.SKIP)
    require_all = models.BooleanField(default=False)  # seed 002's "no empty cells", as a choice
    deal_line = models.ForeignKey("deals.Line", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status, default=Status.UPLOADED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)  # data rows done and committed: where a resume starts
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # runs started (a resume after a crash is one more)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # touched by the runner at every chunk
    # The run in the worker is a crm.Job (issue 12): the Jobs list, the claim, the sweep.
    run_job = models.OneToOneField("crm.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="import_job")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="import_job_status_idx")]

    def __str__(self):
        return self.filename

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, int(self.processed * 100 / self.total))

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class ImportRecord(models.Model):
    """What happened to one row; what an updated client had before (for undo)."""

    class Outcome(models.TextChoices):
        CREATED = "created", pgettext_lazy("an import row's outcome", "Created")
        UPDATED = "updated", pgettext_lazy("an import row's outcome", "Updated")
        SKIPPED = "skipped", pgettext_lazy("an import row's outcome", "Skipped")
        FAILED = "failed", pgettext_lazy("an import row's outcome", "Failed")

    # no index of its own: the unique (job, row) constraint's index leads with it
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="records", db_index=False)
    row = models.PositiveIntegerField()  # the spreadsheet's row number (the header is row 1)
    outcome = models.CharField(max_length=10, choices=Outcome)
    column = models.CharField(max_length=100, blank=True)  # the header of the column at fault, if one
    reason = models.CharField(max_length=500, blank=True)
    client = models.ForeignKey("clients.Client", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deal = models.ForeignKey("deals.Deal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    previous = models.JSONField(default=dict, blank=True)
    values = models.JSONField(default=list, blank=True)  # a failed row's cells, for the report (the file goes)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "row"], name="import_row_once")]

    def __str__(self):
        return f"row {self.row} of import {self.job_id}"


class ImportMappingMemory(models.Model):
    """The mapping a user chose for a set of column headers, offered again next time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    headers_key = models.CharField(max_length=64)
    mapping = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "headers_key"], name="import_mapping_once")]

    def __str__(self):
        return f"mapping of user {self.user_id}"
