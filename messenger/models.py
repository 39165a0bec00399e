import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
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


# The messenger (issue 15, DESIGN §7) ---------------------------------------------------------


def new_token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


class Channel(models.Model):
    """Where messages come from and go to: a Telegram bot, a mailbox, an SMS number, a signed
    webhook bridge (WhatsApp, VK, a site chat), or the console in development. Its backend
    (messenger.channels) is chosen by kind. New senders become deals in `line`."""

    class Kind(models.TextChoices):
        TELEGRAM = "telegram", _("Telegram bot")
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        WEBHOOK = "webhook", _("Webhook bridge")
        CONSOLE = "console", _("Console (development)")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind)
    name = models.CharField(_("name"), max_length=60)
    is_active = models.BooleanField(_("active"), default=True)
    # Not secret: the Bot API base URL, the IMAP host and mailbox, the outbound URL.
    settings = models.JSONField(default=dict, blank=True)
    # Secret (bot token, passwords, signing secrets): Fernet-encrypted with a key derived from
    # CHANNEL_SECRET_KEY (or SECRET_KEY); read through messenger.secrets.
    secrets = models.TextField(blank=True, default="", editable=False)
    # The inbound URL's unguessable part (/hooks/<kind>/<token>/): which channel a request is for.
    token = models.CharField(max_length=40, unique=True, editable=False, default=new_token)
    line = models.ForeignKey("deals.Line", verbose_name=_("new senders' deals go to"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="channels")
    # Who may reply through it, besides holding the permission: members of these teams (none: everyone).
    teams = models.ManyToManyField("crm.Team", verbose_name=_("teams that may reply"), blank=True, related_name="channels")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        permissions = [
            ("reply", _("Can chat with clients in the messenger")),
            ("configure_channels", _("Can configure channels")),
            ("manage_ignore", _("Can put clients on the ignore list")),
        ]

    def __str__(self):
        return self.name


class Conversation(models.Model):
    """One client on one channel: the chat the inbox shows."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")
        IGNORED = "ignored", _("Ignored")

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="conversations")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="conversations")
    # The channel's address of the other side: a Telegram chat id, an e-mail address, an E.164
    # phone, a bridge's sender id.
    external_chat_id = models.CharField(max_length=200)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="conversations", db_index=False)  # conversation_assignee_idx leads with it
    status = models.CharField(max_length=8, choices=Status, default=Status.OPEN)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_id = models.BigIntegerField(default=0)  # the newest message
    version = models.PositiveIntegerField(default=0)  # bumped by every change the chat shows: its poll's token
    last_text = models.CharField(max_length=160, blank=True)  # the list's preview
    last_direction = models.CharField(max_length=3, blank=True)
    # Inbound messages nobody has read yet (shown bold, and as the board card's badge); per user in Unread.
    unread = models.PositiveIntegerField(default=0)
    subject = models.CharField(max_length=200, blank=True)  # e-mail: the thread's subject
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "external_chat_id"], name="conversation_per_chat")]
        indexes = [
            models.Index(fields=["-last_message_at", "-id"], name="conversation_recent_idx"),
            # The inbox's first part: unread conversations, newest first.
            models.Index(fields=["-last_message_at", "-id"], name="conversation_unread_idx", condition=models.Q(unread__gt=0)),
            models.Index(fields=["assignee", "-last_message_at", "-id"], name="conversation_assignee_idx"),
        ]

    def __str__(self):
        return f"{self.client_id} on {self.channel_id}"


class Unread(models.Model):
    """How many messages of a conversation one user has not read (the assignee's count; gone when read)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="unread_by")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="unread_once")]

    def __str__(self):
        return f"{self.count} unread"


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("Incoming")
        OUT = "out", _("Outgoing")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages",
                                     db_index=False)  # message_chat_idx leads with it
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+",
                                db_index=False)  # message_inbound_once and message_outbound_ext_idx lead with it
    direction = models.CharField(max_length=3, choices=Direction)
    text = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    external_id = models.CharField(max_length=200, blank=True)  # the channel's id of the message
    # Outbound: the idempotency key the channel receives, so a resend after a crash is one message.
    key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    status = models.CharField(max_length=10, choices=Status)
    error = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    thread_ref = models.CharField(max_length=300, blank=True)  # e-mail: the Message-ID it answers
    while_ignored = models.BooleanField(default=False)  # arrived while the sender was on the ignore list
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], condition=models.Q(direction="in") & ~models.Q(external_id=""),
                                    name="message_inbound_once"),
        ]
        indexes = [
            models.Index(fields=["conversation", "-id"], name="message_chat_idx"),
            # A channel's delivery receipt names our message by the id the channel gave it.
            models.Index(fields=["channel", "external_id"], name="message_outbound_ext_idx",
                         condition=models.Q(direction="out") & ~models.Q(external_id="")),
            models.Index(fields=["status", "next_attempt_at"], name="message_outbox_idx",
                         condition=models.Q(status__in=["queued", "sending"])),
        ]

    def __str__(self):
        return f"message #{self.pk}"


def attachment_path(instance, filename):
    return f"messenger/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """A file sent or received, stored under MEDIA_ROOT (never served by the web server) and given
    out through the gate as a download; its type is what its bytes say, not what its name says."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=200)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    def __str__(self):
        return self.name

    @property
    def is_image(self) -> bool:
        return self.content_type in ("image/png", "image/jpeg", "image/gif", "image/webp")


class Inbound(models.Model):
    """One delivery to an inbound endpoint (or one mail taken from IMAP), stored with its raw
    payload and acknowledged in one short transaction; the worker turns it into messages. The
    sender's id (update_id, webhook-id, the mail's UID) is unique per channel: a replay or a
    concurrent duplicate is the same row."""

    class State(models.TextChoices):
        NEW = "new", _("Waiting")
        DONE = "done", _("Processed")
        FAILED = "failed", _("Failed")

    id = models.BigAutoField(primary_key=True)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="inbound")
    dedupe_key = models.CharField(max_length=200)
    payload = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=6, choices=State, default=State.NEW)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "dedupe_key"], name="inbound_once")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="inbound_pending_idx",
                                condition=~models.Q(state="done"))]

    def __str__(self):
        return f"inbound #{self.pk}"


class IgnoreRule(models.Model):
    """The ignore list (seed 000, menu «Игнор»): a client, or every sender matching an id, a phone or
    an e-mail pattern. While a rule is active the sender's messages are kept but notify no one."""

    class Kind(models.TextChoices):
        CLIENT = "client", _("Client")
        SENDER = "sender", _("Sender id")
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("E-mail pattern")

    kind = models.CharField(_("what"), max_length=6, choices=Kind)
    client = models.ForeignKey("clients.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="ignore_rules")
    pattern = models.CharField(_("pattern"), max_length=200, blank=True)  # "*@spam.example", "+7999…", a chat id
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # Writing again brings the client back at once (the deal moves to «Вернулся из игнора»).
    back_on_message = models.BooleanField(_("back on a new message"), default=False)
    until = models.DateTimeField(_("ignore until"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["client"], name="ignore_client_idx", condition=models.Q(ended_at__isnull=True))]

    def __str__(self):
        return self.pattern or str(self.client_id)


class QuickReply(models.Model):
    """A saved answer, typed with "/" in the chat; {name}, {manager} and {phone} are filled in."""

    title = models.CharField(_("shortcut"), max_length=40, unique=True)
    text = models.TextField(_("text"), max_length=2000)

    class Meta:
        ordering = ["title"]
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")

    def __str__(self):
        return self.title
