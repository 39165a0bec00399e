"""A robot's conditions (robots.models documents their keys): which one a deal fails, and working hours."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from .models import Robot

# The order they are checked in, and the names the log and the dry run give them (robots.texts).
ORDER = ("channel", "tag", "responsible", "budget", "field")


def failed(robot: Robot, deal) -> str | None:
    """The first condition the deal does not meet, or None (working hours are separate: they delay)."""
    c = robot.conditions or {}
    if c.get("channels") and deal.channel not in c["channels"]:
        return "channel"
    if c.get("tags"):
        wanted = {int(t) for t in c["tags"]}
        have = set(deal.tags.values_list("pk", flat=True)) | set(deal.client.tags.values_list("pk", flat=True))
        if not wanted & have:
            return "tag"
    if c.get("responsibles"):
        if (deal.responsible_id or 0) not in {int(u) for u in c["responsibles"]}:
            return "responsible"
    low, high = _decimal(c.get("budget_min")), _decimal(c.get("budget_max"))
    if (low is not None and deal.budget < low) or (high is not None and deal.budget > high):
        return "budget"
    if c.get("field"):
        value = deal.custom.get(c["field"], deal.client.custom.get(c["field"]))
        if str(value if value is not None else "").strip().casefold() != str(c.get("field_value", "")).strip().casefold():
            return "field"
    return None


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _zone(robot: Robot):
    try:
        return ZoneInfo(robot.stage.line.funnel.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()


def _clock(value: str) -> time | None:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError):
        return None


def hours_open_at(robot: Robot, now: datetime) -> datetime | None:
    """None inside the robot's working hours (or when it has none); else when they next begin."""
    c = robot.conditions or {}
    start, end = _clock(c.get("hours_from", "")), _clock(c.get("hours_to", ""))
    days = {int(d) for d in c.get("days") or []} or set(range(7))
    if start is None and end is None and len(days) == 7:
        return None
    start, end = start or time(0, 0), end or time(23, 59, 59)
    local = timezone.localtime(now, _zone(robot))

    def inside(moment: datetime) -> bool:
        clock = moment.time()
        if start <= end:
            return moment.weekday() in days and start <= clock < end
        # overnight (22:00–06:00): the night belongs to the day it began
        if clock >= start:
            return moment.weekday() in days
        return (moment - timedelta(days=1)).weekday() in days and clock < end

    if inside(local):
        return None
    for ahead in range(0, 8):
        day = (local + timedelta(days=ahead)).date()
        opening = datetime.combine(day, start, tzinfo=local.tzinfo)
        if opening > local and day.weekday() in days:
            return opening
    return None
