from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.choices import Color
from crm.countries import COUNTRIES

from .names import name_key

NAME_MAX = 30  # seed 002: "ФИО" is limited to 30 characters
TEXT_FIELD_MAX = 30  # seed 002: custom fields of type "Text" are limited to 30 characters
ALIVE = Q(deleted_at__isnull=True)


class Channel(models.TextChoices):
    PHONE = "phone", _("Phone")
    WEBSITE = "website", _("Website")
    EMAIL = "email", _("Email")
    TELEGRAM = "telegram", _("Telegram")
    WHATSAPP = "whatsapp", _("WhatsApp")
    INSTAGRAM = "instagram", _("Instagram")
    VK = "vk", _("VK")
    REFERRAL = "referral", _("Referral")
    ADVERTISING = "ads", _("Advertising")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class Lifecycle(models.TextChoices):
    POTENTIAL = "potential", pgettext_lazy("one client's status", "Potential")
    CONVERTED = "converted", pgettext_lazy("one client's status", "Converted")


class Tag(models.Model):
    Color = Color

    name = models.CharField(_("name"), max_length=30, unique=True)
    color = models.CharField(_("colour"), max_length=10, choices=Color, default=Color.BLUE)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self):
        return self.name


class CustomField(models.Model):
    """An admin-defined client field; values live in Client.custom under its key ("cf_<pk>").

    The key is never all digits: on PostgreSQL a numeric JSON key would be read as an array index.
    """

    class Entity(models.TextChoices):
        CLIENT = "client", _("Client")
        DEAL = "deal", _("Deal")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        SELECT = "select", _("Selector")

    label = models.CharField(_("name"), max_length=40)
    entity = models.CharField(_("belongs to"), max_length=10, choices=Entity, default=Entity.CLIENT)
    kind = models.CharField(_("type"), max_length=10, choices=Kind, default=Kind.TEXT)
    choices = models.JSONField(_("values"), default=list, blank=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")

    def __str__(self):
        return self.label

    @property
    def key(self):
        return self.key_of(self.pk)

    @staticmethod
    def key_of(pk: int) -> str:
        """The key of the custom field `pk` in layouts, forms and hidden-field sets."""
        return f"cf_{pk}"

    @property
    def column_key(self):
        return self.key


class LeadStep(models.Model):
    """One step of a potential client's way to conversion (seed 004's progress bar), in order. The
    defaults keep a `system_key` and are shown in the reader's language until an admin renames them."""

    DEFAULTS = {
        "new": _("New lead"),
        "contract": _("Contract signed"),
        "work": _("Work in progress"),
        "conversion": _("Conversion"),
    }

    name = models.CharField(_("name"), max_length=40, blank=True)
    system_key = models.CharField(max_length=20, blank=True, editable=False)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("lead step")
        verbose_name_plural = _("lead steps")

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return str(self.DEFAULTS.get(self.system_key, self.system_key))


class ClientQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)

    def newest_first(self):
        return self.order_by("-modified_at", "-pk")


class Client(models.Model):
    name = models.CharField(_("full name"), max_length=NAME_MAX)
    # The name's words sorted (clients.names.name_key): kept by save() and the import's writer.
    name_key = models.CharField(max_length=NAME_MAX, blank=True, default="", editable=False)
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("responsible"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clients",
        db_index=False,  # client_resp_recent_idx and client_*_by_idx lead with these columns: a second index only slows writes
    )
    phone = models.CharField(_("phone"), max_length=32, blank=True)  # E.164, perhaps with ";ext=…" (clients/phones.py)
    extra_phones = models.JSONField(_("other phones"), default=list, blank=True)
    # Every phone's digits, space separated: what "search by any 3+ digits" looks in.
    phone_digits = models.CharField(max_length=200, blank=True, editable=False)
    email = models.EmailField(_("email"), blank=True)
    extra_emails = models.JSONField(_("other e-mails"), default=list, blank=True)  # kept by a merge (DESIGN §2)
    country = models.CharField(_("country"), max_length=2, blank=True, choices=COUNTRIES)
    city = models.CharField(_("city"), max_length=60, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    company = models.CharField(_("company"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True, choices=Channel)
    source = models.CharField(_("source"), max_length=100, blank=True)  # free text: "Avito", "Cold call"
    priority = models.CharField(_("priority"), max_length=10, choices=Priority, default=Priority.NORMAL)
    lifecycle = models.CharField(_("status"), max_length=10, choices=Lifecycle, default=Lifecycle.POTENTIAL)
    external_id = models.CharField(_("player ID"), max_length=64, blank=True)
    registration_date = models.DateField(_("registration date"), null=True, blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="clients")
    custom = models.JSONField(default=dict, blank=True)
    # Kept in step with the client's sales by deals.services.sale_add, in the same transaction.
    sales_count = models.PositiveIntegerField(_("sales count"), default=0)
    sales_sum = models.DecimalField(_("sales sum"), max_digits=14, decimal_places=2, default=0)
    last_sale_at = models.DateTimeField(_("last sale date"), null=True, blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    modified_at = models.DateTimeField(_("modified"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("modified by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,  # NULL on every live row and never filtered on: an index only slows writes
    )
    # Seed 004: the lead's step and when its last note or action was written («Последнее действие»).
    step = models.ForeignKey(LeadStep, verbose_name=_("step"), null=True, blank=True, on_delete=models.PROTECT,
                             related_name="clients")
    last_action_at = models.DateTimeField(_("last action"), null=True, blank=True)
    # Soft-deleted by a merge into another client: the merge that did it (undoable, clients.Merge).
    merged_in = models.ForeignKey("clients.Merge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)

    objects = ClientQuerySet.as_manager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        permissions = [
            ("restore_client", _("Can restore deleted clients")),
            ("change_responsible", _("Can change the responsible")),
            ("import_clients", _("Can import clients")),
            ("export_clients", _("Can export clients")),
            ("merge_clients", _("Can merge clients")),
        ]
        # An index behind every sort and filter the table offers (trigram ones are PostgreSQL-only,
        # in migration 0002). Partial on live rows: the table never lists deleted ones by default.
        indexes = [
            models.Index(fields=["-modified_at", "-id"], name="client_recent_idx", condition=ALIVE),
            models.Index(fields=["-modified_at", "-id"], name="client_deleted_idx", condition=~ALIVE),
            # The table's own order to the end (modified_at, id): after an import or a bulk change,
            # hundreds of a manager's clients share one modified_at, and an index ending at it had
            # PostgreSQL read and sort them all for a page of 50 (655 rows, 1.4 ms at 1,000,000).
            models.Index(fields=["responsible", "-modified_at", "-id"], name="client_resp_recent_idx", condition=ALIVE),
            models.Index(fields=["lifecycle", "-modified_at", "-id"], name="client_lifecycle_recent_idx", condition=ALIVE),
            models.Index(fields=["created_by", "-modified_at"], name="client_created_by_idx"),
            models.Index(fields=["modified_by", "-modified_at"], name="client_modified_by_idx"),
            models.Index(fields=["country", "-modified_at"], name="client_country_idx"),
            models.Index(fields=["channel", "-modified_at"], name="client_channel_idx"),
            models.Index(fields=["priority", "-modified_at"], name="client_priority_idx"),
            # The import's duplicate lookup: E.164 phone, and e-mail compared case-insensitively.
            models.Index(fields=["phone"], name="client_phone_idx", condition=ALIVE & ~Q(phone="")),
            models.Index(Lower("email"), name="client_email_lower_idx", condition=ALIVE & ~Q(email="")),
            models.Index(Upper("external_id"), name="client_external_upper_idx"),
            models.Index(fields=["registration_date"], name="client_registered_idx"),
            # The import's namesakes lookup (clients.duplicates SAME_NAMES).
            models.Index(fields=["name_key"], name="client_name_key_idx", condition=ALIVE & ~Q(name_key="")),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="client_name_not_empty"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.name_key = name_key(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields and "name_key" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "name_key"]
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("clients:detail", args=[self.pk])

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    @property
    def all_phones(self):
        return [p for p in [self.phone, *self.extra_phones] if p]

    @property
    def phones_display(self):
        """(E.164, human form) for each phone, for tel: links."""
        from .phones import format_phone

        return [(p, format_phone(p)) for p in self.all_phones]

    @property
    def extra_phones_display(self):
        """(E.164, human form) for each of the other phones."""
        from .phones import format_phone

        return [(p, format_phone(p)) for p in self.extra_phones if p]


class DuplicateSuggestion(models.Model):
    """Two clients that look like one person (same phone or e-mail, or a similar name with the same
    city or company), suggested for a merge and never merged automatically. `client` is the newer
    one. "Not a duplicate" dismisses the pair for good."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("Same phone")
        EMAIL = "email", _("Same e-mail")
        NAME = "name", _("Similar name")

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind, blank=True)
    reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "other"], name="duplicate_pair_once")]

    def __str__(self):
        return f"{self.client_id} ~ {self.other_id}"


class SavedFilter(models.Model):
    """A named set of table filters a user saved (the query string of the clients table)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters")
    name = models.CharField(_("name"), max_length=60)
    query = models.CharField(max_length=2000)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_filter_unique")]

    def __str__(self):
        return self.name


class ClientNote(models.Model):
    """The one pinned note of a client (seed 003), separate from comments."""

    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="note")
    text = models.TextField(_("note"), max_length=2000, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self):
        return f"note of client {self.client_id}"


# The system fields the card layout can show (seed 001: "system field, e.g. channel").
CARD_SYSTEM_FIELDS = {
    "contact": [
        "phone", "extra_phones", "email", "extra_emails", "responsible", "company", "country", "city", "address", "channel",
        "source", "priority", "lifecycle", "external_id", "registration_date", "last_sale_at",
    ],
    "deal": ["funnel", "line", "stage", "channel", "budget", "deal_responsible"],
}


class CardField(models.Model):
    """One field of a card block's layout (seed 001, "Display settings"): a system field or a
    custom field, in the admin's order, with what the Manager mode may see and edit."""

    class Block(models.TextChoices):
        CONTACT = "contact", _("Contact information")
        DEAL = "deal", _("Deal information")

    block = models.CharField(max_length=10, choices=Block)
    system_key = models.CharField(max_length=30, blank=True)
    custom_field = models.ForeignKey(CustomField, null=True, blank=True, on_delete=models.CASCADE, related_name="card_fields")
    label = models.CharField(_("name"), max_length=40, blank=True)  # a rename; empty: the field's own name
    position = models.PositiveIntegerField(default=0)
    hidden = models.BooleanField(_("hidden"), default=False)  # the eye: not shown on the card
    manager_visible = models.BooleanField(_("visible in Manager mode"), default=True)
    manager_editable = models.BooleanField(_("editable in Manager mode"), default=True)

    # Not stored: set on the rows a card shows (clients.layout.visible_rows, clients.card_views) for its template.
    title: str
    editable: bool
    locked: bool
    value: object

    class Meta:
        ordering = ["block", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["block", "system_key"], condition=~Q(system_key=""), name="card_system_once"),
            models.UniqueConstraint(fields=["block", "custom_field"], name="card_custom_once"),
        ]

    def __str__(self):
        return f"{self.block}: {self.key}"

    @property
    def key(self) -> str:
        return self.custom_field.key if self.custom_field is not None else self.system_key


class DocumentTemplate(models.Model):
    """A .docx an admin uploads; the "Documents" mass action fills it for each chosen client."""

    name = models.CharField(_("name"), max_length=100)
    file = models.FileField(upload_to="templates/")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("document template")
        verbose_name_plural = _("document templates")

    def __str__(self):
        return self.name


class LeadConversion(models.Model):
    """A potential client made a customer (seed 004, «Конвертация»): converted with the form, or
    linked to an existing customer instead of a second record. `before` keeps what the form changed,
    so an admin can undo it."""

    class Kind(models.TextChoices):
        CONVERTED = "converted", _("Converted")
        LINKED = "linked", _("Linked to an existing customer")

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="conversions")
    kind = models.CharField(max_length=10, choices=Kind)
    customer = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_step = models.ForeignKey(LeadStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    step_label = models.CharField(max_length=40, blank=True)  # the step's name when it happened
    before = models.JSONField(default=dict, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.kind} #{self.client_id}"


class Merge(models.Model):
    """Two clients merged into one (`kept`): the other (`merged`) is soft-deleted and points here.
    `journal` records the kept client's values before, and every related row that moved, so an admin
    can undo it (clients.merge.undo)."""

    kept = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    merged = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    journal = models.JSONField(default=dict)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["kept", "-at"], name="merge_kept_idx"),
                   models.Index(fields=["merged", "-at"], name="merge_merged_idx")]

    def __str__(self):
        return f"#{self.merged_id} → #{self.kept_id}"
