"""Shifts (seed 000: «Начать смену… Каждый менеджер должен запускать смену, чтобы у него появились
сделки»): start, pause, resume and end, each its own transaction; the idle sweep. Starting or
resuming hands out the queue at once (deals.distribution.drain_all); ending hands back, in the lines
that say so, the deals not yet worked."""

from datetime import UTC, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from crm import permissions as gate
from crm.models import Notification

from . import distribution
from .models import Shift, ShiftPause, Stage


def open_shift(user) -> Shift | None:
    return Shift.objects.filter(user=user, ended_at__isnull=True).first()


SEEN_SQL = """
UPDATE deals_shift SET seen_at = %s WHERE user_id = %s AND ended_at IS NULL
RETURNING id, started_at, paused_at, paused_seconds
"""


def current(user) -> Shift | None:
    """The user's open shift, if any, read in the statement that stamps their sign of life (the
    shift widget is loaded with every page: the idle limit counts from the last one)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(SEEN_SQL, [now, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    started, paused = (_aware(v) for v in row[1:3])
    return Shift(pk=row[0], user=user, started_at=started, paused_at=paused, paused_seconds=row[3], seen_at=now)


def _aware(value):
    """A datetime read by hand: SQLite returns its text (UTC, naive), PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def may_work_shifts(user) -> bool:
    """Shifts are for those who work deals."""
    return gate.can(user, gate.VIEW_DEALS)


def start(*, user) -> Shift:
    if not may_work_shifts(user):
        raise PermissionDenied
    now = timezone.now()
    try:
        with transaction.atomic():
            shift = Shift.objects.create(user=user, started_at=now, seen_at=now)
    except IntegrityError:  # one open shift per user (a double click, two tabs): it is the one
        running = open_shift(user)
        if running is None:
            raise
        return running
    distribution.drain_all()
    return shift


def pause(*, user) -> Shift:
    with transaction.atomic():
        shift = _locked_open(user)
        if shift.paused_at is None:
            now = timezone.now()
            shift.paused_at = now
            shift.seen_at = now
            shift.save(update_fields=["paused_at", "seen_at"])
            ShiftPause.objects.create(shift=shift, started_at=now)
    return shift


def resume(*, user) -> Shift:
    with transaction.atomic():
        shift = _locked_open(user)
        if shift.paused_at is not None:
            now = timezone.now()
            _end_pause(shift, now)
            shift.seen_at = now
            shift.save(update_fields=["paused_at", "paused_seconds", "seen_at"])
    distribution.drain_all()
    return shift


def _end_pause(shift: Shift, now) -> None:
    shift.paused_seconds += int((now - shift.paused_at).total_seconds())
    shift.paused_at = None
    ShiftPause.objects.filter(shift=shift, ended_at__isnull=True).update(ended_at=now)


def _locked_open(user) -> Shift:
    shift = Shift.objects.select_for_update().filter(user=user, ended_at__isnull=True).first()
    if shift is None:
        raise ValidationError(_("You are not on shift."))
    return shift


def end(*, user, actor=None, how: str = Shift.Ended.USER, at=None) -> tuple[Shift, int]:
    """Close the user's open shift (by themselves, by an administrator, or by the idle sweep), then
    hand back what the lines say. Returns the shift and how many deals were handed back."""
    with transaction.atomic():
        shift = _locked_open(user)
        now = at or timezone.now()
        if shift.paused_at is not None:
            _end_pause(shift, now)
        shift.ended_at = now
        shift.ended_how = how
        shift.ended_by = actor if actor is not None and actor.pk != user.pk else None
        shift.save(update_fields=["ended_at", "ended_how", "ended_by", "paused_at", "paused_seconds"])
    handed = distribution.hand_back(user, actor=actor)
    return shift, handed


def end_for(*, actor, user) -> tuple[Shift, int]:
    """An administrator ends someone's shift (they went home and forgot): who may see the user's
    shifts and manages users."""
    gate.require(actor, gate.MANAGE_USERS)
    if not gate.visible_users(actor).filter(pk=user.pk).exists():
        raise PermissionDenied
    return end(user=user, actor=actor, how=Shift.Ended.ADMIN)


def close_idle(now=None) -> list[int]:
    """The beat's sweep: shifts nobody has shown a sign of life in for SHIFT_IDLE_HOURS are closed
    (an idle pause too), the owner is told, and their unworked deals are handed back as at any end."""
    now = now or timezone.now()
    limit = timedelta(hours=settings.SHIFT_IDLE_HOURS)
    closed = []
    for shift in Shift.objects.filter(ended_at__isnull=True, seen_at__lt=now - limit).select_related("user"):
        try:
            ended, handed = end(user=shift.user, how=Shift.Ended.IDLE, at=shift.seen_at + limit)
        except ValidationError:
            continue  # ended meanwhile
        Notification.objects.create(
            user=shift.user, kind=Notification.Kind.SHIFT,
            params={"about": "idle", "hours": settings.SHIFT_IDLE_HOURS, "handed": handed},
        )
        closed.append(ended.pk)
    return closed


def sweep() -> dict:
    """Every minute (beat): idle shifts closed, and every queue drained as far as the caps allow
    (a manager dropped under the cap by a change the services did not see coming)."""
    return {"closed": close_idle(), "handed_out": distribution.drain_all()}


# Reads: the "on shift" page, the queues, the shift log -------------------------------------------


def open_deal_counts(user_ids) -> dict[int, int]:
    """Each user's open deals (live, in stages that do not close a deal), every line together: the
    board's counters on PostgreSQL (a few rows per user), the deals elsewhere."""
    from django.db.models import Count, Sum

    from .models import Deal

    ids = list(user_ids)
    if not ids:
        return {}
    rows: Any
    if connection.vendor == "postgresql":
        from .models import StageLoad

        rows = (StageLoad.objects.filter(responsible_id__in=ids, stage_id__in=Stage.objects.filter(closes=False).values("pk"))
                .values("responsible_id").annotate(n=Sum("deals")).values_list("responsible_id", "n"))
    else:
        rows = (Deal.objects.filter(responsible_id__in=ids, deleted_at__isnull=True, stage__closes=False)
                .values("responsible_id").annotate(n=Count("pk")).values_list("responsible_id", "n"))
    return {user_id: int(n or 0) for user_id, n in rows}


def on_shift_now(viewer) -> list[Shift]:
    """Open shifts of the users the viewer sees, the longest running first, each with its user's
    open deals (`open_deals`)."""
    shifts = list(Shift.objects.filter(ended_at__isnull=True, user__in=gate.visible_users(viewer).values("pk"))
                  .select_related("user").order_by("started_at", "pk"))
    counts = open_deal_counts(s.user_id for s in shifts)
    for shift in shifts:
        shift.open_deals = counts.get(shift.user_id, 0)  # type: ignore[attr-defined]
    return shifts


QUEUE_SHOWN = 50


def queues(viewer) -> tuple[list[dict], list]:
    """For those who configure funnels: each line with waiting deals (how many, since when), and the
    first QUEUE_SHOWN waiting deals, oldest first."""
    from django.db.models import Count, Min

    from .models import Deal, Line

    if not gate.can(viewer, gate.CONFIGURE_FUNNELS):
        return [], []
    waiting = Deal.objects.filter(queued_at__isnull=False, responsible__isnull=True, deleted_at__isnull=True)
    totals: dict[int, dict[str, Any]] = {
        row["stage__line"]: dict(row) for row in waiting.values("stage__line").annotate(n=Count("pk"), oldest=Min("queued_at"))
    }
    lines = [
        {"line": line, "waiting": totals.get(line.pk, {}).get("n", 0), "oldest": totals.get(line.pk, {}).get("oldest")}
        for line in Line.objects.select_related("funnel").order_by("funnel__position", "funnel_id", "position", "pk")
        if line.pk in totals or line.distribution != Line.Distribution.OFF
    ]
    first = list(waiting.select_related("client", "stage__line").order_by("queued_at", "pk")[:QUEUE_SHOWN])
    return lines, first


LOG_PAGE = 50


def shift_log(viewer, *, user_id=None, since=None, until=None, page: int = 1):
    """Shifts of the users the viewer sees (or of one of them) started in [since, until), newest
    first, a page at a time, with their breaks; and per user the count, the time worked and the
    breaks over the whole period (for reports)."""
    from django.core.paginator import Paginator
    from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum, Value

    qs = Shift.objects.filter(user__in=gate.visible_users(viewer).values("pk"))
    if user_id:
        qs = qs.filter(user_id=user_id)
    if since:
        qs = qs.filter(started_at__gte=since)
    if until:
        qs = qs.filter(started_at__lt=until)
    now = timezone.now()
    span = ExpressionWrapper(Coalesce("ended_at", Value(now)) - F("started_at"), output_field=DurationField())
    totals: list[dict[str, Any]] = [
        dict(row) for row in qs.values("user_id", "user__first_name", "user__last_name", "user__username")
        .annotate(n=Count("pk"), span=Sum(span), paused=Sum("paused_seconds")).order_by("user__first_name", "user__username")
    ]
    for row in totals:
        seconds = int(row["span"].total_seconds()) if row["span"] else 0
        row["worked"] = max(0, seconds - (row["paused"] or 0))
        row["name"] = f"{row['user__first_name']} {row['user__last_name']}".strip() or row["user__username"]
    paginator = Paginator(qs.select_related("user", "ended_by").prefetch_related("pauses").order_by("-started_at", "-pk"),
                          LOG_PAGE)
    return paginator.get_page(page), totals
