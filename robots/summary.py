"""A robot's conditions and actions in a few words, for its card on the Robots view.

The names come from `selectors.names_for` (read once per page); a thing that no longer exists
reads as "(deleted)" rather than failing the page.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients.models import Channel

from .models import Robot
from .selectors import Names

WEEKDAYS = [gettext_lazy("Mon"), gettext_lazy("Tue"), gettext_lazy("Wed"), gettext_lazy("Thu"), gettext_lazy("Fri"),
            gettext_lazy("Sat"), gettext_lazy("Sun")]
SHORT = 60


def _name(table: dict, key) -> str:
    try:
        return table[int(key)]
    except (KeyError, TypeError, ValueError):
        return _("(deleted)")


def _short(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= SHORT else text[:SHORT - 1] + "…"


def _days(days) -> str:
    chosen = sorted({int(d) for d in days if str(d).isdigit() and 0 <= int(d) <= 6})
    if not chosen or len(chosen) == 7:
        return ""
    return ", ".join(str(WEEKDAYS[d]) for d in chosen)


def conditions(robot: Robot, names: Names) -> list[str]:
    c = robot.conditions or {}
    out = []
    if c.get("channels"):
        labels = dict(Channel.choices)
        out.append(_("Channel: %(v)s") % {"v": ", ".join(str(labels.get(ch, ch)) for ch in c["channels"])})
    if c.get("tags"):
        out.append(_("Tag: %(v)s") % {"v": ", ".join(_name(names.tags, t) for t in c["tags"])})
    if c.get("responsibles"):
        who = [_("nobody") if str(u) == "0" else _name(names.users, u) for u in c["responsibles"]]
        out.append(_("Responsible: %(v)s") % {"v": ", ".join(who)})
    low, high = c.get("budget_min"), c.get("budget_max")
    if low not in (None, "") or high not in (None, ""):
        out.append(_("Budget: %(low)s – %(high)s") % {"low": low if low not in (None, "") else "…",
                                                       "high": high if high not in (None, "") else "…"})
    if c.get("field"):
        out.append(_("%(field)s = “%(value)s”") % {"field": names.fields.get(c["field"], _("(deleted)")),
                                                   "value": _short(c.get("field_value", ""))})
    hours = ""
    if c.get("hours_from") or c.get("hours_to"):
        hours = f"{c.get('hours_from') or '00:00'}–{c.get('hours_to') or '24:00'}"
    days = _days(c.get("days") or [])
    if hours or days:
        out.append(_("Working hours: %(v)s") % {"v": " ".join(part for part in (days, hours) if part)})
    return out


def action(item: dict, names: Names) -> str:
    kind = item.get("kind", "")
    if kind == Robot.Action.MOVE:
        return _("Move to “%(stage)s”") % {"stage": _name(names.stages, item.get("stage"))}
    if kind == Robot.Action.TRANSFER:
        return _("Transfer to “%(line)s”") % {"line": _name(names.lines, item.get("line"))}
    if kind == Robot.Action.MESSAGE:
        return _("Send: “%(text)s”") % {"text": _short(item.get("text", ""))}
    if kind == Robot.Action.TASK:
        who = _("the responsible") if not item.get("user") or str(item.get("user")) == "0" else _name(names.users, item["user"])
        return _("Task “%(type)s” for %(who)s in %(n)s min") % {
            "type": _name(names.task_types, item.get("task_type")), "who": who, "n": item.get("deadline_minutes") or 60}
    if kind == Robot.Action.RESPONSIBLE:
        return _("Make %(user)s responsible") % {"user": _name(names.users, item.get("user"))}
    if kind == Robot.Action.TAG_ADD:
        return _("Add the tag “%(tag)s”") % {"tag": _name(names.tags, item.get("tag"))}
    if kind == Robot.Action.TAG_REMOVE:
        return _("Remove the tag “%(tag)s”") % {"tag": _name(names.tags, item.get("tag"))}
    if kind == Robot.Action.NOTIFY:
        notified = [_name(names.users, u) for u in item.get("users") or []]
        if item.get("responsible"):
            notified.append(_("the responsible"))
        return _("Notify %(who)s") % {"who": ", ".join(notified) or _("nobody")}
    return _("Unknown action")


def actions(robot: Robot, names: Names) -> list[str]:
    return [action(item, names) for item in robot.actions or []]
