from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
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
    # Robots' working hours are this zone's clock (robots.conditions).
    time_zone = models.CharField(_("time zone"), max_length=60, default=settings.TIME_ZONE)
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
    class Distribution(models.TextChoices):
        OFF = "off", _("Off: new deals stay unassigned")
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_LOADED = "least_loaded", _("Least loaded")

    class ShiftEnd(models.TextChoices):
        KEEP = "keep", _("Deals stay with the manager")
        HAND_BACK = "hand_back", _("Unworked deals go to the next manager")

    funnel = models.ForeignKey(Funnel, on_delete=models.CASCADE, related_name="lines")
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveIntegerField(default=0)
    is_default_name = models.BooleanField(default=False, editable=False)
    # Lead distribution (issue 14, deals.distribution): who gets a deal nobody is responsible for.
    distribution = models.CharField(_("distribution"), max_length=12, choices=Distribution, default=Distribution.OFF)
    cap = models.PositiveIntegerField(
        _("open deals per manager at most"), null=True, blank=True,
        help_text=_("Deals in stages that close a deal do not count. Empty: no limit."),
    )
    shift_end = models.CharField(_("at the end of a shift"), max_length=10, choices=ShiftEnd, default=ShiftEnd.KEEP)
    # Who may receive this line's deals, besides having the funnel: members of these teams (none: anyone).
    teams = models.ManyToManyField("crm.Team", verbose_name=_("teams"), blank=True, related_name="lines")
    # Round robin's pointer: the manager served last (read and moved under the line's row lock).
    served_last = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False,
    )

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("line")
        verbose_name_plural = _("lines")


class Stage(Labelled, models.Model):
    # Read with the stage by the board's pages (deals.selectors.board_frame), not a column: its
    # counters within the reader's visibility (n, budget, sales, changes). And `robots_on`, its
    # active robots (the board's robot mark), annotated by stages_of or set by board_frame.
    load: dict

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=60)
    color = models.CharField(_("colour"), max_length=10, choices=Color, default=Color.BLUE)
    position = models.PositiveIntegerField(default=0)
    # A stable name for stages later features look for ("back_from_ignore"); empty for the rest.
    code = models.CharField(max_length=30, blank=True, editable=False)
    is_default_name = models.BooleanField(default=False, editable=False)
    # A deal here is done with (a sale, ignored, handed to the 2nd line): it is not one of the
    # manager's open deals, which the line's cap counts.
    closes = models.BooleanField(_("closes the deal"), default=False)

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
    # Distribution (issue 14): when the responsible got it, and since when it waits in its line's
    # queue (set only while nobody is responsible and nobody eligible was on shift).
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    # When the deal entered its stage (created there or moved there): robots fire once per entry.
    # Empty for deals older than robots: their creation time stands in (robots.engine).
    entered_at = models.DateTimeField(_("in the stage since"), null=True, blank=True, default=timezone.now)

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
            models.Index(fields=["queued_at", "id"], name="deal_queue_idx", condition=Q(queued_at__isnull=False)),
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
    # The partner's currency for a sale from a postback (ISO 4217); empty for one added by hand.
    # Sums add amounts as they come: a team buying from partners in one currency sees it beside each.
    currency = models.CharField(_("currency"), max_length=3, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A sale the partner later rejected (a chargeback): it no longer counts in the sums.
    reversed_at = models.DateTimeField(_("reversed"), null=True, blank=True)

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


class Shift(models.Model):
    """One working shift of a user (seed 000: «Начать смену»): deals are distributed only to
    managers on shift and not paused. Kept after it ends: the shift log and the reports read it."""

    class Ended(models.TextChoices):
        USER = "user", _("Ended by the manager")
        IDLE = "idle", _("Closed after the idle limit")
        ADMIN = "admin", _("Ended by an administrator")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="shifts")
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    ended_how = models.CharField(max_length=8, choices=Ended, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set while the shift is paused (a break): a paused manager receives no deals.
    paused_at = models.DateTimeField(_("paused"), null=True, blank=True)
    paused_seconds = models.PositiveIntegerField(default=0)  # the breaks that ended, in total
    # The last sign of life (a page opened, a shift button pressed): the idle limit counts from it.
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        indexes = [models.Index(fields=["user", "-started_at"], name="shift_user_idx")]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(ended_at__isnull=True), name="shift_one_open_per_user"),
        ]

    def __str__(self):
        return f"shift of user {self.user_id} from {self.started_at:%Y-%m-%d %H:%M}"

    def worked_seconds(self, now=None) -> int:
        """Time on shift without the breaks, up to now for an open one."""
        from django.utils import timezone

        end = self.ended_at or self.paused_at or now or timezone.now()
        return max(0, int((end - self.started_at).total_seconds()) - self.paused_seconds)


class ShiftPause(models.Model):
    """One break within a shift (the shift log shows them)."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="pauses")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "pk"]

    def __str__(self):
        return f"pause of shift {self.shift_id}"
