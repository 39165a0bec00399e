import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MassSend(models.Model):
    """A mass email or SMS to chosen clients (seed 002, seed 004: subject, message, action type).
    The worker sends it as a crm.Job (issue 12): its state, progress and heartbeat are the job's."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=10, choices=Channel)
    subject = models.CharField(_("subject"), max_length=150, blank=True)
    body = models.TextField(_("message"), max_length=5000)
    action_type = models.CharField(_("action type"), max_length=60, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    total = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)  # chosen clients without an address
    job = models.OneToOneField("crm.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="mass_send")

    class Meta:
        permissions = [("send_messages", _("Can send SMS and email to clients"))]

    def __str__(self):
        return f"{self.channel} send #{self.pk}"


class Delivery(models.Model):
    """One recipient of a mass send. The row is the send's memory: a message is sent only by the
    worker that moved it from pending to sending, and it is marked sent (or failed, or pending
    again with the time of its next attempt) right after."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    FINISHED = (Status.SENT, Status.FAILED)

    mass_send = models.ForeignKey(MassSend, on_delete=models.CASCADE, related_name="deliveries")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="deliveries")
    address = models.CharField(max_length=254)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_id = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=300, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # a retry after a backoff; empty: due now
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mass_send", "client"], name="delivery_once_per_client")]
        indexes = [models.Index(fields=["mass_send", "status", "id"], name="delivery_queue_idx")]

    def __str__(self):
        return f"delivery #{self.pk} of send {self.mass_send_id}"

    @property
    def key(self) -> str:
        return f"{self.mass_send_id}-{self.client_id}"
