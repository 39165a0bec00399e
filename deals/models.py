from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from clients.models import Channel, Client, Tag
from crm.choices import Color

ALIVE = Q(deleted_at__isnull=True)


# Names of the objects a new installation starts with, shown in the user's language until an
# admin renames them (the stored name is the English one).
DEFAULT_LABELS = {
    "Sales": _("Sales"),
    "1st line": _("1st line"),
    "2nd line": _("2nd line"),
    "Not processed": _("Not processed"),
    "In conversation": _("In conversation"),
    "Link sent": _("Link sent"),
    "Deal: registration": _("Deal: registration"),
    "Ignore": _("Ignore"),
    "Back from ignore": _("Back from ignore"),
    "Deal: first sale": _("Deal: first sale"),
    "Transfer to 2nd line": _("Transfer to 2nd line"),
}


class Labelled:
    @property
    def label(self):
        return DEFAULT_LABELS.get(self.name, self.name) if self.is_default_name else self.name

    def __str__(self):
        return str(self.label)


class Funnel(Labelled, models.Model):
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveIntegerField(default=0)
    is_default_name = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("funnel")
        verbose_name_plural = _("funnels")
        permissions = [("access_funnel", _("Can open the funnel"))]

    def get_absolute_url(self):
        return reverse("deals:board", args=[self.pk])


class Line(Labelled, models.Model):
    funnel = models.ForeignKey(Funnel, on_delete=models.CASCADE, related_name="lines")
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveIntegerField(default=0)
    is_default_name = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("line")
        verbose_name_plural = _("lines")


class Stage(Labelled, models.Model):
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=60)
    color = models.CharField(_("colour"), max_length=10, choices=Color, default=Color.BLUE)
    position = models.PositiveIntegerField(default=0)
    # A stable name for stages later features look for ("back_from_ignore"); empty for the rest.
    code = models.CharField(max_length=30, blank=True, editable=False)
    is_default_name = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("stage")
        verbose_name_plural = _("stages")


class Deal(models.Model):
    client = models.ForeignKey(Client, verbose_name=_("client"), on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="deals")
    name = models.CharField(_("name"), max_length=100)
    budget = models.DecimalField(_("budget"), max_digits=14, decimal_places=2, default=0)
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("responsible"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="deals",
    )
    channel = models.CharField(_("channel"), max_length=20, blank=True, choices=Channel)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="deals")
    sales_count = models.PositiveIntegerField(_("sales count"), default=0)
    sales_sum = models.DecimalField(_("sales sum"), max_digits=14, decimal_places=2, default=0)
    last_sale_at = models.DateTimeField(_("last sale date"), null=True, blank=True)
    registration_date = models.DateField(_("registration date"), null=True, blank=True)
    custom = models.JSONField(default=dict, blank=True)
    # Order within the stage (smaller first). New deals get -epoch seconds: newest on top.
    position = models.FloatField(default=0)
    # Bumped by every move: a move made from a stale board is refused (409), never lost.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    modified_at = models.DateTimeField(_("modified"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Deleted together with its client ("with deals"): "restore with deals" brings it back.
    deleted_with_client = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        permissions = [
            ("move_deal", _("Can move deals on the board")),
            ("restore_deal", _("Can restore deleted deals")),
        ]
        indexes = [
            models.Index(fields=["stage", "position", "id"], name="deal_board_idx", condition=ALIVE),
            models.Index(fields=["stage", "-modified_at"], name="deal_stage_changed_idx"),
            models.Index(fields=["client", "-created_at"], name="deal_client_idx"),
            # a manager's own cards, in board order: their column walks only their deals
            models.Index(fields=["responsible", "stage", "position", "id"], name="deal_resp_idx", condition=ALIVE),
            models.Index(fields=["-created_at", "-id"], name="deal_created_idx", condition=ALIVE),
            models.Index(fields=["last_sale_at"], name="deal_last_sale_idx"),
            models.Index(fields=["registration_date"], name="deal_registered_idx"),
            models.Index(fields=["channel", "stage"], name="deal_channel_idx"),
        ]
        constraints = [models.CheckConstraint(condition=~Q(name=""), name="deal_name_not_empty")]

    def __str__(self):
        return f"#{self.pk} {self.name}"

    def get_absolute_url(self):
        return reverse("deals:detail", args=[self.pk])

    @property
    def number(self):
        return self.pk

    @property
    def is_deleted(self):
        return self.deleted_at is not None


class Sale(models.Model):
    """One sale added by hand (or later by the partner postback); sums live on deal and client."""

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="sales")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="sales")
    player_id = models.CharField(_("player ID"), max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("sale")
        verbose_name_plural = _("sales")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="sale_amount_positive")]

    def __str__(self):
        return f"sale {self.amount} on deal #{self.deal_id}"


class StageLoad(models.Model):
    """What a stage holds, per responsible: live deals, their budget and sales sums, and a change
    counter. Kept exact by a statement-level trigger on deals_deal (migration 0004) that runs in the
    same statement as every insert, move, edit, delete and restore, however it is issued (a card
    move, an import's COPY, a bulk change of responsible). The board's column totals and its poll
    read these few rows (stages × responsibles) instead of aggregating the deals: their cost does not
    grow with the number of deals. PostgreSQL only; on SQLite (the embedded demo) the board
    aggregates the deals."""

    # No foreign key constraints: a stage's rows go with it by a trigger of their own, and a row
    # outlives a deleted user (with zeros: their deals were reassigned to nobody by the same delete).
    stage = models.ForeignKey(Stage, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )
    deals = models.IntegerField(default=0)
    budget = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    sales = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    # Grows by one for every deal row a statement writes in this group: the board's change token.
    changes = models.BigIntegerField(default=0)

    class Meta:
        required_db_vendor = "postgresql"
        required_db_features = ["supports_nulls_distinct_unique_constraints"]
        constraints = [
            models.UniqueConstraint(fields=["stage", "responsible"], name="stageload_unique", nulls_distinct=False),
        ]

    def __str__(self):
        return f"stage {self.stage_id}, responsible {self.responsible_id}: {self.deals}"
